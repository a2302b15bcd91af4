"""Switchboard next to supervisord, in one run: the same four measures on both, side by side.

    .venv/bin/python -m bench vs_supervisord

1. SIGKILL -> new pid. Each supervisor runs one program and restarts it after SIGKILL
   (supervisord: autorestart=true, startsecs=1; Switchboard: bench_supervisor.py's kill
   settings). Each side runs its natural child: supervisord a Python sleeper
   (`python -c "import time; time.sleep(1e6)"`), Switchboard its real session worker (one
   session, no turns, so no CLI). Two ways of watching, in this order:
   - quietly: nobody talks to the supervisor. The new pid is found by scanning /proc every 1 ms
     for a new process whose parent is the supervisor (the same observer on both sides); the
     spawn and RUNNING times are each supervisor's own record of them: supervisord's log lines
     ("spawned: ...", "success: ..."; stamped in ms and flushed as they happen), Switchboard's
     StateChange events (STARTING, RUNNING; pushed, with the supervisor's timestamp);
   - polled: the supervisor's own interface is asked for the program's pid every 1 ms until it
     changes (supervisord: XML-RPC `getProcessInfo`, what `supervisorctl pid` calls;
     Switchboard: the Status request `switchboardctl status` sends), both over a unix socket, a
     new connection per request. A request wakes supervisord's main loop, which otherwise
     sleeps up to 1 s between passes: watched this way it restarts much sooner than when
     nobody asks, which is why both ways are shown.
2. `status` wall time with N programs (default 100): `supervisorctl status` and
   `switchboardctl status`, each a fresh process, median of 10. supervisord runs N Python
   sleepers, Switchboard N stand-in workers (tests/support/standin). Then `stop all` once
   with each ctl, timed the same way, until it returns with every program STOPPED.
3. An always-crashing program to FATAL with each tool's default policy: supervisord
   `python -c "import sys; sys.exit(1)"` (startsecs 1, startretries 3), Switchboard the stand-in
   `crash-*` session (startsecs 1, startretries 3, backoff from 0.5 s). Three at once, median;
   from the start request to FATAL in each supervisor's own record (log line, event).
4. Stop with a setsid grandchild: supervisord `sh -c "(setsid sleep 300 &); exec sleep 300"`
   stopped with `supervisorctl stop`; Switchboard the stand-in `leak-*` session stopped with
   `switchboardctl stop`. Is the grandchild alive 5 s after the stop returned?

supervisord is never installed into the project's venv (its package is also called
`supervisor`): the benchmark creates its own venv once under the system temp dir
(switchboard-bench-supervisord/) and reuses it. Everything talks over unix sockets; every
process of the run carries a tag in its environment, and the run ends by showing none is left.

Knobs: SWITCHBOARD_BENCH_KILLS (polled kills per side, default 30),
SWITCHBOARD_BENCH_QUIET_KILLS (default 10), SWITCHBOARD_BENCH_PROGRAMS (default 100).
"""
from __future__ import annotations

import fcntl
import http.client
import importlib.metadata
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import xmlrpc.client
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import psutil

from bench.common import ROOT, env_int, header, ms, pct, table
from supervisor.config import SupervisorConfig
from tests.support.supervisor import TAG_ENV, SupervisorHarness, tagged
from tests.support.waits import wait_until
from wire import messages as m

T = TypeVar("T")
SD_VERSION = "4.3.0"
SD_CACHE = Path(tempfile.gettempdir()) / "switchboard-bench-supervisord"
KILLS = env_int("SWITCHBOARD_BENCH_KILLS", 30)  # polled through each supervisor's interface
QUIET_KILLS = env_int("SWITCHBOARD_BENCH_QUIET_KILLS", 10)  # nobody talking to the supervisor
PROGRAMS = env_int("SWITCHBOARD_BENCH_PROGRAMS", 100)
STATUS_RUNS = 10
CRASHERS = 3
LEAK_GRACE = 5.0  # seconds after the stop returned; Switchboard's sweep runs every 2 s

SLEEPER = "import time; time.sleep(1e6)"
CRASHER = "import sys; sys.exit(1)"
LEAKER = "(setsid sleep 300 &); exec sleep 300"

# Switchboard's defaults, written out: the harness would otherwise use its fast test timings.
SB_DEFAULTS = {f: getattr(SupervisorConfig(), f) for f in SupervisorConfig.__struct_fields__}
# bench_supervisor.py's kill settings: a short retry window, so every kill is a first crash
# after RUNNING (restarted at once, as supervisord does); each kill waits for RUNNING (> 1 s).
SB_KILLS = {**SB_DEFAULTS, "retry_window_seconds": 0.5}

# ---------------------------------------------------------------------- observing processes


def _ppid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    return int(stat[stat.rindex(b")") + 2:].split()[1])


def _pids() -> set[int]:
    return {int(n) for n in os.listdir("/proc") if n.isdigit()}


def new_child(parent: int, before: set[int], timeout: float = 10.0) -> tuple[int, float]:
    """The first process not in `before` whose parent is `parent`, and when it was seen.

    Scans /proc every 1 ms: only new pids are looked at, so a scan costs ~0.1 ms."""
    checked = set(before)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in _pids() - checked:
            checked.add(pid)
            if _ppid(pid) == parent:
                return pid, time.time()
        time.sleep(0.001)
    raise AssertionError(f"no new child of {parent} within {timeout:g} s")


def alive(proc: psutil.Process) -> bool:
    try:
        return bool(proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def session_leaders(tag: str, exclude: set[int]) -> list[psutil.Process]:
    """Processes of the run with this tag that called setsid (their own session leader)."""
    out = []
    for p in tagged(tag):
        try:
            if p.pid not in exclude and os.getsid(p.pid) == p.pid and alive(p):
                out.append(p)
        except (OSError, psutil.NoSuchProcess):
            continue
    return out


def gone_within(proc: psutil.Process, seconds: float) -> float | None:
    """Seconds until `proc` was gone, or None if it was still alive after `seconds`."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        if not alive(proc):
            return time.monotonic() - t0
        time.sleep(0.01)
    return None


# ---------------------------------------------------------------------- supervisord


def supervisord_venv() -> Path:
    """supervisord's own venv (never the project's), created once and cached."""
    venv = SD_CACHE / f"venv-{SD_VERSION}"
    ready = venv / ".ready"
    SD_CACHE.mkdir(parents=True, exist_ok=True)
    with open(SD_CACHE / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two runs at once: one builds, the other waits
        if not ready.exists():
            shutil.rmtree(venv, ignore_errors=True)
            print(f"# creating supervisord's venv (supervisor=={SD_VERSION}) in {venv}",
                  flush=True)
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet",
                            "--disable-pip-version-check", f"supervisor=={SD_VERSION}"],
                           check=True)
            ready.write_text(SD_VERSION + "\n")
    return venv


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=30)
        self.unix_path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(30)
        s.connect(self.unix_path)
        self.sock = s


class _UnixTransport(xmlrpc.client.Transport):
    def __init__(self, path: str) -> None:
        super().__init__()
        self.unix_path = path

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        return _UnixConnection(self.unix_path)


class SdLog:
    """supervisord's own log, read as it grows: (time, message) per line.

    supervisord writes and flushes a line at each transition ("spawned: ...", "success: ...",
    "gave up: ..."), stamped in ms: its own record of when things happened, read without
    talking to it (a request would wake its main loop and change what is measured)."""

    STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) \S+ (.*)$")

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.lines: list[tuple[float, str]] = []

    def read(self) -> list[tuple[float, str]]:
        if self.path.exists():
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
            end = data.rfind(b"\n") + 1
            self.offset += end
            for line in data[:end].decode(errors="replace").splitlines():
                hit = self.STAMP.match(line)
                if hit:  # local time, as supervisord formats it
                    t = time.mktime(time.strptime(hit[1], "%Y-%m-%d %H:%M:%S"))
                    self.lines.append((t + int(hit[2]) / 1000, hit[3]))
        return self.lines

    def wait(self, start: int, pattern: str, timeout: float = 30.0) -> tuple[float, re.Match[str]]:
        """The first line at index `start` or later that matches `pattern`."""
        rx = re.compile(pattern)

        def check() -> tuple[float, re.Match[str]] | None:
            for t, text in self.read()[start:]:
                hit = rx.match(text)
                if hit:
                    return t, hit
            return None
        found: tuple[float, re.Match[str]] = wait_until(check, timeout, pattern, step=0.005)
        return found


class Supervisord:
    """One `supervisord -n -c CONFIG` with its programs, in its own temp dir."""

    def __init__(self, venv: Path, base: Path, programs: dict[str, dict[str, str]]) -> None:
        self.venv = venv
        self.base = base
        base.mkdir()
        self.sock = base / "sd.sock"
        self.config = base / "supervisord.conf"
        self.tag = uuid.uuid4().hex
        RUN_TAGS.append(self.tag)
        self.log = SdLog(base / "supervisord.log")
        lines = [
            "[unix_http_server]", f"file={self.sock}", "chmod=0700", "",
            "[supervisord]", f"logfile={base / 'supervisord.log'}",
            f"pidfile={base / 'supervisord.pid'}", f"childlogdir={base}", "nodaemon=true",
            f"directory={base}", "", "[rpcinterface:supervisor]",
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
            "", "[supervisorctl]", f"serverurl=unix://{self.sock}", "",
        ]
        for name, opts in programs.items():
            lines.append(f"[program:{name}]")
            lines += [f"{k}={v}" for k, v in opts.items()]
            lines.append("")
        self.config.write_text("\n".join(lines))
        self.proc: subprocess.Popen[bytes] | None = None
        self.rpc = xmlrpc.client.ServerProxy("http://localhost/RPC2",
                                             transport=_UnixTransport(str(self.sock)))

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env[TAG_ENV] = self.tag
        return env

    def start(self) -> Supervisord:
        out = open(self.base / "supervisord.out", "ab")  # noqa: SIM115 - closed after Popen
        self.proc = subprocess.Popen(
            [str(self.venv / "bin" / "supervisord"), "-n", "-c", str(self.config)],
            env=self.env(), cwd=self.base, stdout=out, stderr=subprocess.STDOUT)
        out.close()
        wait_until(self._answers, 15, "supervisord to answer")
        return self

    def _answers(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"supervisord exited {self.proc.returncode}: "
                                 + (self.base / "supervisord.out").read_text(errors="replace"))
        try:
            state: Any = self.rpc.supervisor.getState()
            return bool(state["statename"] == "RUNNING")
        except (OSError, xmlrpc.client.Error):
            return False

    def states(self) -> dict[str, dict[str, Any]]:
        infos: Any = self.rpc.supervisor.getAllProcessInfo()
        return {p["name"]: p for p in infos}

    def ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.venv / "bin" / "supervisorctl"), "-c", str(self.config),
                               *args], capture_output=True, text=True, timeout=60,
                              cwd=self.base, env=self.env(), check=False)

    def close(self) -> list[str]:
        """SIGTERM supervisord (it stops every program, then exits); then kill and return
        whatever of it is still alive."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        left = [p for p in tagged(self.tag) if alive(p)]
        desc = []
        for p in left:
            try:
                desc.append(f"{p.pid} {' '.join(p.cmdline())}")
                p.kill()
            except psutil.NoSuchProcess:
                continue
        return desc


RUN_TAGS: list[str] = []  # every instance's tag, for the final check that nothing is left


def switchboard(base: Path, *, standin: bool, settings: dict[str, Any]) -> SupervisorHarness:
    """One `switchboard run -c CONFIG` (tests/support/supervisor.py)."""
    sup = SupervisorHarness(base, standin=standin, supervisor=settings)
    RUN_TAGS.append(sup.tag)
    return sup


def sd_program(command: str, **opts: str) -> dict[str, str]:
    return {"command": command, "startsecs": "1", **opts}


# ---------------------------------------------------------------------- the four measures


def poll_new_pid(read: Callable[[], int | None], old: int,
                 timeout: float = 10.0) -> tuple[int, float]:
    """Ask the supervisor for the program's pid every 1 ms until it differs from `old`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = read()
        if pid and pid != old:
            return pid, time.time()
        time.sleep(0.001)
    raise AssertionError(f"no new pid reported within {timeout:g} s")


def kills_supervisord(venv: Path, base: Path) -> dict[str, list[float]]:
    sd = Supervisord(venv, base, {"sleeper": sd_program(
        f"{venv / 'bin' / 'python'} -c \"{SLEEPER}\"", autorestart="true")})
    out: dict[str, list[float]] = {k: [] for k in ("pid", "starting", "running", "polled",
                                                     "polled_starting")}
    spawned, success = r"spawned: 'sleeper' with pid (\d+)", r"success: sleeper entered RUNNING"

    def reported() -> int | None:
        info: Any = sd.rpc.supervisor.getProcessInfo("sleeper")
        return int(info["pid"]) or None

    try:
        sd.start()
        assert sd.proc is not None
        sd.log.wait(0, success)
        pid = int(sd.log.wait(0, spawned)[1][1])
        # Nobody talks to supervisord: /proc for the pid, its log for the transitions.
        for _ in range(QUIET_KILLS):
            n = len(sd.log.read())
            before = _pids()
            t0 = time.time()
            os.kill(pid, signal.SIGKILL)
            new, seen = new_child(sd.proc.pid, before)
            t_spawned, hit = sd.log.wait(n, spawned)
            t_running, _ = sd.log.wait(n, success)
            assert int(hit[1]) == new, (hit[0], new)
            out["pid"].append(seen - t0)
            out["starting"].append(t_spawned - t0)
            out["running"].append(t_running - t0)
            pid = new
        # Its XML-RPC interface asked every 1 ms, as `supervisorctl pid` in a loop would.
        for _ in range(KILLS):
            n = len(sd.log.read())
            t0 = time.time()
            os.kill(pid, signal.SIGKILL)
            new, seen = poll_new_pid(reported, pid)
            t_spawned, hit = sd.log.wait(n, spawned)
            assert int(hit[1]) == new, (hit[0], new)
            out["polled"].append(seen - t0)
            out["polled_starting"].append(t_spawned - t0)
            wait_until(lambda: sd.states()["sleeper"]["statename"] == "RUNNING", 30,
                       "sleeper RUNNING", step=0.02)
            pid = new
    finally:
        left = sd.close()
    _check_clean("supervisord (kills)", left)
    return out


def kills_switchboard(base: Path) -> dict[str, list[float]]:
    sup = switchboard(base, standin=False, settings=SB_KILLS)
    out: dict[str, list[float]] = {k: [] for k in ("pid", "starting", "running", "polled",
                                                     "polled_starting")}
    program = "session:kb"

    def event(n: int, state: str) -> m.StateChange:
        found: m.StateChange = wait_until(lambda: next(
            (e for e in sup.drain_events()[n:] if e.program == program and e.to_state == state),
            None), 30, f"{program} {state}", step=0.005)
        return found

    def reported() -> int | None:
        row = sup.status().get(program)
        return row.pid if row else None

    try:
        sup.start()
        sup.subscribe()
        assert sup.proc is not None
        assert sup.ok(m.NewSession(id=m.new_id(), name="kb"), timeout=30).results[0].ok
        pid = event(0, "RUNNING").pid
        assert pid is not None
        # Nobody talks to the supervisor: /proc for the pid, its pushed events for the rest.
        for _ in range(QUIET_KILLS):
            n = len(sup.drain_events())
            before = _pids()
            t0 = time.time()
            os.kill(pid, signal.SIGKILL)
            new, seen = new_child(sup.proc.pid, before)
            running = event(n, "RUNNING")
            starting = event(n, "STARTING")
            assert starting.pid == running.pid == new, (starting, running, new)
            out["pid"].append(seen - t0)
            out["starting"].append(starting.time - t0)
            out["running"].append(running.time - t0)
            pid = new
        # Its Status request every 1 ms, as `switchboardctl status` in a loop would.
        for _ in range(KILLS):
            n = len(sup.drain_events())
            t0 = time.time()
            os.kill(pid, signal.SIGKILL)
            new, seen = poll_new_pid(reported, pid)
            assert event(n, "RUNNING").pid == new
            out["polled"].append(seen - t0)
            out["polled_starting"].append(event(n, "STARTING").time - t0)
            pid = new
    finally:
        sup.close()  # raises if anything of it is left
    return out


def status_supervisord(venv: Path, base: Path) -> tuple[list[float], float]:
    programs = {f"p{i:03d}": sd_program(f"{venv / 'bin' / 'python'} -c \"{SLEEPER}\"")
                for i in range(PROGRAMS)}
    sd = Supervisord(venv, base, programs)
    walls = []
    try:
        sd.start()
        wait_until(lambda: sum(p["statename"] == "RUNNING" for p in sd.states().values())
                   == PROGRAMS, 120, "all programs RUNNING", step=0.2)
        time.sleep(2)  # past the spawn storm: a steady state
        for _ in range(STATUS_RUNS):
            t = time.monotonic()
            r = sd.ctl("status")
            walls.append(time.monotonic() - t)
            assert r.returncode == 0 and len(r.stdout.splitlines()) == PROGRAMS, r
        t = time.monotonic()
        r = sd.ctl("stop", "all")
        took = time.monotonic() - t
        assert r.returncode == 0, r
        assert all(p["statename"] == "STOPPED" for p in sd.states().values())
    finally:
        left = sd.close()
    _check_clean("supervisord (status)", left)
    return walls, took


def switchboardctl(sup: SupervisorHarness, *args: str) -> subprocess.CompletedProcess[str]:
    """`switchboardctl` as a user runs it: the console script, a fresh process."""
    script = Path(sys.executable).parent / "switchboardctl"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "supervisor.ctl"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([*cmd, "-c", str(sup.config), *args], capture_output=True,
                          text=True, timeout=60, check=False, cwd=sup.base, env=env)


def status_switchboard(base: Path) -> tuple[list[float], float]:
    from supervisor.registry import Registry, SessionRecord

    sup = switchboard(base, standin=True, settings=SB_DEFAULTS)
    reg = Registry(sup.state_dir)
    for i in range(PROGRAMS):
        reg.sessions[f"s{i:03d}"] = SessionRecord(name=f"s{i:03d}", persona="default")
    reg.save()
    walls = []
    try:
        sup.start()
        wait_until(lambda: sum(r.state == "RUNNING" for r in sup.status().values()) == PROGRAMS,
                   120, "all sessions RUNNING", step=0.2)
        time.sleep(2)
        for _ in range(STATUS_RUNS):
            t = time.monotonic()
            r = switchboardctl(sup, "status")
            walls.append(time.monotonic() - t)
            assert r.returncode == 0 and len(r.stdout.splitlines()) == PROGRAMS, r
        t = time.monotonic()
        r = switchboardctl(sup, "stop", "all")
        took = time.monotonic() - t
        assert r.returncode == 0, r
        assert all(row.state == "STOPPED" for row in sup.status().values())
    finally:
        sup.close()
    return walls, took


def crash_supervisord(venv: Path, base: Path) -> list[float]:
    # startsecs and startretries left out on purpose: supervisord's defaults (1 s, 3).
    programs = {f"crash{i}": {"command": f"{venv / 'bin' / 'python'} -c \"{CRASHER}\"",
                              "autostart": "false"} for i in range(CRASHERS)}
    sd = Supervisord(venv, base, programs)
    took = []
    try:
        sd.start()
        n = len(sd.log.read())
        t0 = {}
        for name in programs:
            t0[name] = time.time()
            sd.rpc.supervisor.startProcess(name, False)
        for name in programs:
            fatal, _ = sd.log.wait(n, f"gave up: {name} entered FATAL state", timeout=60)
            took.append(fatal - t0[name])
    finally:
        left = sd.close()
    _check_clean("supervisord (crash loop)", left)
    return took


def crash_switchboard(base: Path) -> list[float]:
    sup = switchboard(base, standin=True, settings=SB_DEFAULTS)
    took = []
    try:
        sup.start()
        sup.subscribe()
        t0 = {}
        for i in range(CRASHERS):
            t0[f"session:crash-{i}"] = time.time()
            sup.request(m.NewSession(id=m.new_id(), name=f"crash-{i}"), timeout=30)
        for program, start in t0.items():
            fatal = sup.wait_event(lambda e, p=program: e.program == p
                                   and e.to_state == "FATAL", timeout=60, what="FATAL")
            took.append(fatal.time - start)
    finally:
        sup.close()
    return took


def leak_supervisord(venv: Path, base: Path) -> tuple[bool, float | None]:
    sd = Supervisord(venv, base, {"leaky": sd_program(f"/bin/sh -c \"{LEAKER}\"")})
    try:
        sd.start()
        info = wait_until(lambda: (lambda p: p if p["statename"] == "RUNNING" else None)(
            sd.states()["leaky"]), 15, "leaky RUNNING", step=0.05)
        assert sd.proc is not None
        grandchild = wait_until(lambda: session_leaders(sd.tag, {sd.proc.pid, info["pid"]}),
                                10, "the setsid grandchild")[0]
        r = sd.ctl("stop", "leaky")
        assert r.returncode == 0, r
        took = gone_within(grandchild, LEAK_GRACE)
        if took is None:
            grandchild.kill()  # the benchmark cleans up what supervisord left
            grandchild.wait(5)
    finally:
        left = sd.close()
    _check_clean("supervisord (stop)", left)
    return took is None, took


def leak_switchboard(base: Path) -> tuple[bool, float | None]:
    sup = switchboard(base, standin=True, settings=SB_DEFAULTS)
    try:
        sup.start()
        sup.subscribe()
        assert sup.proc is not None
        sup.request(m.NewSession(id=m.new_id(), name="leak-0"), timeout=30)
        worker = sup.wait_event(lambda e: e.program == "session:leak-0"
                                and e.to_state == "RUNNING", 30, "RUNNING").pid
        grandchild = wait_until(lambda: session_leaders(sup.tag, {sup.proc.pid, worker}),
                                10, "the setsid grandchild")[0]
        r = switchboardctl(sup, "stop", "leak-0")
        assert r.returncode == 0, r
        took = gone_within(grandchild, LEAK_GRACE)
        if took is None:
            grandchild.kill()
            grandchild.wait(5)
    finally:
        sup.close()
    return took is None, took


def _check_clean(what: str, left: list[str]) -> None:
    if left:
        raise AssertionError(f"{what}: processes left after shutdown: {left}")


# ---------------------------------------------------------------------- report


def fmt(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 0.1 else ms(seconds)


def ratio(sb: float, sd: float) -> str:
    return f"{sb / sd:.2f}" if sd > 0 else "-"


def versions(venv: Path) -> tuple[str, str]:
    sd = subprocess.run([str(venv / "bin" / "supervisord"), "--version"], capture_output=True,
                        text=True, timeout=30, check=True).stdout.strip()
    try:
        sb = importlib.metadata.version("claude-switchboard")
    except importlib.metadata.PackageNotFoundError:
        sb = "?"
    rev = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                         capture_output=True, text=True, timeout=30, check=False).stdout.strip()
    return sd, f"{sb} ({rev or 'no git'})"


def main() -> int:
    t_start = time.monotonic()
    venv = supervisord_venv()
    sd_ver, sb_ver = versions(venv)
    sd_python = subprocess.run([str(venv / "bin" / "python"), "-V"], capture_output=True,
                               text=True, timeout=30, check=True).stdout.strip()
    header("Switchboard vs supervisord, side by side", ".venv/bin/python -m bench vs_supervisord",
           [f"supervisord {sd_ver} (its own venv, {sd_python}); Switchboard {sb_ver}",
            f"kills per side: {QUIET_KILLS} watched quietly, then {KILLS} polled every 1 ms;"
            f" status: {PROGRAMS} programs, {STATUS_RUNS} runs; crash loop: {CRASHERS} programs"
            f" at once; stop: grandchild watched for {LEAK_GRACE:g} s after the stop returned",
            "children: supervisord a Python sleeper (N of them for status); Switchboard its real"
            " session worker for the kills, stand-in workers for the rest",
            "quiet: new pid = /proc scanned every 1 ms for a new child of the supervisor (both);"
            " spawned/RUNNING/FATAL = supervisord's log lines, Switchboard's StateChange.time",
            "polled: supervisord XML-RPC getProcessInfo / Switchboard Status request, every 1 ms"])
    with tempfile.TemporaryDirectory(prefix="sbvs-", dir="/tmp") as d:
        base = Path(d)
        k_sd, k_sb = phase("1/4 kills", lambda: kills_supervisord(venv, base / "sd-kills"),
                           lambda: kills_switchboard(_mk(base / "sb-kills")))
        s_sd, s_sb = phase("2/4 status", lambda: status_supervisord(venv, base / "sd-status"),
                           lambda: status_switchboard(_mk(base / "sb-status")))
        c_sd, c_sb = phase("3/4 crash loop", lambda: crash_supervisord(venv, base / "sd-crash"),
                           lambda: crash_switchboard(_mk(base / "sb-crash")))
        l_sd, l_sb = phase("4/4 stop", lambda: leak_supervisord(venv, base / "sd-leak"),
                           lambda: leak_switchboard(_mk(base / "sb-leak")))

    rows: list[list[str]] = []

    def add(name: str, sd: list[float], sb: list[float], p99: bool = True) -> None:
        rows.append([f"{name}, median", fmt(statistics.median(sd)), fmt(statistics.median(sb)),
                     ratio(statistics.median(sb), statistics.median(sd))])
        if p99:
            rows.append([f"{name}, p99", fmt(pct(sd, 0.99)), fmt(pct(sb, 0.99)),
                         ratio(pct(sb, 0.99), pct(sd, 0.99))])

    add(f"SIGKILL -> new pid in /proc, quiet ({QUIET_KILLS} kills)", k_sd["pid"], k_sb["pid"])
    add("SIGKILL -> spawned (own record), quiet", k_sd["starting"], k_sb["starting"], p99=False)
    add("SIGKILL -> RUNNING (own record), quiet", k_sd["running"], k_sb["running"])
    add(f"SIGKILL -> new pid, interface polled 1 ms ({KILLS} kills)", k_sd["polled"],
        k_sb["polled"])
    add("SIGKILL -> spawned (own record), polled", k_sd["polled_starting"],
        k_sb["polled_starting"], p99=False)
    add(f"`status` wall, {PROGRAMS} programs, {STATUS_RUNS} runs", s_sd[0], s_sb[0], p99=False)
    rows.append([f"`stop all` wall, {PROGRAMS} programs", fmt(s_sd[1]), fmt(s_sb[1]),
                 ratio(s_sb[1], s_sd[1])])
    add(f"always crashing -> FATAL, defaults, {CRASHERS} programs", c_sd, c_sb, p99=False)

    def leak(res: tuple[bool, float | None]) -> str:
        if res[0]:
            return f"yes (alive {LEAK_GRACE:g} s on)"
        took = res[1] or 0.0
        return "no (gone as the stop returned)" if took < 0.005 else f"no (gone {fmt(took)} on)"

    rows.append(["stop leaves the setsid grandchild alive?", leak(l_sd), leak(l_sb), "-"])
    print()
    table(rows, ["measure", f"supervisord {sd_ver}", "Switchboard", "Switchboard/supervisord"])
    print()

    def spread(xs: list[float]) -> str:
        return f"{fmt(min(xs))} .. {fmt(max(xs))}"

    print(f"range, new pid quiet: supervisord {spread(k_sd['pid'])}; "
          f"Switchboard {spread(k_sb['pid'])}")
    print(f"range, new pid polled: supervisord {spread(k_sd['polled'])}; "
          f"Switchboard {spread(k_sb['polled'])}")
    print(f"crash loop samples: supervisord {', '.join(fmt(x) for x in c_sd)}; "
          f"Switchboard {', '.join(fmt(x) for x in c_sb)}")
    left = [p for tag in RUN_TAGS for p in tagged(tag)]
    print(f"cleanup: {len(RUN_TAGS)} supervisor instances (4 supervisord, 4 Switchboard) shut"
          f" down; processes carrying any of their tags now: {len(left)}"
          f"{' ' + str([p.pid for p in left]) if left else ''}")
    print(f"took {time.monotonic() - t_start:.0f} s")
    return 0 if not left else 1


def phase(name: str, sd: Callable[[], T], sb: Callable[[], T]) -> tuple[T, T]:
    """supervisord's side, then Switchboard's, one right after the other."""
    t0 = time.monotonic()
    a = sd()
    t1 = time.monotonic()
    b = sb()
    print(f"# {name}: supervisord side {t1 - t0:.0f} s, Switchboard side"
          f" {time.monotonic() - t1:.0f} s", flush=True)
    return a, b


def _mk(path: Path) -> Path:
    path.mkdir()
    return path


if __name__ == "__main__":
    sys.exit(main())
