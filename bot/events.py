"""The supervisor's events, as the owner needs to hear them: a session that gave up (FATAL).

A SUB on the events socket. When a session goes FATAL, its topic in every chat where it has one,
and every chat whose active session it is, gets one sentence saying so and what to do; nothing
else on this socket reaches the chat (a crash that the supervisor recovers from on its own is
not news), though every change of a session refreshes its topic's title (bot.topics). Garbage
on the socket is logged and skipped.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial

import zmq
import zmq.asyncio

from bot import place, render
from bot.journal import Journal
from bot.telegram_out import TelegramOut, reliably
from bot.topics import Topics
from wire import auth, codec, names
from wire import messages as m
from wire.rpc import configure

log = logging.getLogger(__name__)


def fatal_text(session: str, reason: str) -> str:
    why = f" ({reason})" if reason else ""
    return (f"⚠️ Session {session} kept crashing and was given up{why}: /restart {session} to"
            " try again, or write to it and it starts again.")


class Events:
    def __init__(self, ctx: zmq.asyncio.Context, endpoint: str, journal: Journal,
                 out: TelegramOut, keys: auth.ClientKeys, topics: Topics) -> None:
        self.sock = ctx.socket(zmq.SUB)
        configure(self.sock, 1024 * 1024)
        auth.as_client(self.sock, keys)  # the supervisor serves events to the bot's key only
        self.sock.setsockopt(zmq.SUBSCRIBE, b"")
        self.sock.connect(endpoint)
        self.journal = journal
        self.out = out
        self.topics = topics
        self.on_change: Callable[[], None] = lambda: None  # the live status (bot.live_status)

    async def run(self) -> None:
        while True:
            frame = await self.sock.recv()
            event = codec.events.decode(frame)
            if isinstance(event, codec.DecodeError):
                log.warning("event=bad_event_frame reason=%r", event.reason)
                continue
            await self.on_event(event)

    async def on_event(self, event: m.StateChange) -> None:
        self.on_change()
        if not event.program.startswith(names.SESSION_PREFIX):
            return
        session = event.program[len(names.SESSION_PREFIX):]
        self.topics.touch(session)
        if event.to_state != "FATAL":
            return
        text = fatal_text(session, event.reason)
        chats = self.topics.map.chats_of(session)
        chats += [c for c in self.journal.chats_of(session) if c not in chats]
        for chat_id in chats:
            log.info("event=fatal_notice session=%s chat_id=%d", session, chat_id)
            with place.in_thread(self.topics.map.thread(chat_id, session)):
                for chunk in render.render_plain(text):
                    mid = await reliably(partial(self.out.send, chat_id, chunk), "fatal notice")
                    if mid is not None:
                        self.journal.remember_sent(chat_id, mid, session)

    def close(self) -> None:
        self.sock.close(linger=0)
