"""Inbound: user turns from bot.db's hand-off table to their workers, until each is Accepted.

One courier task per session sends its pending turns in order. A session whose worker is
connected is sent its turn at once (no round trip to the supervisor on a warm turn's path);
otherwise, or when that first try is not acknowledged, the supervisor is asked to
`EnsureRunning` the session (it starts a stopped one, clears FATAL). A
turn is resent until the worker answers `Accepted`; its key makes a resend harmless, and the row
leaves bot.db only then, so neither a bot crash nor a worker crash loses it. If the worker stays
silent the user hears so once, in one sentence, and the turn keeps waiting. The parts of an album
or of a long paste Telegram split go as one turn (bot.joiner decides, from the rows): the
courier waits out their short window first, and every part's row leaves once it is Accepted.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from bot import joiner, place
from bot.chat import ChatServer
from bot.control import Refused, SupervisorClient
from bot.journal import Handoff, Journal
from bot.render import Chunk
from bot.telegram_out import TelegramOut, reliably
from wire import messages as m
from wire.aio import wait_event

log = logging.getLogger(__name__)

MAX_BACKOFF = 5.0


class Couriers:
    def __init__(self, journal: Journal, chat: ChatServer, supervisor: SupervisorClient,
                 out: TelegramOut, worker_timeout: float) -> None:
        self.journal = journal
        self.chat = chat
        self.supervisor = supervisor
        self.out = out
        self.worker_timeout = worker_timeout
        self._kicks: dict[str, asyncio.Event] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        # The session's topic in a chat (bot.topics), where its couriers' sentences go.
        self.topic_of: Callable[[int, str], int | None] = lambda chat, session: None

    def kick(self, session: str) -> None:
        if session not in self._tasks:
            self._kicks[session] = asyncio.Event()
            self._tasks[session] = asyncio.get_running_loop().create_task(
                self._run(session), name=f"courier-{session}")
        self._kicks[session].set()

    def resume(self) -> None:
        """After a restart: every session with turns still waiting gets its courier back."""
        for session in {h.session for h in self.journal.pending_handoffs()}:
            self.kick(session)

    async def forget(self, session: str) -> None:
        task = self._tasks.pop(session, None)
        self._kicks.pop(session, None)
        if task is not None:
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001, S110 - ending anyway
                pass

    async def close(self) -> None:
        for session in list(self._tasks):
            await self.forget(session)

    async def _say(self, chat_id: int, text: str, session: str) -> None:
        with place.in_thread(self.topic_of(chat_id, session)):
            await reliably(lambda: self.out.send(chat_id, Chunk(text)), "courier_notice")

    async def _run(self, session: str) -> None:
        kick = self._kicks[session]
        ensured: str | None = None
        direct: set[str] = set()  # keys sent once without asking the supervisor
        warned: set[str] = set()
        backoff = 0.2
        while True:
            kick.clear()
            pending = self.journal.pending_handoffs(session)
            if not pending:
                await kick.wait()
                continue
            step = joiner.plan(pending, time.time(), coming=self._album_coming)
            if isinstance(step, float):  # the next part of an album or paste may be coming
                await wait_event(kick, step)
                continue
            h = joiner.merge(step)
            if ensured != h.key:
                if self.chat.connected(session) and h.key not in direct:
                    direct.add(h.key)  # its worker is up: one try before asking the supervisor
                else:
                    if not await self._ensure_running(h):
                        continue
                    ensured = h.key
            turn = m.UserTurn(id=m.new_id(), key=h.key, chat_id=h.chat_id, text=h.text,
                              message_id=h.message_id, attachments=h.attachments,
                              images=h.images)
            accepted = await self.chat.hand_over(session, turn, self.worker_timeout)
            if accepted is not None:
                direct.discard(h.key)
                self.journal.handoffs_done([part.key for part in step])
                log.info("event=turn_accepted session=%s key=%s duplicate=%s queued=%d", session,
                         h.key, accepted.duplicate, accepted.queued)
                backoff = 0.2
                continue
            if ensured != h.key:
                continue  # the direct try failed: ask the supervisor now, without a pause
            waited = time.time() - h.created
            if h.key not in warned and waited > self.worker_timeout:
                warned.add(h.key)
                await self._say(h.chat_id, f"Session {session} is not answering yet: your message"
                                " is kept and goes through as soon as it is back.", session)
                ensured = None  # ask the supervisor again
            await asyncio.sleep(backoff)
            backoff = min(MAX_BACKOFF, backoff * 2)

    def _album_coming(self, first: Handoff) -> bool:
        group = first.joins.removeprefix(joiner.ALBUM)
        return self.journal.album_part_unfinished(first.chat_id, group)

    async def _ensure_running(self, h: Handoff) -> bool:
        """False when the turn was dropped (its session is gone); True to go on sending."""
        try:
            await self.supervisor.call(m.EnsureRunning(id=m.new_id(), name=h.session))
        except Refused as exc:
            if exc.code == m.E_UNKNOWN_NAME:
                self.journal.handoff_done(h.key)
                await self._say(h.chat_id, f"Session {h.session} does not exist any more: create"
                                f" it again with /new {h.session} or /switch to another one.",
                                h.session)
                return False
            if exc.code != "timeout":
                await self._say(h.chat_id, str(exc), h.session)
        return True
