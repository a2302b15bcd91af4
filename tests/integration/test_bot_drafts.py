"""Answers streamed the Telegram-native way: into a draft with Telegram's Stop in a private
chat, ending as one normal message; by edits with a ⏹ button where drafts are refused (the
refusal remembered for the chat). Either Stop interrupts the turn, which never runs again."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.chat import journal_rows
from tests.support.stack import OWNER, bot_stack
from tests.support.waits import wait_until

WORDS = " ".join(f"w{i}" for i in range(1, 31))
GROUP = -901


def _after(tg: Any, mid: int) -> list[dict[str, Any]]:
    return [m for m in tg.chat(OWNER) if m["from_bot"] and m["message_id"] > mid]


def _footer(tg: Any, mid: int, mark: str = "✓ ") -> bool:
    return any(mark in (m["text"] or "") for m in _after(tg, mid))


def _calls(tg: Any, method: str, since: int = 0) -> list[dict[str, Any]]:
    return [c for c in tg.calls(method)[since:] if str(c["params"].get("chat_id")) == str(OWNER)]


@pytest.mark.timeout(120)
def test_an_answer_streams_through_a_draft_and_stop_ends_its_turn(
        tmp_path: Path, telegram_api: Any, claude_bin: str, cli_env: dict[str, str]) -> None:
    tg = telegram_api
    with bot_stack(tmp_path, tg, claude_bin, cli_env) as st:
        st.new_session("demo")
        mid = st.say("#sb:thinking #sb:slow=80 #sb:words=30")  # thinks ~1 s: "Thinking…"
        wait_until(lambda: _footer(tg, mid), 30, "the streamed answer")
        # One normal message holds the answer (and its footer); nothing was streamed by edits.
        (answer,) = _after(tg, mid)
        assert answer["text"].startswith(WORDS + "\n\n✓ ")
        assert answer["edits"] <= 1  # the footer joins the answer's message
        assert not [c for c in _calls(tg, "editMessageText") if c["params"]["text"].startswith(
            "w1") and "✓" not in c["params"]["text"]]
        # The draft: "Thinking…" (empty) first, instead of the typing indicator, then the words
        # as they came, with Telegram's Stop; the answer's message took its place.
        (draft,) = tg.drafts(OWNER)
        history = [h["text"] for h in draft["history"]]
        assert history[0] == "" and any(h.startswith("w1") and h != WORDS for h in history)
        assert draft["can_stop"] and draft["ended"] == "message" and not draft["shown"]
        assert not _calls(tg, "sendChatAction")
        assert all(str(c["params"].get("can_stop")).lower() == "true"
                   for c in _calls(tg, "sendMessageDraft"))

        # Stop on the draft: the turn ends with what it wrote, and never runs again.
        mid = st.say("#sb:slow=200 #sb:words=200")
        streaming = wait_until(lambda: next((d for d in tg.drafts(OWNER)[1:]
                                             if "w3 " in d["text"]), None), 30, "the draft")
        tg.stop_draft(OWNER, streaming["draft_id"])
        wait_until(lambda: _footer(tg, mid, "✗ "), 30, "the stopped turn's footer")
        assert "event=turn_stopped session=demo" in st.bot_log()
        # The Stop was journaled like any update before Telegram was told it arrived.
        bodies = [b for (b,) in journal_rows(st.state_dir, "SELECT body FROM updates")]
        assert any('"stopped_message_generation"' in b and str(streaming["draft_id"]) in b
                   for b in bodies)
        # (the CLI tells the model of the interrupt in the next turn's text)
        later = st.ask("after the stop", expect=lambda t: t.startswith("echo:"), timeout=30)
        assert "after the stop" in later
        wait_until(lambda: _footer(tg, mid) or _footer(tg, mid, "✗ "), 10, "the footer")
        shown = " ".join(m["text"] or "" for m in _after(tg, mid))
        assert "w200" not in shown
        assert shown.count("w1 w2 w3") <= 1, shown  # the stopped turn was not run again


@pytest.mark.timeout(120)
def test_refused_drafts_fall_back_to_edits_with_a_stop_button(
        tmp_path: Path, telegram_api: Any, claude_bin: str, cli_env: dict[str, str]) -> None:
    tg = telegram_api
    with bot_stack(tmp_path, tg, claude_bin, cli_env) as st:
        st.new_session("demo")
        tg.fault("5xx", "sendMessageDraft", OWNER, count=1, status=400,
                 description="Bad Request: TEXTDRAFT_PEER_INVALID")
        mid = st.say("#sb:slow=200 #sb:words=200")
        streaming = wait_until(lambda: next(
            (m for m in _after(tg, mid) if (m["text"] or "").startswith("w1 w2")), None), 30,
            "the answer streamed by edits")
        buttons = [b for row in streaming["reply_markup"]["inline_keyboard"] for b in row]
        assert [(b["text"], b["callback_data"]) for b in buttons] == [("⏹ Stop", "st:demo")]
        drafts_tried = len(_calls(tg, "sendMessageDraft"))
        tg.tap(OWNER, streaming["message_id"], "st:demo")
        wait_until(lambda: _footer(tg, mid, "✗ "), 30, "the stopped turn's footer")
        stopped = next(m for m in tg.chat(OWNER) if m["message_id"] == streaming["message_id"])
        assert "w200" not in stopped["text"] and not stopped["reply_markup"]
        # The refusal is remembered for the chat: the next answer streams by edits too.
        mid = st.say("#sb:slow=60 #sb:words=30")
        wait_until(lambda: _footer(tg, mid), 30, "the next answer")
        assert len(_calls(tg, "sendMessageDraft")) == drafts_tried
        (answer,) = _after(tg, mid)
        assert answer["text"].startswith(WORDS) and answer["edits"] >= 2
        assert not answer["reply_markup"]  # the ⏹ left with the end of the stream

        # A group streams by edits with the ⏹ too: Telegram has no drafts there.
        group_after = len(tg.calls())
        tg.send(OWNER, "/switch demo", GROUP, chat_type="group")
        st.wait_text(lambda t: t == "Active session: demo.", GROUP)
        tg.send(OWNER, "#sb:slow=100 #sb:words=30", GROUP, chat_type="group")
        streamed = st.wait_text(lambda t: t.startswith("w1 ") and "✓" not in t, GROUP, 30)
        shown = next(m for m in streamed if m["from_bot"] and (m["text"] or "").startswith("w1 "))
        assert shown["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "st:demo"
        st.wait_text(lambda t: t.startswith(WORDS) and "✓ " in t, GROUP, 30)
        assert not [c for c in tg.calls()[group_after:] if c["method"] == "sendMessageDraft"]
