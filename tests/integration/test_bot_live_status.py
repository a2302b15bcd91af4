"""The live status as the user sees it: /status posts one pinned message that is edited as the
sessions change (a turn running, the idle timeout suspending the session), a second /status
brings it to the bottom (the old one unpinned and gone), and a restarted bot keeps editing the
same message instead of posting another."""
from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.support.stack import OWNER, bot_stack
from tests.support.waits import wait_until


def _pinned(tg: Any) -> list[dict[str, Any]]:
    return [m for m in tg.chat(OWNER) if m["pinned"]]


def _status(tg: Any) -> dict[str, Any]:
    (status,) = _pinned(tg)
    return status


def _line(tg: Any, name: str) -> str:
    return next(ln for ln in (_status(tg)["text"] or "").splitlines() if f" {name} — " in ln)


@pytest.mark.timeout(150)
def test_the_pinned_status_follows_the_sessions(tmp_path: Path, telegram_api: Any,
                                                claude_bin: str, cli_env: dict[str, str]) -> None:
    tg = telegram_api
    with bot_stack(tmp_path, tg, claude_bin, cli_env,
                   telegram={"status_refresh_seconds": 0.5},
                   claude={"idle_suspend_seconds": 2}) as st:
        st.new_session("alpha")
        st.new_session("beta")
        mid = st.say("/status")
        wait_until(lambda: _pinned(tg), 20, "the pinned status")
        first = _status(tg)
        assert first["message_id"] > mid and first["text"].startswith("📌 Sessions, live")
        assert _line(tg, "beta").startswith("▶ beta — ") and "persona default" in _line(tg, "beta")
        buttons = [b["callback_data"] for row in first["reply_markup"]["inline_keyboard"]
                   for b in row]
        assert buttons == ["sw:alpha"]  # the chat is on beta: a button to switch to alpha

        # beta answers (its CLI is up: ready), then its idle timeout suspends it: the same
        # message says so as it happens.
        seen: list[str] = []

        def beta_suspended_after_ready() -> bool:
            line = _line(tg, "beta")
            if not seen or seen[-1] != line:
                seen.append(line)
            return "— suspended" in line and any("— ready" in s for s in seen)
        assert "echo: hello" in st.ask("hello", expect=lambda t: "echo: hello" in t)
        wait_until(beta_suspended_after_ready, 30, "beta shown ready, then suspended")
        assert _status(tg)["message_id"] == first["message_id"]
        assert _status(tg)["edits"] >= 1
        assert "$0.0000" not in _line(tg, "beta")  # its cost is counted

        # /status again: a new message at the bottom, pinned; the old one is gone.
        st.say("/status")
        wait_until(lambda: [m["message_id"] for m in _pinned(tg)] not in ([], [first["message_id"]])
                   and len(_pinned(tg)) == 1, 20, "the status brought to the bottom")
        second = _status(tg)
        assert not any(m["message_id"] == first["message_id"] for m in tg.chat(OWNER))
        assert second["message_id"] == max(m["message_id"] for m in tg.chat(OWNER)
                                           if not m["service"])

        # A restarted bot edits that same message when something changes.
        old = st.bot_pid()
        assert old
        os.kill(old, signal.SIGKILL)
        wait_until(lambda: st.bot_pid() not in (None, old), 30, "the bot restarted")
        st.say("/stop alpha")
        wait_until(lambda: "— stopped" in _line(tg, "alpha"), 30, "alpha shown stopped")
        assert _status(tg)["message_id"] == second["message_id"]
        assert len(_pinned(tg)) == 1
        assert not [m for m in tg.chat(OWNER) if m["message_id"] > second["message_id"]
                    and (m["text"] or "").startswith("📌")]
        # Its button switches the chat, and the status marks the new active session.
        tg.tap(OWNER, second["message_id"], "sw:alpha")
        wait_until(lambda: _line(tg, "alpha").startswith("▶ alpha"), 20, "alpha marked active")
        assert [b["callback_data"] for row in _status(tg)["reply_markup"]["inline_keyboard"]
                for b in row] == ["sw:beta"]
