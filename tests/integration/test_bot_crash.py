"""kill -9 of the bot mid-stream and of a worker mid-turn: every message answered, none twice
(at most one repeat), none missing."""
from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.support.stack import OWNER, bot_stack
from tests.support.waits import wait_until

WORDS = " ".join(f"w{i}" for i in range(1, 51))
# A killed worker's turn runs again from the start: 30 words (3 s) still outlast the kill.
WORKER_WORDS = " ".join(f"w{i}" for i in range(1, 31))
EDITS = {"drafts": False}  # the draft is a message edited in place, which a crash can leave


def _count(tg: Any, needle: str) -> int:
    return sum(1 for m in tg.chat(OWNER) if m["from_bot"] and needle in (m["text"] or ""))


def _draft_started(tg: Any) -> bool:
    return any(m["from_bot"] and (m["text"] or "").startswith("w1 ") for m in tg.chat(OWNER))


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _kill9(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: _gone(pid), 10, f"pid {pid} gone")


@pytest.mark.timeout(90)
def test_kill9_of_the_bot_mid_stream(tmp_path: Path, telegram_api, claude_bin, cli_env) -> None:
    tg = telegram_api
    with bot_stack(tmp_path, tg, claude_bin, cli_env, telegram=EDITS) as st:
        st.new_session("demo")
        st.say("#sb:slow=100 #sb:words=50")
        wait_until(lambda: _draft_started(tg), 20, "the draft")
        old = st.bot_pid()
        assert old
        _kill9(old)
        st.say("written while the bot was dead")
        wait_until(lambda: st.bot_pid() not in (None, old), 20, "the bot restarted")
        wait_until(lambda: _count(tg, "echo: written while the bot was dead") >= 1
                   and _count(tg, WORDS) >= 1, 40, "both answers")
        wait_until(lambda: _count(tg, "✓ ") >= 2, 20, "both footers")
        assert _count(tg, WORDS) in (1, 2)
        assert _count(tg, "echo: written while the bot was dead") in (1, 2)
        assert not tg.pending_updates()
        # The restarted bot replaced the old draft instead of leaving it half-written.
        partial = [m for m in tg.chat(OWNER) if m["from_bot"] and (m["text"] or "").startswith(
            "w1 ") and WORDS not in m["text"]]
        assert len(partial) <= 1


@pytest.mark.timeout(90)
def test_kill9_of_a_worker_mid_turn(tmp_path: Path, telegram_api, claude_bin, cli_env) -> None:
    tg = telegram_api
    with bot_stack(tmp_path, tg, claude_bin, cli_env, telegram=EDITS) as st:
        st.new_session("demo")
        st.say("#sb:slow=100 #sb:words=30")
        wait_until(lambda: _draft_started(tg), 20, "the draft")
        old = st.sup.status()["session:demo"].pid
        assert old
        _kill9(old)
        st.say("written while the worker was dead")
        wait_until(lambda: _count(tg, "echo: written while the worker was dead") >= 1
                   and _count(tg, WORKER_WORDS) >= 1, 60, "both answers")
        wait_until(lambda: _count(tg, "✓ ") >= 2, 20, "both footers")
        assert st.sup.status()["session:demo"].pid != old
        assert _count(tg, WORKER_WORDS) in (1, 2)
        assert _count(tg, "echo: written while the worker was dead") in (1, 2)
