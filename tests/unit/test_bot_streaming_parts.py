"""The pure parts of native streaming and the live status: what a draft shows of a long
stream, which update is a Stop and who tapped it, the ⏹ callback data, and the status text."""
from __future__ import annotations

import pytest
from telegram import Update

from bot import callbacks
from bot.live_status import idle_words, session_line, state_words, status_markup, status_text
from bot.native_draft import SHOW_CHARS, draft_text
from bot.poller import ALLOWED_UPDATES
from bot.stops import stop_of, stopper_id
from wire import messages as m


def _row(name: str, **kw: object) -> m.ProgramStatus:
    return m.ProgramStatus(name=name, state=str(kw.pop("state", "RUNNING")), **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(("text", "expected"), [
    ("", ""),
    ("short", "short"),
    ("x" * SHOW_CHARS, "x" * SHOW_CHARS),
])
def test_draft_text_shows_all_of_a_short_stream(text: str, expected: str) -> None:
    assert draft_text(text) == expected


def test_draft_text_shows_the_tail_of_a_long_stream_from_a_word() -> None:
    words = " ".join(f"w{i}" for i in range(3000))
    shown = draft_text(words)
    assert shown.startswith("… w") and words.endswith(shown[2:]) and len(shown) <= SHOW_CHARS


def _update(extra: dict[str, object]) -> Update:
    return Update.de_json({"update_id": 1, **extra}, None)  # type: ignore[arg-type]


@pytest.mark.parametrize(("extra", "stop", "who"), [
    ({"stopped_message_generation": {"chat": {"id": 7, "type": "private"}, "draft_id": 3}},
     (7, None, 3), 7),
    ({"stopped_message_generation": {"chat": {"id": 7, "type": "private"}, "draft_id": 3,
                                     "message_thread_id": 11}}, (7, 11, 3), 7),
    # drafts exist only in private chats: nobody in a group is taken for the stopper
    ({"stopped_message_generation": {"chat": {"id": -5, "type": "group"}, "draft_id": 3}},
     (-5, None, 3), None),
    ({"stopped_message_generation": {"chat": {"id": 7, "type": "private"}}}, None, None),
    ({"stopped_message_generation": {"chat": {"id": 7, "type": "private"}, "draft_id": "3"}},
     None, None),
    ({"stopped_message_generation": {"chat": "7", "draft_id": 3}}, None, None),
    ({"stopped_message_generation": {"chat": {"id": 7}, "draft_id": 3,
                                     "message_thread_id": "x"}}, None, None),
    ({"message": {"message_id": 1, "date": 0, "chat": {"id": 7, "type": "private"}}}, None,
     None),
])
def test_stop_of_reads_the_update_ptb_does_not_know(extra, stop, who) -> None:
    found = stop_of(_update(extra))
    assert (found.key if found else None) == stop
    assert stopper_id(_update(extra)) == who


def test_the_poller_asks_for_stops() -> None:
    assert "stopped_message_generation" in ALLOWED_UPDATES


@pytest.mark.parametrize(("data", "session"), [
    ("st:demo", "demo"), ("st:", None), ("st:Bad Name", None), ("sw:demo", None),
])
def test_stop_callback_data(data: str, session: str | None) -> None:
    assert callbacks.parse_stop(data) == session


def test_stop_button_round_trips() -> None:
    (button,) = callbacks.stop_markup("api").inline_keyboard[0]
    assert button.text == "⏹ Stop" and callbacks.parse_stop(str(button.callback_data)) == "api"


@pytest.mark.parametrize(("seconds", "words"), [
    (None, ""), (0, "idle <1 min"), (59.9, "idle <1 min"), (60, "idle 1 min"),
    (3599, "idle 59 min"), (3600, "idle 1 h 0 min"), (90000, "idle 1 d"),
])
def test_idle_words_change_at_most_once_a_minute(seconds, words) -> None:
    assert idle_words(seconds) == words


@pytest.mark.parametrize(("kw", "words"), [
    ({"busy": True}, "working"), ({"suspended": True}, "suspended"), ({}, "ready"),
    ({"state": "STOPPED"}, "stopped"), ({"state": "FATAL"}, "fatal"),
])
def test_state_words(kw, words) -> None:
    assert state_words(_row("session:a", **kw)) == words


def test_session_line_names_everything_that_waits() -> None:
    r = _row("session:api", persona="research", cost_usd=0.5, queued=2, idle_seconds=125)
    assert session_line(r, True, 1) == ("▶ api — ready · persona research · $0.5000 · 2 queued"
                                        " · 1 approval waiting · idle 2 min")
    busy = _row("session:web", busy=True, idle_seconds=3)
    assert session_line(busy, False, 2) == "• web — working · $0.0000 · 2 approvals waiting"


def test_status_text_and_buttons() -> None:
    rows = [_row("bot"), _row("session:a"), _row("session:b", state="STOPPED")]
    text = status_text(rows, "a", {"b": 1})
    assert text.splitlines() == ["📌 Sessions, live", "▶ a — ready · $0.0000",
                                 "• b — stopped · $0.0000 · 1 approval waiting"]
    markup = status_markup(rows, "a")
    assert markup is not None
    assert [b.callback_data for row in markup.inline_keyboard for b in row] == ["sw:b"]
    assert status_markup([_row("session:a")], "a") is None
    # where the chat has topics: every session with a topic gets a button that opens it, a t.me
    # link in a forum supergroup, a tap in a private chat (Telegram links no private topic)
    threads = {"a": 11, "b": 12}
    private = status_markup(rows, "a", 4242, threads.get)
    assert private is not None
    assert [(b.text, b.callback_data, b.url) for row in private.inline_keyboard for b in row] == [
        ("Open a", "tp:a", None), ("Open b", "tp:b", None)]
    forum = status_markup(rows, None, -1001234567890, threads.get)
    assert forum is not None
    assert [b.url for row in forum.inline_keyboard for b in row] == [
        "https://t.me/c/1234567890/11", "https://t.me/c/1234567890/12"]
    mixed = status_markup(rows, "a", 4242, {"b": 12}.get)  # a: active, no topic, no button
    assert mixed is not None and [b.callback_data for row in mixed.inline_keyboard
                                  for b in row] == ["tp:b"]
    assert "No sessions yet" in status_text([_row("bot")], None, {})


def test_journal_keeps_the_status_message_and_counts_open_prompts(tmp_path) -> None:
    from bot.journal import Journal

    j = Journal(tmp_path / "bot.db")
    j.set_status_message(5, 40)
    j.set_status_message(5, 41)
    j.set_status_message(6, 9)
    n, _ = j.add_prompt("a", "p1", 5, "x")
    j.add_prompt("a", "p2", 5, "y")
    j.add_prompt("b", "p3", 5, "z")
    j.close_prompt(n, "resolved")
    j.close()
    j = Journal(tmp_path / "bot.db")  # a restarted bot finds the same messages
    assert j.status_messages() == {5: 41, 6: 9}
    assert j.open_prompt_counts() == {"a": 1, "b": 1}
    # A new update is counted as started in the same write; a repeat is not counted again.
    assert j.record_update(1, 5, "{}", starts=1) and j.last_insert_new
    assert j.starts(1) == 1
    assert j.record_update(1, 5, "{}", starts=1) and not j.last_insert_new
    assert j.starts(1) == 1
    j.close()


def test_journal_sync_fsyncs_the_wal_and_the_writes_stay(tmp_path) -> None:
    from bot.journal import Handoff, Journal

    j = Journal(tmp_path / "bot.db")
    j.record_update(7, 5, "{}", starts=1)
    j.add_handoff(Handoff("tg:5:1", "a", 5, "hi"))
    j.mark_done(7)
    j.sync()  # the poller's fsync before its next getUpdates
    assert (tmp_path / "bot.db-wal").exists()
    assert j._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL again for the rest
    j.close()
    j = Journal(tmp_path / "bot.db")
    assert [h.key for h in j.pending_handoffs()] == ["tg:5:1"] and not j.unfinished_updates()
    j.close()
