"""bot.journal: what survives a kill -9 of the bot."""
from __future__ import annotations

from pathlib import Path

from bot.journal import Handoff, Journal


def test_update_recorded_once_and_resumed_until_done(tmp_path: Path) -> None:
    j = Journal(tmp_path / "bot.db")
    assert j.record_update(10, 1, '{"update_id": 10}') is True
    assert j.record_update(10, 1, '{"update_id": 10}') is True  # stored, not done: run it
    assert j.unfinished_updates() == [(10, '{"update_id": 10}')]
    j.mark_done(10)
    assert j.record_update(10, 1, "{}") is False  # Telegram sent it again: already handled
    assert j.unfinished_updates() == []
    assert j.last_update_id() == 10
    j.close()
    again = Journal(tmp_path / "bot.db")
    assert again.last_update_id() == 10
    assert (tmp_path / "bot.db").stat().st_mode & 0o777 == 0o600


def test_handoffs_in_order_and_unique_by_key(tmp_path: Path) -> None:
    j = Journal(tmp_path / "bot.db")
    assert j.add_handoff(Handoff("tg:1:5", "a", 1, "first", 5, ["/x"]))
    assert j.add_handoff(Handoff("tg:1:6", "a", 1, "second", 6))
    assert not j.add_handoff(Handoff("tg:1:5", "a", 1, "first again", 5))
    assert j.add_handoff(Handoff("tg:1:7", "b", 1, "other", 7))
    assert [h.text for h in j.pending_handoffs("a")] == ["first", "second"]
    assert j.pending_handoffs("a")[0].attachments == ["/x"]
    j.handoff_done("tg:1:5")
    assert [h.key for h in j.pending_handoffs()] == ["tg:1:6", "tg:1:7"]


def test_delivered_never_moves_back_unless_reset(tmp_path: Path) -> None:
    j = Journal(tmp_path / "bot.db")
    assert j.delivered("a") == 0
    j.set_delivered("a", 5)
    j.set_delivered("a", 3)
    assert j.delivered("a") == 5
    j.reset_delivered("a", 1)
    assert j.delivered("a") == 1


def test_active_session_per_chat_and_forget(tmp_path: Path) -> None:
    j = Journal(tmp_path / "bot.db")
    j.set_active(1, "a")
    j.set_active(2, "a")
    j.set_active(1, "b")
    assert j.active(1) == "b" and j.chats_of("a") == [2]
    j.set_delivered("a", 3)
    assert j.known_sessions() == {"a", "b"}
    j.forget_session("a")
    assert j.active(2) is None and j.delivered("a") == 0


def test_active_sessions_are_remembered_across_a_reopen(tmp_path: Path) -> None:
    # active() answers from memory: what a restarted bot loads must be what the rows say.
    j = Journal(tmp_path / "bot.db")
    j.set_active(3, "a")
    j.set_active(1, "a")
    j.set_active(2, "b")
    j.set_active(2, None)
    j.close()
    # Answered with the connection closed: no SQL behind active() or chats_of().
    assert j.active(3) == "a" and j.active(2) is None and j.chats_of("a") == [1, 3]
    again = Journal(tmp_path / "bot.db")
    assert [again.active(c) for c in (1, 2, 3)] == ["a", None, "a"]
    assert again.chats_of("a") == [1, 3] and again.chats_of("b") == []
    again.forget_session("a")
    again.close()
    assert Journal(tmp_path / "bot.db").active(1) is None


def test_prompts_close_once(tmp_path: Path) -> None:
    j = Journal(tmp_path / "bot.db")
    n, new = j.add_prompt("a", "p1", 1, "text")
    assert new
    assert j.add_prompt("a", "p1", 1, "text") == (n, False)
    n2, _ = j.add_prompt("b", "p1", 1, "text")
    assert n2 != n
    j.set_prompt_message(n, 99)
    p = j.prompt(n)
    assert p is not None and p.message_id == 99 and p.state == "open"
    assert j.close_prompt(n, "answered")
    assert not j.close_prompt(n, "resolved")
    assert j.prompt_by_id("a", "p1").state == "answered"  # type: ignore[union-attr]


def test_drafts(tmp_path: Path) -> None:
    j = Journal(tmp_path / "bot.db")
    j.set_draft("a", 1, [5, 6])
    assert j.draft("a") == (1, [5, 6])
    j.clear_draft("a")
    assert j.draft("a") is None


def test_retries_are_taken_once_and_a_replayed_stop_finds_its_row(tmp_path: Path) -> None:
    from bot.journal import Journal

    j = Journal(tmp_path / "bot.db")
    n = j.add_retry("a", "tg:1:5", 1, "count to ten")
    assert j.add_retry("a", "tg:1:5", 1, "count to ten") == n
    assert j.take_retry(n) == ("a", 1, "count to ten")
    assert j.take_retry(n) is None


def test_forget_session_leaves_nothing_of_it(tmp_path: Path) -> None:
    from bot.journal import SESSION_TABLES, Handoff, Journal

    j = Journal(tmp_path / "bot.db")
    for s in ("a", "b"):
        j.set_delivered(s, 7)
        j.add_handoff(Handoff(f"tg:1:{s}", s, 1, "hi"))
        j.add_prompt(s, "p1", 1, "prompt")
        j.set_draft(s, 1, [3])
        j.add_retry(s, "k", 1, "x")
        j.set_topic(1, s, 10 + len(s), f"🟢 {s}")
        j.remember_sent(1, 100 + ord(s), s)
    j.set_active(1, "a")
    j.forget_session("a")
    for table in SESSION_TABLES:
        rows = j._db.execute(f"SELECT session FROM {table}").fetchall()  # noqa: S608
        assert ("a",) not in rows and (table == "active" or ("b",) in rows), table
    assert j.delivered("a") == 0 and j.active(1) is None


def test_an_edit_replaces_a_waiting_handoff_only(tmp_path: Path) -> None:
    from bot.journal import Handoff, Journal

    j = Journal(tmp_path / "bot.db")
    j.add_handoff(Handoff("tg:1:5", "a", 1, "old"))
    assert j.replace_handoff_text("tg:1:5", "new") == "a"
    assert [h.text for h in j.pending_handoffs("a")] == ["new"]
    assert j.replace_handoff_text("tg:1:6", "new") is None


def test_an_update_counts_its_starts(tmp_path: Path) -> None:
    from bot.journal import Journal

    j = Journal(tmp_path / "bot.db")
    assert j.record_update(1, 1, "{}")
    assert j.starts(1) == 0
    assert j.mark_started(1) == 1 and j.mark_started(1) == 2
    j.mark_done(1)
    assert j.unfinished_updates() == []


def test_photos_and_join_tags_survive_and_joined_parts_leave_together(tmp_path: Path) -> None:
    import sqlite3

    old = sqlite3.connect(str(tmp_path / "bot.db"))  # a bot.db from before these columns
    old.execute("CREATE TABLE handoffs (n INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT UNIQUE NOT"
                " NULL, session TEXT NOT NULL, chat_id INTEGER NOT NULL, message_id INTEGER,"
                " text TEXT NOT NULL, attachments TEXT NOT NULL, created REAL NOT NULL)")
    old.execute("INSERT INTO handoffs (key, session, chat_id, text, attachments, created)"
                " VALUES ('tg:1:1', 'a', 1, 'waiting', '[]', 1.0)")
    old.commit()
    old.close()
    j = Journal(tmp_path / "bot.db")
    [kept] = j.pending_handoffs("a")
    assert (kept.text, kept.images, kept.joins) == ("waiting", [], "")
    j.add_handoff(Handoff("tg:1:2", "a", 1, "p1", 2, ["/u/2.jpg"], 5.0, ["/u/2.jpg"], "album:g"))
    j.add_handoff(Handoff("tg:1:3", "a", 1, "p2", 3, ["/u/3.jpg"], 5.5, ["/u/3.jpg"], "album:g"))
    j.close()
    again = Journal(tmp_path / "bot.db")
    parts = again.pending_handoffs("a")[1:]
    assert [(p.images, p.joins, p.created) for p in parts] == [
        (["/u/2.jpg"], "album:g", 5.0), (["/u/3.jpg"], "album:g", 5.5)]
    again.handoffs_done([p.key for p in parts])
    assert [h.key for h in again.pending_handoffs()] == ["tg:1:1"]


def test_an_album_part_still_being_handled_is_seen(tmp_path: Path) -> None:
    import json

    j = Journal(tmp_path / "bot.db")
    body = json.dumps({"update_id": 5, "message": {"media_group_id": "777", "chat": {"id": 1}}})
    j.record_update(5, 1, body)
    assert j.album_part_unfinished(1, "777")
    assert not j.album_part_unfinished(1, "778") and not j.album_part_unfinished(2, "777")
    j.mark_done(5)
    assert not j.album_part_unfinished(1, "777")
