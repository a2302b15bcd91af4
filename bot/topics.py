"""One topic per session: made, named, closed, reopened, deleted and recreated in Telegram.

When getMe says topic mode is on in private chats (`has_topics_enabled`), or in a forum
supergroup, every session gets its own topic in each chat that has topics (`/new` makes it; a
session made any other way, or from before topics were on, gets one on the next refresh), and
everything the session says goes there (bot.delivery sets the topic per event, bot.place carries
it to every send). A message in a topic goes to that topic's session; one the user made by hand
becomes a session named after it (bot.topic_names). `/stop` closes a topic (so does a stop from
elsewhere, `switchboardctl stop`, seen as the session's change to stopped), a message in it
reopens it; `/remove` deletes it. A send into a topic Telegram says is gone ("message thread not
found") recreates it and sends again there; one into a closed topic reopens it first.

The title carries the session's state: refreshed when the supervisor reports a change, a prompt
opens or closes, and every `REFRESH_SECONDS` (a suspend is seen there), at most once per
`MIN_EDIT_SECONDS` per topic, never when it would not change.

Crash safety: the map's row is written before createForumTopic (an intent); the thread is
recorded the moment Telegram answers. A crash in between leaves the intent, and the topic is
created when the session next needs it. The Bot API cannot list a chat's topics, so a crash in
the instant between Telegram's answer and that write can leave one spare, empty topic that no
session uses; never two topics that one session writes to.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

from telegram import Chat, Update, User
from telegram.error import BadRequest
from telegram.ext import ContextTypes, ExtBot

from bot import place, render, routing
from bot import topic_names as names
from bot.control import Refused, SupervisorClient
from bot.journal import Journal
from bot.reply import chat_of, say
from bot.routing import Where
from bot.telegram_out import TelegramOut, reliably
from bot.topic_map import TopicMap
from wire import messages as m
from wire.aio import wait_event
from wire.names import SESSION_PREFIX

log = logging.getLogger(__name__)
Ctx = ContextTypes.DEFAULT_TYPE
T = TypeVar("T")
REFRESH_SECONDS = 15.0
MIN_EDIT_SECONDS = 3.0
DEBOUNCE_SECONDS = 1.0
RETRY_CREATE_SECONDS = 60.0  # a topic Telegram refused to make is not asked for on every event


def suspended_text(session: str) -> str:
    return f"💤 Session {session} is suspended (idle): your next message here resumes it."


class Topics:
    def __init__(self, journal: Journal, out: TelegramOut, tmap: TopicMap) -> None:
        self.journal = journal
        self.out = out
        self.map = tmap
        self.supervisor: SupervisorClient | None = None
        self.users_create = False
        self.seen: set[int] = set()  # chats with topics that wrote to the bot
        self._locks: dict[tuple[int, str], asyncio.Lock] = {}
        self._dirty = asyncio.Event()
        self._edited: dict[tuple[int, str], float] = {}
        self._states: dict[tuple[int, str], str] = {}
        self._moved: dict[tuple[int, int], int] = {}  # (chat, gone topic) -> its new topic
        self._refused: dict[tuple[int, str], float] = {}  # when a create was last refused
        # Closed topics reopened for a late message of their stopped session: closed again.
        self._reclose: set[tuple[int, str]] = set()
        out.recover_topic = self.recover

    @property
    def bot(self) -> ExtBot[Any]:
        return self.out.bot

    def configure(self, me: User) -> None:
        """From getMe: topics in private chats, and whether users may make them."""
        self.map.private_topics = bool(me.has_topics_enabled)
        self.users_create = bool(me.allows_users_to_create_topics)
        log.info("event=topics private=%s users_create=%s", self.map.private_topics,
                 self.users_create)

    # ----------------------------------------------------------------------- which chats

    def has_topics(self, chat: Chat) -> bool:
        if chat.is_forum or (chat.type == Chat.PRIVATE and self.map.private_topics):
            self.seen.add(chat.id)
            return True
        return False

    def chat_has_topics(self, chat_id: int) -> bool:
        if chat_id > 0:
            return self.map.private_topics
        return chat_id in self.seen or any(c == chat_id for c, _s, _t in self.map.items())

    def topic_chats(self) -> set[int]:
        """The chats whose sessions all get a topic: those that talked to the bot."""
        chats = {c for c, _s, _t in self.map.items()} | self.seen
        if self.map.private_topics:
            chats |= {c for c in self.journal.active_chats() if c > 0}
        return {c for c in chats if self.chat_has_topics(c)}

    # ----------------------------------------------------------------------- routing

    def where(self, update: Update) -> Where:
        """The session a message goes to (bot.routing), from its chat, topic and reply."""
        chat = update.effective_chat
        msg = update.effective_message
        assert chat is not None and msg is not None
        topics = self.has_topics(chat)
        thread = place.thread_of(update)
        reply = msg.reply_to_message
        return routing.route(
            topics=topics, thread=thread,
            topic_session=self.map.session_at(chat.id, thread) if thread is not None else None,
            reply_session=self.journal.sender_of(chat.id, reply.message_id) if reply else None,
            active=self.journal.active(chat.id))

    # ----------------------------------------------------------------------- making topics

    def _lock(self, chat: int, session: str) -> asyncio.Lock:
        return self._locks.setdefault((chat, session), asyncio.Lock())

    async def ensure(self, chat: int, session: str) -> int | None:
        """The session's topic in this chat, made now if it has none (None: not made)."""
        if not self.chat_has_topics(chat):
            return None
        async with self._lock(chat, session):
            thread = self.map.thread(chat, session)
            if thread is not None:
                return thread
            if time.monotonic() - self._refused.get((chat, session), -1e9) < RETRY_CREATE_SECONDS:
                return None
            title = names.title(session, names.RUNNING)
            self.map.intend(chat, session, title)  # first the intent, then Telegram
            topic = await reliably(partial(self.bot.create_forum_topic, chat, title),
                                   "create_topic")
            if topic is None:
                self.map.drop(chat, session)
                self._refused[(chat, session)] = time.monotonic()
                return None
            self.map.record(chat, session, topic.message_thread_id, title)
            log.info("event=topic_created chat_id=%d session=%s thread=%d", chat, session,
                     topic.message_thread_id)
            self._dirty.set()
            return topic.message_thread_id

    async def recover(self, chat: int, thread: int, error: str) -> int | None:
        """A send into `thread` failed with `error`: the topic to send to now (None: General)."""
        session = self.map.session_at(chat, thread)
        if session is None:  # already recreated (by another send of the same event), or no one's
            return self._moved.get((chat, thread))
        if "closed" in error.lower():
            if await self.reopen(chat, session):
                self._reclose.add((chat, session))
                self._dirty.set()
                return thread
            return None
        log.warning("event=topic_gone chat_id=%d session=%s thread=%d", chat, session, thread)
        async with self._lock(chat, session):
            if self.map.thread(chat, session) == thread:
                self.map.drop(chat, session)
        moved = await self.ensure(chat, session)
        if moved is not None:
            self._moved[(chat, thread)] = moved
        return moved

    async def adopt(self, sessions: list[str]) -> None:
        """Every session without a topic in a chat with topics gets one."""
        for chat in sorted(self.topic_chats()):
            for session in sessions:
                if self.map.thread(chat, session) is None:
                    await self.ensure(chat, session)

    # ----------------------------------------------------------------------- closing, deleting

    async def _topic_call(self, what: str, call: Callable[[], Awaitable[bool]]) -> bool:
        try:
            return bool(await call())
        except BadRequest as exc:
            if "not_modified" in str(exc).lower().replace(" ", "_"):
                return True  # already as asked
            log.warning("event=topic_call_refused what=%s error=%r", what, str(exc))
            return False
        except Exception as exc:  # noqa: BLE001 - a topic call never takes a handler down
            log.warning("event=topic_call_failed what=%s error=%r", what, str(exc))
            return False

    async def close(self, session: str) -> None:
        for chat in self.map.chats_of(session):
            thread = self.map.thread(chat, session)
            if thread is not None:
                await self._close_topic(chat, session, thread)

    async def _close_topic(self, chat: int, session: str, thread: int) -> None:
        if await self._topic_call("close_topic", partial(self.bot.close_forum_topic, chat,
                                                         thread)):
            self.map.set_closed(chat, session, True)

    async def reopen(self, chat: int, session: str) -> bool:
        thread = self.map.thread(chat, session)
        if thread is None:
            return False
        ok = await self._topic_call("reopen_topic", partial(self.bot.reopen_forum_topic, chat,
                                                            thread))
        if ok:
            self.map.set_closed(chat, session, False)
        return ok

    async def delete(self, session: str) -> None:
        """The removed session's topics go, with every message in them."""
        for chat in self.map.chats_of(session):
            thread = self.map.thread(chat, session)
            if thread is not None:
                await self._topic_call("delete_topic", partial(self.bot.delete_forum_topic, chat,
                                                               thread))
            self.map.drop(chat, session)

    # ----------------------------------------------------------------------- the user's topics

    async def user_created(self, update: Update, ctx: Ctx) -> None:
        """A topic the user made by hand becomes a session named after it."""
        msg = update.effective_message
        chat = update.effective_chat
        assert msg is not None and chat is not None
        created = msg.forum_topic_created
        thread = msg.message_thread_id
        if created is None or thread is None or self.supervisor is None:
            return
        self.has_topics(chat)
        session, why = names.session_of_title(created.name)
        if session is None:
            await say(self.out, chat.id, why or "That topic name cannot name a session.")
            return
        old = self.map.thread(chat.id, session)
        if old is not None and old != thread:
            await say(self.out, chat.id, f"Session {session} already has its topic here: write"
                      " there, or name this topic after a new session.")
            return
        rows = await self._rows()
        exists = rows is not None and any(r.name == SESSION_PREFIX + session for r in rows)
        # Recorded before the session exists: the title refresh must not give it another topic.
        async with self._lock(chat.id, session):
            self.map.record(chat.id, session, thread, created.name)
        if not exists:
            try:
                await self.supervisor.call(m.NewSession(id=m.new_id(), name=session),
                                           timeout=30.0)
            except Refused as exc:
                self.map.drop(chat.id, session)
                await say(self.out, chat.id, str(exc))
                return
        self._dirty.set()  # the title gets its state
        await say(self.out, chat.id, f"Session {session} is ready: write here."
                  if not exists else f"This topic is now session {session}'s: write here.")
        log.info("event=topic_adopted chat_id=%d session=%s thread=%d", chat.id, session, thread)

    async def user_reopened(self, update: Update, ctx: Ctx) -> None:
        self._user_closed(update, False)

    async def user_closed(self, update: Update, ctx: Ctx) -> None:
        self._user_closed(update, True)

    def _user_closed(self, update: Update, closed: bool) -> None:
        chat = chat_of(update)
        thread = place.thread_of(update)
        session = self.map.session_at(chat, thread) if thread is not None else None
        if session is not None:
            self._reclose.discard((chat, session))
            self.map.set_closed(chat, session, closed)

    async def reopen_for_message(self, update: Update, session: str) -> None:
        """A message in a topic the bot closed (a stopped session): open it again."""
        chat = chat_of(update)
        self._reclose.discard((chat, session))
        if (chat, session) in self.map.closed:
            await self.reopen(chat, session)

    # ----------------------------------------------------------------------- titles

    def touch(self, session: str) -> None:
        """Something of this session changed: refresh its titles soon."""
        self._dirty.set()

    async def _rows(self) -> list[m.ProgramStatus] | None:
        if self.supervisor is None:
            return None
        try:
            return await self.supervisor.status()
        except Refused:
            return None

    async def run(self) -> None:
        """Keep every topic's title on its session's state; give new sessions their topics."""
        while True:
            await wait_event(self._dirty, REFRESH_SECONDS)
            self._dirty.clear()
            if self.topic_chats():
                try:
                    await self.refresh()
                except Exception:  # noqa: BLE001 - the next round tries again
                    log.exception("event=topic_refresh_failed")
            self.journal.prune_sent()
            await asyncio.sleep(DEBOUNCE_SECONDS)

    async def refresh(self) -> None:
        rows = await self._rows()
        if rows is None:
            return
        by_name = {r.name[len(SESSION_PREFIX):]: r for r in rows
                   if r.name.startswith(SESSION_PREFIX)}
        await self.adopt(sorted(by_name))
        waiting = self.journal.open_prompt_sessions()
        now = time.monotonic()
        for chat, session, thread in self.map.items():
            if session not in by_name:
                continue
            key = (chat, session)
            state = names.state_of(by_name[session], session in waiting)
            before = self._states.get(key)
            self._states[key] = state
            want = names.title(session, state)
            if want != self.map.titles.get(key) and now - self._edited.get(key, 0.0) >= \
                    MIN_EDIT_SECONDS:
                self._edited[key] = now
                if await self._topic_call("edit_topic", partial(
                        self.bot.edit_forum_topic, chat, thread, name=want)):
                    self.map.set_title(chat, session, want)
            elif want != self.map.titles.get(key):
                self._dirty.set()  # edited a moment ago: next round
            # A stopped session's topic is closed: again once a late message of it is shown,
            # or when it was stopped from elsewhere (switchboardctl stop; /stop closes its own).
            reclose = key in self._reclose
            self._reclose.discard(key)
            stopped_now = before not in (None, names.STOPPED) and key not in self.map.closed
            if state == names.STOPPED and (reclose or stopped_now):
                await self._close_topic(chat, session, thread)
            if state == names.SUSPENDED and before in (names.RUNNING, names.WAITING):
                with place.in_thread(thread):
                    for chunk in render.render_plain(suspended_text(session)):
                        mid = await reliably(partial(self.out.send, chat, chunk), "suspended")
                        if mid is not None:
                            self.journal.remember_sent(chat, mid, session)
