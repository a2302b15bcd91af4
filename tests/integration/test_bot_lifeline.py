"""The lifeline: the supervisor never gives the bot up.

Killed more times than `startretries` inside the window, or stopping at start with a refused
token, the bot waits in BACKOFF at `bot_max_backoff_seconds` and comes back by itself; nobody
ever sees it FATAL, and `status`, systemd's STATUS= and `doctor` say since when and why."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import psutil
import pytest

from tests.support.supervisor import SupervisorHarness
from tests.support.waits import wait_until
from wire import messages as m

pytestmark = pytest.mark.timeout(90)

ROOT = Path(__file__).resolve().parents[2]
LIFELINE = {"startretries": 2, "retry_window_seconds": 30.0, "bot_max_backoff_seconds": 1.0}


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_bot_killed_past_startretries_comes_back_by_itself(tmp_path: Path) -> None:
    sup = SupervisorHarness(tmp_path, telegram={"enabled": True}, supervisor=LIFELINE,
                     env={"TELEGRAM_BOT_TOKEN": "1:x"})
    try:
        sup.start()
        sup.subscribe()
        seen: list[tuple[str, str]] = []

        def bot_row() -> m.ProgramStatus:
            row = sup.status()["bot"]
            seen.append((row.state, row.description))
            return row

        pids = []
        for _ in range(LIFELINE["startretries"] + 3):  # well past the limit, inside the window
            row = wait_until(lambda: (r := bot_row()).state == "RUNNING" and r.pid not in pids
                             and r, 15, "the bot RUNNING with a new pid")
            pid = row.pid
            pids.append(pid)
            os.kill(pid, signal.SIGKILL)
            wait_until(lambda p=pid: _gone(p), 10, f"pid {pid} gone")
        wait_until(lambda: (r := bot_row()).state == "RUNNING" and r.pid not in pids, 15,
                   "the bot back RUNNING by itself")
        events = [e for e in sup.drain_events() if e.program == "bot"]
        assert "FATAL" not in {e.to_state for e in events}
        assert "FATAL" not in {state for state, _ in seen}
        assert any(e.to_state == "BACKOFF" and "still retrying after" in e.reason for e in events)
        # While it waited past the limit, status said since when and why.
        waiting = [d for state, d in seen if state == "BACKOFF"]
        assert any(d.startswith("retrying since ") and d.endswith(": killed by SIGKILL")
                   for d in waiting), seen
        assert len(set(pids)) == len(pids)
    finally:
        sup.close()


class Notifications:
    """A NOTIFY_SOCKET read by a thread as the supervisor writes (it never waits for a reader)."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="sb-n-", dir="/tmp")
        self.path = f"{self.dir}/notify"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.got: list[dict[str, str]] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._done.is_set():
            try:
                data = self.sock.recv(4096).decode()
            except (TimeoutError, OSError):
                continue
            self.got.append(dict(line.split("=", 1) for line in data.splitlines()))

    def close(self) -> None:
        self._done.set()
        self._thread.join(5)
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def test_a_refused_token_is_retried_and_said_everywhere(tmp_path: Path, telegram_api) -> None:
    """The real bot, a token the Telegram sandbox refuses: a one-sentence stop at each start;
    the supervisor retries it at the long delay, and says so in status, STATUS= and doctor."""
    notes = Notifications()
    # The real bot imports PTB before it can answer a Ping: a heartbeat that tolerates a slow box.
    sup = SupervisorHarness(tmp_path, standin=False, supervisor={**LIFELINE,
                                                          "bot_max_backoff_seconds": 60.0,
                                                          "heartbeat_timeout_seconds": 15.0},
                     telegram={"enabled": True, "api_base_url": telegram_api.url,
                               "allowed_user_ids": [1001]},
                     env={"TELEGRAM_BOT_TOKEN": "999999:" + "R" * 30, "NOTIFY_SOCKET": notes.path})
    try:
        sup.start()
        row = wait_until(lambda: (r := sup.status()["bot"]).description.startswith(
            "retrying since ") and r, 40, "the bot retrying in status")
        assert row.state == "BACKOFF"
        assert row.description.endswith(": Telegram refused the bot token: check the token in the"
                                        " config (telegram.token or its environment variable),"
                                        " then restart.")
        assert "RRRRRRRRRR" not in row.description
        ctl = sup.ctl("status", "bot")
        assert ctl.returncode == 0 or "BACKOFF" in ctl.stdout
        assert "bot" in ctl.stdout and "BACKOFF" in ctl.stdout and "retrying since" in ctl.stdout
        line = wait_until(lambda: next((x["STATUS"] for x in list(notes.got) if x.get(
            "STATUS", "").startswith("bot: retrying since ")), None), 10, "STATUS= retrying")
        assert "Telegram refused the bot token" in line and line.endswith("; 0 sessions")
        doctor = subprocess.run([sys.executable, "-m", "supervisor", "doctor", "-c",
                                 str(sup.config)], capture_output=True, text=True, timeout=60,
                                env=sup.env(), cwd=ROOT)
        bot_lines = [ln for ln in doctor.stdout.splitlines() if "  bot  " in ln]
        assert bot_lines and "BACKOFF, retrying since " in bot_lines[0], doctor.stdout
        assert "Telegram refused the bot token" in bot_lines[0]
        assert "RRRRRRRRRR" not in doctor.stdout + doctor.stderr
        assert sup.state("bot") != "FATAL"
    finally:
        sup.close()
        notes.close()
