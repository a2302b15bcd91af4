"""Permission prompts as buttons, routed to the right session; background-session notices."""
from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.support.chat import button, prompt_for
from tests.support.procs import alive
from tests.support.stack import OWNER, bot_stack
from tests.support.waits import wait_until


def _message(tg: Any, message_id: int) -> dict[str, Any]:
    return next(m for m in tg.chat(OWNER) if m["message_id"] == message_id)


@pytest.mark.timeout(90)
def test_two_sessions_waiting_one_allowed_one_denied(tmp_path: Path, telegram_api, claude_bin,
                                                     cli_env) -> None:
    tg = telegram_api
    with bot_stack(tmp_path, tg, claude_bin, cli_env,
               claude={"permission_timeout_seconds": 5.0}) as st:
        st.new_session("alpha")
        st.say("#sb:bash=touch from-alpha.txt")
        pa = prompt_for(tg, OWNER, "touch from-alpha.txt", session="alpha")
        assert [b["text"] for row in pa["reply_markup"]["inline_keyboard"] for b in row] == [
            "Allow", "Deny", "Allow `touch` commands for this session"]
        st.new_session("beta")  # beta is now the active session; alpha waits in the background
        st.say("#sb:bash=touch from-beta.txt")
        pb = prompt_for(tg, OWNER, "touch from-beta.txt", session="beta")

        tg.tap(OWNER, pb["message_id"], button(pb, "Deny"))
        tg.tap(OWNER, pa["message_id"], button(pa, "Allow"))
        wait_until(lambda: not _message(tg, pa["message_id"])["reply_markup"]
                   and not _message(tg, pb["message_id"])["reply_markup"], 10, "buttons removed")
        assert "✅ Allowed." in _message(tg, pa["message_id"])["text"]
        assert "🚫 Denied." in _message(tg, pb["message_id"])["text"]

        # alpha ran the command; it is a background session now, so its answer is labelled and
        # a short notice offers to switch to it.
        chat = st.wait_text(lambda t: "Session alpha finished a turn" in t, timeout=30)
        assert any(m["from_bot"] and (m["text"] or "").startswith("[alpha]\n")
                   and "tool said:" in m["text"] for m in chat)
        work = st.state_dir / "sessions"
        assert (work / "alpha" / "work" / "from-alpha.txt").exists()
        notice = next(m for m in chat if "Session alpha finished a turn" in (m["text"] or ""))
        assert button(notice, "Switch to alpha") == "sw:alpha"
        # beta's turn ended without running its command.
        st.wait_text(lambda t: "✓ " in t or "✗ " in t, after=pb["message_id"], timeout=30)
        assert not (work / "beta" / "work" / "from-beta.txt").exists()

        tg.tap(OWNER, notice["message_id"], "sw:alpha")
        st.wait_text(lambda t: t == "Active session: alpha.", after=notice["message_id"])
        callbacks = tg.callbacks()
        assert callbacks and all(c["answered"] for c in callbacks)

        # "Allow `touch` commands for this session", then a prompt nobody answers: it times
        # out, buttons go.
        st.say("#sb:bash=touch always1.txt")
        pc = prompt_for(tg, OWNER, "touch always1.txt", session="alpha")
        tg.tap(OWNER, pc["message_id"], button(pc, "Allow `touch` commands for this session"))
        st.wait_text(lambda t: "✓ " in t, after=pc["message_id"], timeout=30)
        assert "Allowed for this session" in _message(tg, pc["message_id"])["text"]
        mid = st.say("#sb:bash=touch always2.txt")
        st.wait_text(lambda t: "✓ " in t, after=mid, timeout=30)
        assert (work / "alpha" / "work" / "always2.txt").exists()  # no second prompt
        assert st.ask("/switch beta") == "Active session: beta."
        st.say("#sb:bash=touch too-late.txt")
        pd = prompt_for(tg, OWNER, "touch too-late.txt", session="beta")
        wait_until(lambda: not _message(tg, pd["message_id"])["reply_markup"], 20, "timeout")
        assert "⌛" in _message(tg, pd["message_id"])["text"]
        assert not (work / "beta" / "work" / "too-late.txt").exists()


@pytest.mark.timeout(120)
def test_a_tap_on_a_prompt_the_worker_no_longer_has_shows_the_workers_sentence(
        tmp_path: Path, telegram_api, claude_bin, cli_env) -> None:
    tg = telegram_api
    with bot_stack(tmp_path, tg, claude_bin, cli_env) as st:
        st.new_session("alpha")
        st.say("#sb:bash=touch never.txt")
        old = prompt_for(tg, OWNER, "touch never.txt", session="alpha")
        # The worker dies with the prompt open; the one that replaces it runs the turn again and
        # asks again, but knows nothing of the first prompt.
        pid = st.sup.status()["session:alpha"].pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not alive(pid), 10, "the killed worker gone")

        def again() -> dict[str, Any] | None:
            return next((msg for msg in tg.chat(OWNER)
                         if msg["from_bot"] and msg["message_id"] > old["message_id"]
                         and msg["reply_markup"] and "touch never.txt" in (msg["text"] or "")),
                        None)
        fresh = wait_until(again, 60, "the prompt asked again by the new worker")

        tg.tap(OWNER, old["message_id"], button(old, "Allow"))
        wait_until(lambda: not _message(tg, old["message_id"])["reply_markup"], 20,
                   "the old prompt's buttons removed")
        text = _message(tg, old["message_id"])["text"]
        assert "Not applied: That permission prompt is no longer waiting" in text
        assert "✅ Allowed." not in text
        assert not (st.state_dir / "sessions" / "alpha" / "work" / "never.txt").exists()

        # The new prompt still works.
        tg.tap(OWNER, fresh["message_id"], button(fresh, "Deny"))
        wait_until(lambda: "🚫 Denied." in _message(tg, fresh["message_id"])["text"], 20,
                   "the new prompt denied")
        callbacks = tg.callbacks()
        assert callbacks and all(c["answered"] for c in callbacks)
