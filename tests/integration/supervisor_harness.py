"""Start `switchboard run` as a user would, talk to it, and prove it left nothing behind."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import zmq
from zmq.utils.monitor import recv_monitor_message

from wire import codec, rpc
from wire import messages as m
from wire.endpoints import Endpoints

ROOT = Path(__file__).resolve().parent.parent.parent
STANDIN = Path(__file__).resolve().parent / "standin"
TAG_ENV = "SB_TEST_TAG"

FAST = {
    "startsecs": 0.3,
    "startretries": 2,
    "retry_window_seconds": 30.0,
    "backoff_initial_seconds": 0.1,
    "backoff_max_seconds": 1.0,
    "stopwaitsecs": 3.0,
    "heartbeat_interval_seconds": 0.2,
    "heartbeat_timeout_seconds": 1.5,
    "sweep_interval_seconds": 0.3,
}


def wait_until(pred: Callable[[], Any], timeout: float, what: str, step: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(step)


def tagged(tag: str) -> list[psutil.Process]:
    out = []
    for p in psutil.process_iter(["pid"]):
        try:
            if p.environ().get(TAG_ENV) == tag:
                out.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return out


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f'"{k}" = {_toml(v)}' for k, v in value.items()) + "}"
    return repr(value)


class Supervisor:
    """One `switchboard run` process with its own state and runtime dirs."""

    def __init__(self, base: Path, *, standin: bool = True,
                 supervisor: dict[str, Any] | None = None,
                 claude: dict[str, Any] | None = None, telegram: dict[str, Any] | None = None,
                 env: dict[str, str] | None = None, personas_dir: Path | None = None) -> None:
        self.base = base
        self.state_dir = base / "state"
        self.runtime_dir = Path(tempfile.mkdtemp(prefix="sb-", dir="/tmp"))
        self.config = base / "switchboard.toml"
        self.personas_dir = personas_dir or ROOT / "personas"
        self.tag = uuid.uuid4().hex
        self.standin = standin
        self.extra_env = env or {}
        # Edit these and call write_config() (then SIGHUP) to change the running config.
        self.sections: dict[str, dict[str, Any]] = {
            "telegram": {"enabled": False, **(telegram or {})},
            "claude": claude or {},
            "supervisor": {**FAST, **(supervisor or {})},
        }
        self.write_config()
        self.proc: subprocess.Popen[bytes] | None = None
        self.endpoints = Endpoints(self.runtime_dir)
        self._sub: zmq.Socket | None = None  # type: ignore[type-arg]
        self.events: list[m.StateChange] = []

    def write_config(self) -> None:
        lines = [f"state_dir = {_toml(str(self.state_dir))}",
                 f"runtime_dir = {_toml(str(self.runtime_dir))}",
                 f"personas_dir = {_toml(str(self.personas_dir))}"]
        for name, values in self.sections.items():
            lines.append(f"[{name}]")
            lines += [f"{k} = {_toml(v)}" for k, v in values.items()]
        self.config.write_text("\n".join(lines) + "\n")

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env[TAG_ENV] = self.tag
        if self.standin:
            env["PYTHONPATH"] = str(STANDIN)
        env.update(self.extra_env)
        return env

    def start(self, wait: bool = True) -> Supervisor:
        log = open(self.base / "supervisor.out", "ab")  # noqa: SIM115 - closed after Popen
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "supervisor", "run", "-c", str(self.config)],
            env=self.env(), cwd=self.base, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        if wait:
            wait_until(self._answers, 10, "the control socket to answer")
        return self

    def _answers(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"supervisor exited {self.proc.returncode}: {self.output()}")
        try:
            return isinstance(self.request(m.Version(id=m.new_id()), timeout=0.5), m.Ok)
        except rpc.RpcTimeout:
            return False

    def log(self) -> str:
        """The supervisor's own log file."""
        p = self.state_dir / "logs" / "supervisor.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def output(self) -> str:
        p = self.base / "supervisor.out"
        return p.read_text(errors="replace")[-4000:] if p.exists() else ""

    def request(self, msg: m.Msg, timeout: float = 10.0) -> m.Ok | m.Error:
        return rpc.request_sync(self.endpoints.control, msg, timeout=timeout)

    def ok(self, msg: m.Msg, timeout: float = 15.0) -> Any:
        reply = self.request(msg, timeout)
        assert isinstance(reply, m.Ok), reply
        return reply.result

    def status(self) -> dict[str, m.ProgramStatus]:
        res = self.ok(m.Status(id=m.new_id()))
        return {r.name: r for r in res.programs}

    def sweeps(self) -> int:
        """How many psutil sweeps the supervisor has completed."""
        return int(self.ok(m.Status(id=m.new_id())).sweeps)

    def wait_sweeps(self, count: int, timeout: float = 10.0) -> None:
        """Until `count` more sweeps have run, all of them begun after this call."""
        # +1: a sweep already running now may have looked at the processes before the caller's
        # last change.
        target = self.sweeps() + count + 1
        wait_until(lambda: self.sweeps() >= target, timeout, f"{count} more sweeps")

    def state(self, program: str) -> str | None:
        row = self.status().get(program)
        return row.state if row else None

    def wait_state(self, program: str, state: str, timeout: float = 10.0) -> m.ProgramStatus:
        def check() -> m.ProgramStatus | None:
            row = self.status().get(program)
            return row if row and row.state == state else None
        return wait_until(check, timeout, f"{program} to be {state}")

    def ctl(self, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "supervisor.ctl", "-c", str(self.config), *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False,
                              cwd=self.base, env=self.env())

    # ------------------------------------------------------------------ events

    def subscribe(self) -> None:
        ctx = zmq.Context.instance()
        self._sub = ctx.socket(zmq.SUB)
        self._sub.setsockopt(zmq.LINGER, 0)
        self._sub.setsockopt(zmq.SUBSCRIBE, b"")
        # A SUB misses what is published before its connection is up: wait for the handshake.
        monitor = self._sub.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)
        try:
            self._sub.connect(self.endpoints.events)
            if not monitor.poll(10_000):
                raise AssertionError("timed out after 10s waiting for the events socket handshake")
            event = recv_monitor_message(monitor)
            assert event["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED, event
        finally:
            self._sub.disable_monitor()
            monitor.close(linger=0)

    def drain_events(self) -> list[m.StateChange]:
        assert self._sub is not None
        while self._sub.poll(0):
            ev = codec.events.decode(self._sub.recv())
            assert not isinstance(ev, codec.DecodeError), ev
            self.events.append(ev)
        return self.events

    def wait_event(self, pred: Callable[[m.StateChange], bool], timeout: float = 10.0,
                   what: str = "an event") -> m.StateChange:
        def check() -> m.StateChange | None:
            return next((e for e in self.drain_events() if pred(e)), None)
        return wait_until(check, timeout, what)

    # ------------------------------------------------------------------ teardown

    def stop(self, timeout: float = 20.0) -> int | None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode if self.proc else None

    def assert_nothing_left(self, timeout: float = 3.0) -> None:
        try:
            wait_until(lambda: not tagged(self.tag), timeout, "every child to be gone", step=0.05)
        except AssertionError:
            left = tagged(self.tag)
            desc = [(p.pid, p.name()) for p in left]
            for p in left:
                p.kill()
            raise AssertionError(f"processes left behind: {desc}") from None

    def close(self) -> None:
        try:
            self.stop()
            self.assert_nothing_left()
        finally:
            if self._sub is not None:
                self._sub.close(linger=0)
            shutil.rmtree(self.runtime_dir, ignore_errors=True)
