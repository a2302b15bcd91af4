"""bot.topics and the topic part of bot.telegram_out against a stand-in for PTB's bot: the intent
is in bot.db before createForumTopic, one topic per session however many ask at once, a gone
topic is made again once, a closed one reopened, a title edited only when it changes, a suspend
announced once in the session's topic."""
from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from telegram.error import BadRequest

from bot import place
from bot import topics as topics_mod
from bot.journal import Journal
from bot.render import Chunk
from bot.telegram_out import TelegramOut
from bot.topic_map import TopicMap
from bot.topics import Topics
from wire import messages as m

pytestmark = pytest.mark.timeout(10)
CHAT = 7


class FakeBot:
    """What bot.topics and TelegramOut call; `gone` topics answer "message thread not found"."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.calls: list[tuple[Any, ...]] = []
        self.next_thread = 100
        self.gone: set[int] = set()
        self.closed: set[int] = set()
        self.intents_seen: list[list[tuple[Any, ...]]] = []

    async def create_forum_topic(self, chat: int, name: str) -> Any:
        self.intents_seen.append(self.journal.topic_rows())
        await asyncio.sleep(0)
        self.next_thread += 1
        self.calls.append(("create", chat, name, self.next_thread))
        return SimpleNamespace(message_thread_id=self.next_thread)

    async def edit_forum_topic(self, chat: int, thread: int, name: str) -> bool:
        self.calls.append(("edit", chat, thread, name))
        return True

    async def close_forum_topic(self, chat: int, thread: int) -> bool:
        self.calls.append(("close", chat, thread))
        self.closed.add(thread)
        return True

    async def reopen_forum_topic(self, chat: int, thread: int) -> bool:
        self.calls.append(("reopen", chat, thread))
        self.closed.discard(thread)
        return True

    async def send_message(self, chat: int, text: str, **kw: Any) -> Any:
        thread = kw.get("message_thread_id")
        if thread in self.gone:
            raise BadRequest("Message thread not found")
        if thread in self.closed:
            raise BadRequest("Topic_closed")
        self.calls.append(("send", chat, thread, text))
        return SimpleNamespace(message_id=len(self.calls))


class FakeSupervisor:
    def __init__(self) -> None:
        self.rows = [m.ProgramStatus(name="session:api", state="RUNNING", claude_pid=5)]

    async def status(self) -> list[m.ProgramStatus]:
        return self.rows


def make(tmp_path: Path) -> tuple[Topics, FakeBot, Journal]:
    j = Journal(tmp_path / "bot.db")
    bot = FakeBot(j)
    t = Topics(j, TelegramOut(bot), TopicMap(j))  # type: ignore[arg-type]
    t.map.private_topics = True
    t.supervisor = FakeSupervisor()  # type: ignore[assignment]
    return t, bot, j


async def test_the_intent_is_written_first_and_one_topic_is_made(tmp_path: Path) -> None:
    t, bot, j = make(tmp_path)
    threads = await asyncio.gather(*(t.ensure(CHAT, "api") for _ in range(3)))
    assert threads == [101, 101, 101]
    assert [c[0] for c in bot.calls] == ["create"]
    assert bot.intents_seen == [[(CHAT, "api", None, "🟢 api", False)]]  # before Telegram
    assert j.topic_rows() == [(CHAT, "api", 101, "🟢 api", False)]
    assert await t.ensure(-5, "api") is None  # a group that is no forum: no topic


async def test_a_gone_topic_is_made_again_once_and_the_message_sent_there(tmp_path: Path) -> None:
    t, bot, _ = make(tmp_path)
    await t.ensure(CHAT, "api")
    bot.gone.add(101)
    with place.in_thread(101):
        await t.out.send(CHAT, Chunk("first"))
        assert place.thread() == 102  # the rest of this event goes to the new topic
        await t.out.send(CHAT, Chunk("second"))
    with place.in_thread(101):  # a send that still knew the old topic
        await t.out.send(CHAT, Chunk("late"))
    sends = [c for c in bot.calls if c[0] == "send"]
    assert sends == [("send", CHAT, 102, "first"), ("send", CHAT, 102, "second"),
                     ("send", CHAT, 102, "late")]
    assert [c[0] for c in bot.calls].count("create") == 2
    assert t.map.thread(CHAT, "api") == 102 and t.map.session_at(CHAT, 101) is None
    with place.in_thread(555):  # no session's topic: the message goes to General
        bot.gone.add(555)
        await t.out.send(CHAT, Chunk("orphan"))
    assert bot.calls[-1] == ("send", CHAT, None, "orphan")


async def test_a_closed_topic_is_reopened_for_the_message(tmp_path: Path) -> None:
    t, bot, _ = make(tmp_path)
    await t.ensure(CHAT, "api")
    await t.close("api")  # /stop
    assert (CHAT, "api") in t.map.closed
    with place.in_thread(101):  # a late message of the stopped session (its cut-short turn)
        await t.out.send(CHAT, Chunk("notice"))
    assert bot.calls[-2:] == [("reopen", CHAT, 101), ("send", CHAT, 101, "notice")]
    assert (CHAT, "api") not in t.map.closed
    sup: FakeSupervisor = t.supervisor  # type: ignore[assignment]
    sup.rows = [m.ProgramStatus(name="session:api", state="STOPPED")]
    await t.refresh()  # still stopped: closed again
    assert bot.calls[-2:] == [("edit", CHAT, 101, "⏹ api"), ("close", CHAT, 101)]
    assert (CHAT, "api") in t.map.closed


async def test_titles_follow_the_state_and_a_suspend_is_said_once(tmp_path: Path,
                                                                 monkeypatch) -> None:
    monkeypatch.setattr(topics_mod, "MIN_EDIT_SECONDS", 0.0)
    t, bot, j = make(tmp_path)
    sup: FakeSupervisor = t.supervisor  # type: ignore[assignment]
    j.set_active(CHAT, "api")
    await t.refresh()  # the session gets its topic; its title is already right
    assert [c[0] for c in bot.calls] == ["create"]
    await t.refresh()
    assert [c[0] for c in bot.calls] == ["create"], "an unchanged title is not edited"
    sup.rows = [m.ProgramStatus(name="session:api", state="RUNNING", suspended=True)]
    await t.refresh()
    await t.refresh()
    edits = [c for c in bot.calls if c[0] == "edit"]
    said = [c for c in bot.calls if c[0] == "send"]
    assert edits == [("edit", CHAT, 101, "💤 api")]
    assert said == [("send", CHAT, 101, topics_mod.suspended_text("api"))]
    j.add_prompt("api", "p1", CHAT, "may I?")
    sup.rows = [m.ProgramStatus(name="session:api", state="FATAL")]
    await t.refresh()
    assert bot.calls[-1] == ("edit", CHAT, 101, "⛔ api")
    assert j.topic_rows()[0][3] == "⛔ api"


def _update(chat: dict[str, Any], text: str, thread: int | None = None,
            reply_to: int | None = None) -> Any:
    from telegram import Update

    msg: dict[str, Any] = {"message_id": 50, "date": 0, "chat": chat, "text": text,
                           "from": {"id": 1, "is_bot": False, "first_name": "o"}}
    if thread is not None:
        msg.update(message_thread_id=thread, is_topic_message=True)
    if reply_to is not None:
        msg["reply_to_message"] = {"message_id": reply_to, "date": 0, "chat": chat}
    return Update.de_json({"update_id": 1, "message": msg}, None)


async def test_a_message_goes_by_topic_then_reply_and_reopens_a_closed_topic(
        tmp_path: Path) -> None:
    t, bot, j = make(tmp_path)
    private = {"id": CHAT, "type": "private"}
    await t.ensure(CHAT, "api")
    j.remember_sent(CHAT, 9, "web")
    assert t.where(_update(private, "hi", thread=101)).session == "api"
    assert t.where(_update(private, "hi", reply_to=9)).session == "web"  # General, a reply
    assert t.where(_update(private, "hi")).why.startswith("General is for commands")
    t.map.set_closed(CHAT, "api", True)
    await t.reopen_for_message(_update(private, "hi", thread=101), "api")
    assert bot.calls[-1] == ("reopen", CHAT, 101) and (CHAT, "api") not in t.map.closed
    t.map.private_topics = False  # a chat without topics: reply-to, else the active session
    j.set_active(CHAT, "api")
    assert t.where(_update(private, "hi", reply_to=9)).session == "web"
    assert t.where(_update(private, "hi")).session == "api"


async def test_an_intent_left_by_a_crash_is_made_once_by_the_next_bot(tmp_path: Path) -> None:
    j = Journal(tmp_path / "bot.db")
    TopicMap(j).intend(CHAT, "api", "🟢 api")  # the bot died before Telegram answered
    j.close()
    t, bot, j = make(tmp_path)
    assert t.map.thread(CHAT, "api") is None and (CHAT, "api") in t.map.intended
    j.set_active(CHAT, "api")
    await t.refresh()
    await t.refresh()
    assert [c[0] for c in bot.calls] == ["create"]
    assert j.topic_rows() == [(CHAT, "api", 101, "🟢 api", False)]
