"""The whole stack, started the way a user starts it, and driven only from the outside.

`Stack` writes a config into a short temp dir, starts `switchboard run -c CONFIG` as a
subprocess (the bot token in the variable named by `telegram.token_env`), talks to it only with
`switchboardctl` and the sandbox Telegram server, and on `stop()` proves that nothing it started
is left: no process carrying the stack's tag or a session marker, no zombie, no child of the run
process.

Every process of one stack is found by a tag in its environment (`SB_E2E_STACK=<id>`): the run
process gets it, its children inherit it, and the workers pass it on to the CLI and its tools.
That keeps the checks to this stack alone while other stacks run on the same machine.

Used by the tests in this directory and by the benchmarks in bench/, so it never imports pytest.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent.parent
POLL_STEP = 0.05  # the step of a deadline loop, never a wait on its own
TAG_ENV = "SB_E2E_STACK"
MARKER_ENV = "SWITCHBOARD_SESSION"
INSTANCE_ENV = "SWITCHBOARD_INSTANCE"
TOKEN_ENV = "SB_E2E_BOT_TOKEN"
OWNER = 4242

# Fast but realistic timings: a test waits seconds, not minutes, for a restart.
FAST_SUPERVISOR: dict[str, Any] = {
    "startsecs": 0.5,
    "startretries": 5,
    "retry_window_seconds": 30.0,
    "backoff_initial_seconds": 0.1,
    "backoff_max_seconds": 1.0,
    "stopwaitsecs": 5.0,
    "heartbeat_interval_seconds": 0.5,
    "heartbeat_timeout_seconds": 5.0,
    "sweep_interval_seconds": 0.5,
}
FAST_TELEGRAM: dict[str, Any] = {
    "edit_interval_seconds": 0.3,
    "poll_timeout_seconds": 10,
}


def claude_bin() -> str | None:
    from sandbox.model_api import find_claude

    return find_claude()


def wait_until(pred: Callable[[], Any], timeout: float, what: str, step: float = 0.05) -> Any:
    """Poll `pred()` until it is truthy and return its value; AssertionError after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(step)


def toml_value(value: Any) -> str:
    """A Python value as TOML (json's string escapes are valid TOML basic strings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        pairs = ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items())
        return "{ " + pairs + " }"
    raise TypeError(f"no TOML for {value!r}")


def render_config(top: dict[str, Any], sections: dict[str, dict[str, Any]]) -> str:
    lines = [f"{k} = {toml_value(v)}" for k, v in top.items()]
    for name, fields in sections.items():
        lines.append(f"\n[{name}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in fields.items()]
    return "\n".join(lines) + "\n"


def _script(name: str) -> list[str]:
    """The console script next to our interpreter (what a user types), else `python -m`."""
    exe = Path(sys.executable).parent / name
    if exe.exists():
        return [str(exe)]
    module = {"switchboard": "supervisor", "switchboardctl": "supervisor.ctl"}[name]
    return [sys.executable, "-m", module]


def proc_env(p: psutil.Process) -> dict[str, str]:
    try:
        return p.environ()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, OSError):
        return {}


def describe(p: psutil.Process) -> str:
    try:
        return f"pid {p.pid} {p.status()} {' '.join(p.cmdline())[:120]}"
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return f"pid {p.pid} (gone or zombie)"


class Stack:
    """One Switchboard installation in a temp dir, with both sandboxes; see the module doc."""

    def __init__(
        self,
        tg: Any,
        model: Any,
        claude: str,
        *,
        users: Iterable[int] = (OWNER,),
        telegram: dict[str, Any] | None = None,
        claude_cfg: dict[str, Any] | None = None,
        supervisor: dict[str, Any] | None = None,
        top: dict[str, Any] | None = None,
        prefix: str = "sb-",
    ) -> None:
        from sandbox.model_api import cli_environment

        self.tg, self.model = tg, model
        self.tmp = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
        self.tag = f"{self.tmp.name}-{uuid.uuid4().hex[:6]}"
        self.config = self.tmp / "switchboard.toml"
        self.state_dir = self.tmp / "state"
        self.runtime_dir = self.tmp / "run"
        self.users = list(users)
        self.proc: subprocess.Popen[bytes] | None = None
        self.run_out = self.tmp / "switchboard-run.out"
        self.seen: dict[int, float] = {}  # pid -> create_time of every stack process we saw
        env = cli_environment(model.url, self.tmp / "claude-home")
        cli_extra = {k: v for k, v in env.items() if os.environ.get(k) != v}
        cli_extra[TAG_ENV] = self.tag
        self.top: dict[str, Any] = {
            "state_dir": str(self.state_dir),
            "runtime_dir": str(self.runtime_dir),
            **(top or {}),
        }
        self.sections: dict[str, dict[str, Any]] = {
            "telegram": {
                "token_env": TOKEN_ENV,
                "allowed_user_ids": self.users,
                "api_base_url": tg.url,
                **FAST_TELEGRAM,
                **(telegram or {}),
            },
            "claude": {
                "binary": claude,
                "env": cli_extra,
                "idle_suspend_seconds": 300,
                **(claude_cfg or {}),
            },
            "supervisor": {**FAST_SUPERVISOR, **(supervisor or {})},
        }
        self.write_config()

    # ------------------------------------------------------------------ config and commands

    def write_config(self, text: str | None = None, path: Path | None = None) -> Path:
        path = path or self.config
        path.write_text(text if text is not None else render_config(self.top, self.sections))
        path.chmod(0o600)
        return path

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env[TOKEN_ENV] = self.tg.token
        env[TAG_ENV] = self.tag
        env["PYTHONUNBUFFERED"] = "1"
        env.pop("SWITCHBOARD_CONFIG", None)
        return env

    def switchboard(self, *argv: str, config: Path | None = None, timeout: float = 60,
                    env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        cmd = [*_script("switchboard"), *argv, "-c", str(config or self.config)]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=self.tmp,
                              env=env or self.env())

    def run_briefly(self, config: Path, timeout: float = 15,
                    env: dict[str, str] | None = None) -> tuple[int | None, str]:
        """`switchboard run -c CONFIG` that is expected to refuse at once: (rc, output).

        rc is None when it did not exit within `timeout` (it was then stopped with SIGTERM)."""
        proc = subprocess.Popen([*_script("switchboard"), "run", "-c", str(config)], cwd=self.tmp,
                                env=env or self.env(), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            out, _ = proc.communicate(timeout=timeout)
            return proc.returncode, out
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=60)
            return None, out

    def ctl(self, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        cmd = [*_script("switchboardctl"), "-c", str(self.config), *argv]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=self.tmp,
                              env=self.env())

    def status(self) -> list[dict[str, Any]]:
        out = self.ctl("status", "--json")
        text = out.stdout.strip()
        if not text.startswith("["):
            raise RuntimeError(f"switchboardctl status --json: rc={out.returncode} "
                               f"stdout={out.stdout!r} stderr={out.stderr!r}")
        return json.loads(text)

    def try_status(self) -> list[dict[str, Any]] | None:
        try:
            return self.status()
        except (RuntimeError, ValueError, subprocess.TimeoutExpired):
            return None

    def row(self, program: str) -> dict[str, Any] | None:
        for r in self.try_status() or []:
            if r["name"] == program:
                return r
        return None

    def wait_state(self, program: str, state: str = "RUNNING", timeout: float = 30,
                   new_pid_after: int | None = None) -> dict[str, Any]:
        def ok() -> dict[str, Any] | None:
            r = self.row(program)
            if r and r["state"] == state and (new_pid_after is None or
                                              (r.get("pid") and r["pid"] != new_pid_after)):
                return r
            return None
        return wait_until(ok, timeout, f"{program} {state}"
                          + (f" with a pid other than {new_pid_after}" if new_pid_after else ""),
                          step=0.1)

    # ------------------------------------------------------------------ life

    def start(self, timeout: float = 45) -> Stack:
        out = open(self.run_out, "wb")
        self.proc = subprocess.Popen([*_script("switchboard"), "run", "-c", str(self.config)],
                                     cwd=self.tmp, env=self.env(), stdout=out,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        out.close()

        def up() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"switchboard run exited at start (rc={self.proc.returncode}):"
                                     f"\n{self.run_output()}")
            r = self.row("bot")
            return bool(r and r["state"] == "RUNNING")
        wait_until(up, timeout, "the bot RUNNING in switchboardctl status", step=0.1)
        self.note_processes()
        return self

    def run_output(self) -> str:
        try:
            return self.run_out.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self, timeout: float = 60) -> None:
        """SIGTERM the run process, wait, and prove nothing of the stack is left."""
        self.note_processes()
        proc = self.proc
        problems: list[str] = []
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                problems.append(f"switchboard run did not exit within {timeout} s of SIGTERM")
                proc.kill()
                proc.wait(10)
        problems += self.leftovers(wait=5.0)
        if problems:
            self.kill_leftovers()
            raise AssertionError("the stack left something behind:\n  " + "\n  ".join(problems))

    def close(self) -> None:
        """Last resort for teardown after a failure: kill whatever is left, remove the dir."""
        try:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(10)
            self.kill_leftovers()
        finally:
            if os.environ.get("SB_E2E_KEEP"):
                print(f"kept {self.tmp}", file=sys.stderr)
            else:
                shutil.rmtree(self.tmp, ignore_errors=True)

    # ------------------------------------------------------------------ processes

    def instance(self) -> str | None:
        """The installation id the workers put next to the session marker, if they do."""
        try:
            from wire.names import instance_id
        except ImportError:
            return None
        return instance_id(str(self.state_dir))

    def tagged(self) -> list[psutil.Process]:
        """Every live process of this stack: it carries our tag (the run process, the bot, the
        workers, the CLIs and their tools inherit it), or a session marker of this installation
        (in case something dropped the tag on the way)."""
        instance = self.instance()
        found = []
        for p in psutil.process_iter(["pid"]):
            if p.pid == os.getpid():
                continue
            env = proc_env(p)
            if env.get(TAG_ENV) == self.tag or (
                    instance and env.get(MARKER_ENV) and env.get(INSTANCE_ENV) == instance):
                found.append(p)
        return found

    def clis(self, session: str | None = None) -> list[psutil.Process]:
        """Processes with a session marker (the CLI and its tools), of one session or all."""
        out = []
        for p in self.tagged():
            marker = proc_env(p).get(MARKER_ENV)
            if marker and (session is None or marker == session):
                out.append(p)
        return out

    def cli_roots(self) -> list[psutil.Process]:
        """The CLI processes themselves: marked, and the parent is not marked."""
        marked = {p.pid: p for p in self.clis()}
        roots = []
        for p in marked.values():
            try:
                if p.ppid() not in marked:
                    roots.append(p)
            except psutil.NoSuchProcess:
                pass
        return roots

    def note_processes(self) -> None:
        procs = self.tagged()
        if self.proc is not None:
            try:
                procs.append(psutil.Process(self.proc.pid))
                procs += psutil.Process(self.proc.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                pass
        for p in procs:
            try:
                self.seen.setdefault(p.pid, p.create_time())
            except psutil.NoSuchProcess:
                pass

    def zombies(self) -> list[str]:
        """Zombies among the stack's processes (children of the run process, or pids we saw)."""
        out = []
        candidates: list[psutil.Process] = []
        if self.proc is not None and self.proc.poll() is None:
            try:
                candidates += psutil.Process(self.proc.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                pass
        for pid, created in self.seen.items():
            try:
                p = psutil.Process(pid)
                if abs(p.create_time() - created) < 0.05:
                    candidates.append(p)
            except psutil.NoSuchProcess:
                pass
        for p in {c.pid: c for c in candidates}.values():
            try:
                if p.status() == psutil.STATUS_ZOMBIE:
                    out.append(describe(p))
            except psutil.NoSuchProcess:
                pass
        return out

    def leftovers(self, wait: float = 5.0) -> list[str]:
        """What is still there after the run process exited (waits up to `wait` for it to go)."""
        deadline = time.monotonic() + wait
        while True:
            problems = [f"tagged process left: {describe(p)}" for p in self.tagged()]
            if self.proc is not None and self.proc.poll() is None:
                try:
                    problems += [f"child of run left: {describe(c)}"
                                 for c in psutil.Process(self.proc.pid).children(recursive=True)]
                except psutil.NoSuchProcess:
                    pass
            problems += [f"zombie: {z}" for z in self.zombies()]
            if not problems or time.monotonic() >= deadline:
                return sorted(set(problems))
            time.sleep(POLL_STEP)

    def kill_leftovers(self) -> None:
        for p in self.tagged():
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass

    def session_pid(self, session: str) -> int | None:
        r = self.row(f"session:{session}")
        return int(r["pid"]) if r and r.get("pid") and r["state"] == "RUNNING" else None

    def logs_dir(self) -> Path:
        return self.state_dir / "logs"


# ---------------------------------------------------------------------- the chat, as a user sees it


def bot_messages(tg: Any, chat_id: int) -> list[dict[str, Any]]:
    return [m for m in tg.chat(chat_id) if m.get("from_bot")]


def message_text(msg: dict[str, Any]) -> str:
    return msg.get("text") or msg.get("caption") or ""


def bot_texts(tg: Any, chat_id: int) -> list[str]:
    return [message_text(m) for m in bot_messages(tg, chat_id)]


def wait_text(tg: Any, chat_id: int, pattern: str | re.Pattern[str], timeout: float = 30,
              after: int = 0) -> dict[str, Any]:
    """Wait for a bot message (newer than message id `after`) whose text matches `pattern`."""
    rx = re.compile(pattern) if isinstance(pattern, str) else pattern

    def found(chat: list[dict[str, Any]]) -> bool:
        return any(m.get("from_bot") and m["message_id"] > after and rx.search(message_text(m))
                   for m in chat)
    try:
        chat = tg.wait_for(found, chat_id, timeout)
    except AssertionError:
        raise AssertionError(f"no bot message matching {rx.pattern!r} after message {after} "
                             f"within {timeout:g} s; chat {chat_id} now:\n"
                             + compact_chat(tg, chat_id)) from None
    return next(m for m in chat if m.get("from_bot") and m["message_id"] > after
                and rx.search(message_text(m)))


def compact_chat(tg: Any, chat_id: int, limit: int = 40) -> str:
    lines = []
    for m in tg.chat(chat_id, content=False)[-limit:]:
        who = "bot " if m.get("from_bot") else "user"
        doc = m.get("document")
        extra = f" [file {doc.get('file_name')} {doc.get('size')} B]" if doc else ""
        lines.append(f"  {m['message_id']:>4} {who} {message_text(m)[:160]!r}{extra}")
    return "\n".join(lines)


def last_id(tg: Any, chat_id: int) -> int:
    chat = tg.chat(chat_id)
    return max((m["message_id"] for m in chat), default=0)


def new_session(tg: Any, user: int, name: str, persona: str | None = None,
                timeout: float = 45) -> None:
    """`/new NAME` in the user's private chat; waits for the bot's confirmation."""
    after = last_id(tg, user)
    tg.send(user, f"/new {name}" + (f" {persona}" if persona else ""))
    wait_text(tg, user, rf"Session {re.escape(name)} is ready", timeout, after=after)


def ask(tg: Any, user: int, text: str, timeout: float = 60) -> dict[str, Any]:
    """Send `text` and wait for its echo answer ("echo: <text>")."""
    after = last_id(tg, user)
    tg.send(user, text)
    return wait_text(tg, user, re.escape(f"echo: {text}"), timeout, after=after)
