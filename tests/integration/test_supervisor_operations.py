"""Operations on a running supervisor, through `switchboard` and `switchboardctl` as a user runs
them: the ctl finds sockets its shell would not derive, the .stdio files roll over, check-config
says what a reload cannot apply."""
from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.config import render_config, short_dir
from tests.support.supervisor import SupervisorHarness
from tests.support.waits import wait_until
from wire import messages as m
from wire.endpoints import RUNTIME_DIR_ENV
from wire.logs import BACKUPS, MAX_BYTES

pytestmark = pytest.mark.timeout(60)


class UnitLikeHarness(SupervisorHarness):
    """A supervisor started the way the system unit starts it: no runtime_dir in the config,
    the runtime dir from SWITCHBOARD_RUNTIME_DIR, no XDG_RUNTIME_DIR."""

    def write_config(self) -> None:
        top = {"state_dir": str(self.state_dir), "personas_dir": str(self.personas_dir)}
        self.config.write_text(render_config(top, self.sections))

    def env(self) -> dict[str, str]:
        env = super().env()
        env.pop("XDG_RUNTIME_DIR", None)
        env[RUNTIME_DIR_ENV] = str(self.runtime_dir)
        return env


def test_switchboardctl_finds_the_sockets_of_a_supervisor_started_like_the_unit(
        tmp_path: Path) -> None:
    sup = UnitLikeHarness(tmp_path)
    shell_runtime = short_dir()  # what a login shell's XDG_RUNTIME_DIR would give
    try:
        sup.start()
        shell = {k: v for k, v in sup.env().items() if k != RUNTIME_DIR_ENV}
        shell["XDG_RUNTIME_DIR"] = str(shell_runtime)

        def ctl(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "supervisor.ctl", "-c", str(sup.config),
                                   *args], capture_output=True, text=True, timeout=30,
                                  env=shell, cwd=tmp_path, check=False)

        made = ctl("new", "ops1")
        assert made.returncode == 0, made.stdout + made.stderr
        sup.wait_state("session:ops1", "RUNNING")
        status = ctl("status")
        assert status.returncode == 0 and "session:ops1" in status.stdout, status
        assert "RUNNING" in status.stdout
        assert not list(shell_runtime.iterdir())  # nothing went where the shell would look
    finally:
        sup.close()
        shutil.rmtree(shell_runtime, ignore_errors=True)


def test_a_stdio_file_past_the_limit_rolls_over_at_spawn_and_stays_private(
        tmp_path: Path) -> None:
    sup = SupervisorHarness(tmp_path)
    logs = sup.state_dir / "logs"
    logs.mkdir(parents=True)
    stdio = logs / "session-big.stdio"
    stdio.write_bytes(b"old run\n" * (MAX_BYTES // 8 + 1))
    stdio.chmod(0o644)  # made by hand, too open
    for i in range(1, BACKUPS + 1):
        (logs / f"session-big.stdio.{i}").write_bytes(f"backup {i}\n".encode())
    try:
        sup.start()
        sup.ok(m.NewSession(id=m.new_id(), name="big"))
        sup.wait_state("session:big", "RUNNING")
        assert stdio.stat().st_size < 4096  # this run's output only
        assert stat.S_IMODE(stdio.stat().st_mode) == 0o600
        rolled = logs / "session-big.stdio.1"
        assert rolled.stat().st_size > MAX_BYTES and rolled.read_bytes().startswith(b"old run")
        assert (logs / "session-big.stdio.2").read_bytes() == b"backup 1\n"
        oldest = (logs / f"session-big.stdio.{BACKUPS}").read_bytes()
        assert oldest == f"backup {BACKUPS - 1}\n".encode()
        assert not (logs / f"session-big.stdio.{BACKUPS + 1}").exists()  # the oldest went
        assert stat.S_IMODE(rolled.stat().st_mode) == 0o600
    finally:
        sup.close()


def test_check_config_names_what_a_reload_cannot_apply(tmp_path: Path) -> None:
    sup = SupervisorHarness(tmp_path)
    out = subprocess.run([sys.executable, "-m", "supervisor", "check-config", "-c",
                          str(sup.config)], capture_output=True, text=True, timeout=30,
                         env=sup.env(), cwd=tmp_path, check=False)
    shutil.rmtree(sup.runtime_dir, ignore_errors=True)
    assert out.returncode == 0, out.stderr
    assert "need a restart: state_dir, runtime_dir (the supervisor);" in out.stdout
    assert ("telegram.api_base_url, telegram.token, telegram.token_env, voice.api_key_env"
            " (the bot)") in out.stdout
    assert out.stdout.splitlines()[0] == f"{sup.config}: ok (4 personas)"


def test_sighup_reaches_a_running_worker_without_a_restart(tmp_path: Path, claude_bin: str,
                                                           cli_env: dict[str, str]) -> None:
    extra = {k: v for k, v in cli_env.items() if os.environ.get(k) != v}
    sup = SupervisorHarness(tmp_path, standin=False,
                            supervisor={"startsecs": 0.5, "heartbeat_timeout_seconds": 5.0},
                            claude={"binary": claude_bin, "env": extra})
    try:
        sup.start()
        assert sup.ok(m.NewSession(id=m.new_id(), name="live1"), timeout=30).results[0].ok
        pid = sup.wait_state("session:live1", "RUNNING").pid
        wait_until(lambda: "event=registered program=session:live1" in sup.log(), 15,
                   "the worker to register")
        sup.sections["claude"].update(permission_timeout_seconds=42.0, idle_suspend_seconds=77.0)
        sup.write_config()
        assert sup.proc is not None
        sup.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: "event=reload_applied program=session:live1" in sup.log(), 15,
                   "the worker to apply the reload")
        worker_log = (sup.state_dir / "logs" / "session-live1.log").read_text()
        line = next(x for x in worker_log.splitlines() if "event=reloaded" in x)
        assert "idle_suspend_seconds" in line and "permission_timeout_seconds" in line
        assert sup.status()["session:live1"].pid == pid  # applied live, not by a restart
    finally:
        sup.close()
