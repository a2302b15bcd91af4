"""The supervisor harness: one `switchboard run` process with its own state and runtime dirs.

`SupervisorHarness` writes a config, starts `python -m supervisor run -c CONFIG`, and talks
to it over its control and events sockets (`tests.support.control.Control`). With
`standin=True` its children are the stand-ins of `tests/support/standin/` (faults chosen by the
session name); with `standin=False`, the real bot and session workers. On `close()` it stops
the supervisor and proves that no process carrying its tag is left. It must never leave a
process behind: what it finds is killed, and the test fails.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import psutil

from tests.support import procs
from tests.support.config import render_config, short_dir
from tests.support.control import Control
from tests.support.waits import wait_until

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


def tagged(tag: str) -> list[psutil.Process]:
    """Every live process started under the harness with this tag."""
    return procs.tagged(TAG_ENV, tag)


class SupervisorHarness(Control):
    """One `switchboard run` process with its own state and runtime dirs."""

    def __init__(self, base: Path, *, standin: bool = True,
                 supervisor: dict[str, Any] | None = None,
                 claude: dict[str, Any] | None = None, telegram: dict[str, Any] | None = None,
                 env: dict[str, str] | None = None, personas_dir: Path | None = None) -> None:
        self.base = base
        self.state_dir = base / "state"
        self.runtime_dir = short_dir()
        super().__init__(self.runtime_dir)
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

    def write_config(self) -> None:
        top = {"state_dir": str(self.state_dir), "runtime_dir": str(self.runtime_dir),
               "personas_dir": str(self.personas_dir)}
        self.config.write_text(render_config(top, self.sections))

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env[TAG_ENV] = self.tag
        if self.standin:
            env["PYTHONPATH"] = str(STANDIN)
        env.update(self.extra_env)
        return env

    def start(self, wait: bool = True) -> SupervisorHarness:
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
        return self.answers()

    def log(self) -> str:
        """The supervisor's own log file."""
        p = self.state_dir / "logs" / "supervisor.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def output(self) -> str:
        p = self.base / "supervisor.out"
        return p.read_text(errors="replace")[-4000:] if p.exists() else ""

    def ctl(self, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "supervisor.ctl", "-c", str(self.config), *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False,
                              cwd=self.base, env=self.env())

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
            self.close_events()
            shutil.rmtree(self.runtime_dir, ignore_errors=True)

