"""The whole stack, started the way a user starts it, and driven only from the outside.

`Stack` writes a config into a temp dir, starts `switchboard run -c CONFIG` as a subprocess
(the bot token in the variable named by `telegram.token_env`), talks to it with
`switchboardctl`, its control socket (`stack.sup`, typed rows) and the sandbox Telegram server,
and on `stop()` proves that nothing it started is left: the run process exited after SIGTERM,
no process carries the stack's tag or a session marker of this installation, no zombie, no
child of the run process. It must never leave a process behind: what it finds is killed, and
the stop fails.

Every process of one stack is found by a tag in its environment (`SB_E2E_STACK=<id>`): the run
process gets it, its children inherit it, and the workers pass it on to the CLI and its tools.
That keeps the checks to this stack alone while other stacks run on the same machine.

Two tiers start it: the end-to-end tests (and the benchmarks) with `Stack(tg, model, claude)`
and the `E2E` timings, and the bot's integration tests with `bot_stack(...)`, which keeps that
tier's faster timings, 1 s long polls and its own CLI environment. Used by bench/ too, so it
never imports pytest.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from tests.support import supervisor as supervisor_harness
from tests.support.config import render_config, short_dir
from tests.support.control import Control
from tests.support.procs import TAG_ENV, StackProcesses
from tests.support.waits import wait_until

ROOT = Path(__file__).resolve().parent.parent.parent
TOKEN_ENV = "SB_E2E_BOT_TOKEN"
OWNER = 1001

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


@dataclass(frozen=True)
class Profile:
    """The settings a tier's stacks start from; a test's own settings go on top of them."""

    supervisor: dict[str, Any]
    telegram: dict[str, Any]
    claude: dict[str, Any]
    top: dict[str, Any] = field(default_factory=dict)
    # How start() sees the bot RUNNING: through `switchboardctl status` as a user does, or
    # through the control socket (no process spawned per poll, so a loaded machine does not
    # starve the starting bot into a heartbeat timeout under the fast timings).
    ready_by_ctl: bool = True


E2E = Profile(supervisor=FAST_SUPERVISOR, telegram=FAST_TELEGRAM,
              claude={"idle_suspend_seconds": 300})
# The bot's integration tests: the supervisor harness's timings (heartbeats every 0.2 s) and
# short long polls, so that a restarted bot is back within a second.
BOT_TESTS = Profile(supervisor=supervisor_harness.FAST,
                    telegram={"enabled": True, "edit_interval_seconds": 0.3,
                              "poll_timeout_seconds": 1},
                    claude={}, top={"personas_dir": str(ROOT / "personas")},
                    ready_by_ctl=False)


def claude_bin() -> str | None:
    from sandbox.model_api import find_claude

    return find_claude()


def _script(name: str) -> list[str]:
    """The console script next to our interpreter (what a user types), else `python -m`."""
    exe = Path(sys.executable).parent / name
    if exe.exists():
        return [str(exe)]
    module = {"switchboard": "supervisor", "switchboardctl": "supervisor.ctl"}[name]
    return [sys.executable, "-m", module]


class Stack(StackProcesses):
    """One Switchboard installation in a temp dir, with both sandboxes; see the module doc.

    `model` is the model sandbox the CLI is pointed at, or None when `cli_env` (a complete
    environment for the real CLI) is given instead. `base`, when given, holds the config, state
    and output instead of a fresh temp dir (and is left in place by `close()`).
    """

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
        profile: Profile = E2E,
        cli_env: dict[str, str] | None = None,
        base: Path | None = None,
        token_in_env_file: bool = False,
        subscription: bool = False,
    ) -> None:
        self.tg, self.model = tg, model
        # The token in the `env` file next to the config (what `switchboard init` writes) instead
        # of the variable exported to `switchboard run`.
        self.token_in_env_file = token_in_env_file
        self.owns_tmp = base is None
        self.tmp = short_dir(prefix) if base is None else base
        self.tag = f"{self.tmp.name}-{uuid.uuid4().hex[:6]}"
        self.config = self.tmp / "switchboard.toml"
        self.state_dir = self.tmp / "state"
        # A unix socket path must stay short: under a given base, the sockets get their own.
        self.runtime_dir = self.tmp / "run" if base is None else short_dir()
        self.users = list(users)
        self.proc: subprocess.Popen[bytes] | None = None
        self.sup = Control(self.runtime_dir)
        self.run_out = self.tmp / "switchboard-run.out"
        self.restarts = 0  # how often restart() started the supervisor again
        self.seen: dict[int, float] = {}  # pid -> create_time of every stack process we saw
        self.ready_by_ctl = profile.ready_by_ctl
        if cli_env is not None:
            cli_extra = dict(cli_env)
        else:
            from sandbox.model_api import cli_environment

            # subscription: the CLI reports the subscription's limits (rate_limit_event).
            env = cli_environment(model.url, self.tmp / "claude-home", subscription)
            cli_extra = {k: v for k, v in env.items() if os.environ.get(k) != v}
        cli_extra[TAG_ENV] = self.tag
        self.top: dict[str, Any] = {
            "state_dir": str(self.state_dir),
            "runtime_dir": str(self.runtime_dir),
            **profile.top,
            **(top or {}),
        }
        self.sections: dict[str, dict[str, Any]] = {
            "telegram": {
                "token_env": TOKEN_ENV,
                "allowed_user_ids": self.users,
                "api_base_url": tg.url,
                **profile.telegram,
                **(telegram or {}),
            },
            "claude": {
                "binary": claude,
                "env": cli_extra,
                **profile.claude,
                **(claude_cfg or {}),
            },
            "supervisor": {**profile.supervisor, **(supervisor or {})},
        }
        self.write_config()
        if token_in_env_file:
            env_file = self.tmp / "env"
            env_file.write_text(f"# the bot token\n{TOKEN_ENV}={tg.token}\n")
            env_file.chmod(0o600)

    # ------------------------------------------------------------------ config and commands

    def write_config(self, text: str | None = None, path: Path | None = None) -> Path:
        path = path or self.config
        path.write_text(text if text is not None else render_config(self.top, self.sections))
        path.chmod(0o600)
        return path

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.token_in_env_file:
            env.pop(TOKEN_ENV, None)
        else:
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
        return json.loads(text)  # type: ignore[no-any-return]

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
        return wait_until(ok, timeout, f"{program} {state}"  # type: ignore[no-any-return]
                          + (f" with a pid other than {new_pid_after}" if new_pid_after else ""),
                          step=0.1)

    # ------------------------------------------------------------------ life

    def start(self, timeout: float = 45, bot_running: bool = True) -> Stack:
        """Start `switchboard run` and wait for the bot RUNNING (`bot_running=False`: only for
        the control socket to answer, for a bot that is meant to fail)."""
        out = open(self.run_out, "wb")  # noqa: SIM115 - closed after Popen
        self.proc = subprocess.Popen([*_script("switchboard"), "run", "-c", str(self.config)],
                                     cwd=self.tmp, env=self.env(), stdout=out,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        out.close()
        self.sup.proc = self.proc

        def up() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"switchboard run exited at start (rc={self.proc.returncode}):"
                                     f"\n{self.run_output()}")
            if not bot_running:
                return self.sup.answers()
            if not self.ready_by_ctl:
                return self.sup.answers() and self.sup.state("bot") == "RUNNING"
            r = self.row("bot")
            return bool(r and r["state"] == "RUNNING")
        wait_until(up, timeout, "the control socket answering" if not bot_running else
                   "the bot RUNNING in switchboardctl status" if self.ready_by_ctl
                   else "the bot RUNNING on the control socket", step=0.1)
        self.note_processes()
        return self

    def kill_supervisor(self) -> int:
        """SIGKILL `switchboard run` (its children follow it by their parent-death signal);
        the pid it had."""
        assert self.proc is not None
        pid = self.proc.pid
        self.note_processes()
        self.proc.kill()
        self.proc.wait(30)
        return pid

    def restart(self, timeout: float = 45) -> Stack:
        """Start `switchboard run` again on the same config and state, as systemd does after
        the supervisor died (its output appended to the same file)."""
        assert self.proc is None or self.proc.poll() is not None, "the supervisor still runs"
        self.restarts += 1
        if self.run_out.exists():  # start() begins a fresh output file: keep the earlier one
            self.run_out.rename(self.run_out.with_suffix(f".out.{self.restarts}"))
        return self.start(timeout)

    def __enter__(self) -> Self:
        """Start, and wait until the bot registered its commands (it polls right after)."""
        self.start()
        wait_until(lambda: self.tg.commands(), 15, "setMyCommands from the bot")
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if exc[0] is not None:
                print("---- switchboard run output\n" + self.run_output())
                print("---- bot log\n" + self.bot_log()[-6000:])
            self.stop()
        finally:
            self.close()

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
            self.sup.close_events()
            if os.environ.get("SB_E2E_KEEP"):
                print(f"kept {self.tmp}", file=sys.stderr)
            else:
                if self.owns_tmp:
                    shutil.rmtree(self.tmp, ignore_errors=True)
                else:
                    shutil.rmtree(self.runtime_dir, ignore_errors=True)

    # ------------------------------------------------------------------ processes

    def session_pid(self, session: str) -> int | None:
        r = self.row(f"session:{session}")
        return int(r["pid"]) if r and r.get("pid") and r["state"] == "RUNNING" else None

    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    def bot_log(self) -> str:
        p = self.logs_dir() / "bot.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def bot_pid(self) -> int | None:
        """The bot's pid while it is RUNNING (from the control socket)."""
        row = self.sup.status().get("bot")
        return row.pid if row and row.state == "RUNNING" else None

    # ------------------------------------------------------------------ the chat, as the owner

    def say(self, text: str, chat_id: int | None = None, user: int | None = None) -> int:
        """Send as the owner (in a private chat: that chat's user); the new message's id."""
        if user is None:
            user = chat_id if chat_id and chat_id > 0 else OWNER
        kind = "group" if chat_id is not None and chat_id < 0 else None
        return int(self.tg.send(user, text, chat_id, chat_type=kind)["message"]["message_id"])

    def wait_text(self, pred: Callable[[str], bool], chat_id: int = OWNER, timeout: float = 20.0,
                  after: int = 0) -> list[dict[str, Any]]:
        """Until a bot message newer than `after` has a text matching `pred`; the whole chat."""
        return self.tg.wait_for(  # type: ignore[no-any-return]
            lambda c: any(pred(msg.get("text") or "") for msg in c
                          if msg["from_bot"] and msg["message_id"] > after),
            chat_id, timeout)

    def new_session(self, name: str, chat_id: int = OWNER) -> None:
        mid = self.say(f"/new {name}", chat_id)
        self.wait_text(lambda t: f"Session {name} is ready" in t, chat_id, 30, after=mid)

    def ask_msg(self, text: str, chat_id: int = OWNER, timeout: float = 20.0,
                expect: Callable[[str], bool] | None = None) -> dict[str, Any]:
        """Send a message; the bot's first reply after it (matching `expect`)."""
        mid = self.say(text, chat_id)
        pred = expect or (lambda t: True)
        chat = self.wait_text(pred, chat_id, timeout, after=mid)
        return next(msg for msg in chat
                    if msg["from_bot"] and msg["message_id"] > mid and pred(msg["text"] or ""))

    def ask(self, text: str, chat_id: int = OWNER, timeout: float = 20.0,
            expect: Callable[[str], bool] | None = None) -> str:
        """Send a message; the text of the bot's first reply after it (matching `expect`)."""
        return str(self.ask_msg(text, chat_id, timeout, expect)["text"])


def bot_stack(base: Path, telegram_api: Any, claude_bin: str, cli_env: dict[str, str], *,
              telegram: dict[str, Any] | None = None, claude: dict[str, Any] | None = None,
              supervisor: dict[str, Any] | None = None) -> Stack:
    """The stack of the bot's integration tests, in `base`: `with bot_stack(...) as st:`."""
    return Stack(telegram_api, None, claude_bin, profile=BOT_TESTS, cli_env=cli_env, base=base,
                 telegram=telegram, claude_cfg=claude, supervisor=supervisor)
