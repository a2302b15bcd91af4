"""Outbound: each session's events, in order, into its chat; the seq recorded once Telegram took it.

The shell around two pure parts. One `SessionLine` per session owns a queue and a task; what to
do with each arrival is bot.sequencer's decision (durable events, seq > 0, in exact sequence: a
duplicate is dropped, a gap asks the worker for a `Replay` after the last seq taken), and this
module sends the replay requests it asks for. Each event taken off the queue is given its
`Target` once (its chat, and whether the session is that chat's active one: from memory, no
SQL), and bot.view's table picks the method that shows its body (bot.session_view, the part of
the line that only shows). After an event's
Telegram calls are over, bot.db records its seq, so a restarted bot asks for exactly what
Telegram has not shown yet (at most one event is shown twice, none lost). "Over" keeps a bound:
a message Telegram refuses goes down bot.promise's ladder (plain text, then a file) before its
seq is marked, and one that network errors hold up past `delivery_retry_seconds` is given up,
so the line moves on and the chat is told in one sentence what it missed. A bot.db that takes
no more writes stops the line (the heartbeat reports it and the supervisor restarts the bot).

While a turn runs, in a private chat: a native draft (bot.native_draft, sendMessageDraft) that
shows "Thinking…" until the first words and then the text deltas (seq 0), with Telegram's Stop;
in a group, or in a chat that refused drafts once (remembered per chat): a typing indicator
every few seconds and a draft message edited in place (bot.live_draft around bot.draft),
throttled per chat, with a ⏹ button. Either Stop interrupts the turn (bot.stops). The durable
`AssistantText` then replaces the draft with the final, formatted text (bot.render), sent as a
normal message after a native draft. A session
that is not the chat's active one streams nothing: its answers come labelled with its name, and
its finished turn and permission prompts come with a button to switch to it. Where the chat has
topics, every send of an event goes to the session's own topic (bot.topics makes it when it has
none yet; bot.place carries it), and there the session counts as active. Every message shown is
remembered as its session's (bot.db `sent`), so a reply to it goes to that session.

It must never record a seq before its event's Telegram calls are over, nor decide order itself.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from functools import partial

from telegram import InlineKeyboardMarkup

from bot import place, view
from bot.chat import ChatServer
from bot.draft import Throttle
from bot.journal import Journal, StorageError
from bot.live_draft import DraftStreamer
from bot.native_draft import NativeDraft
from bot.promise import OUTAGE_BUDGET, Missed
from bot.render import Chunk
from bot.sequencer import Sequencer, Verdict
from bot.session_view import Answer, SessionView
from bot.telegram_out import (
    Blocked,
    Refused,
    TelegramOut,
    Unreachable,
    attempt,
    deliver,
)
from bot.topics import Topics
from bot.view import Target
from wire import messages as m
from wire.settings import BotSettings

log = logging.getLogger(__name__)

MAX_REMEMBERED_DRAFTS = 1000  # a Stop names a draft of the last few minutes at most


def _held_release(body: m.EventBody) -> str:
    """When a held tool line is shown: after its prompt's answer, or before anything else the
    chat shows (the turn moved on without a prompt); a prompt itself keeps it held."""
    if isinstance(body, m.PermissionRequest):
        return ""
    if isinstance(body, m.PermissionResolved):
        return "after"
    return "before" if view.handler(body) is not None else ""


class SessionLine(SessionView):
    """One session's events into its chat: the order from bot.sequencer, each body shown by the
    method bot.view picks, and bot.db's delivered seq written once Telegram accepted it."""

    def __init__(self, session: str, delivery: Delivery) -> None:
        self.session = session
        self.d = delivery
        self.order = Sequencer.after(delivery.journal.delivered(session))
        self.queue: asyncio.Queue[m.Event] = asyncio.Queue()
        self.last_chat: int | None = None
        self.draft: DraftStreamer | NativeDraft | None = None
        self.answer: Answer | None = None
        self.typing: asyncio.Task[None] | None = None
        self.held: tuple[int, str] | None = None  # a URL-carrying tool line awaiting its prompt
        self.missed = Missed()  # given up while Telegram did not answer; told once it does
        self.stop_buttons: list[int] = []  # draft messages whose ⏹ is still to be removed
        self._sync: asyncio.Future[None] | None = None  # the last seq's fsync (_last_recorded)
        self.task = asyncio.get_running_loop().create_task(self._run(), name=f"line-{session}")

    # ----------------------------------------------------------------------- ordering

    @property
    def synced(self) -> bool:
        return self.order.synced

    def request_replay(self, force: bool = False) -> None:
        now = time.monotonic()
        if not self.order.replay_due(now, force):
            return
        after = self.order.after_seq
        sent = self.d.chat.send(self.session, m.Replay(id=m.new_id(), after_seq=after))
        self.order.replay_requested(now, sent)
        if sent:
            log.info("event=replay_requested session=%s after_seq=%d", self.session, after)

    def hello(self, msg: m.Hello) -> None:
        expected = self.order.expected
        resync = self.order.hello(msg.last_seq)
        if resync.reset_delivered is not None:
            log.warning("event=outbox_reset session=%s last_seq=%d expected=%d", self.session,
                        msg.last_seq, expected)
            self.d.journal.reset_delivered(self.session, resync.reset_delivered)
        self.request_replay(force=True)

    def replay_done(self, msg: m.ReplayDone) -> None:
        if self.order.replay_done():
            self.request_replay()

    def offer(self, ev: m.Event) -> None:
        offer = self.order.offer(ev.seq, time.monotonic())
        if offer.replay:
            self.request_replay()
        if offer.verdict is Verdict.DELIVER:
            self.queue.put_nowait(ev)

    # ----------------------------------------------------------------------- showing

    async def _run(self) -> None:
        try:
            while True:
                await self._take(await self._next())
        except StorageError as exc:
            # bot.db takes no writes: a seq shown now could not be recorded, and the restarted
            # bot would show it again. The heartbeat already reports it; wait to be restarted.
            log.error("event=line_stopped session=%s reason=%r", self.session, str(exc))
            await asyncio.Event().wait()

    async def _next(self) -> m.Event:
        while self.missed.what and self.queue.empty():
            try:
                async with asyncio.timeout(OUTAGE_BUDGET):
                    return await self.queue.get()
            except TimeoutError:
                await self._tell_missed()
        return await self.queue.get()

    async def _take(self, ev: m.Event) -> None:
        if ev.seq > 0:
            await self._last_recorded()
        if self.missed.what:
            await self._tell_missed()
        target: Target | None = None
        try:
            target = self.target(ev)
            if target is not None:
                # Every send for this event goes to the session's topic there, if it has one.
                with place.in_thread(await self.topic(target.chat_id)):
                    held_until = _held_release(ev.body)
                    if held_until == "before":
                        await self.release_held()
                    await view.show(self, target, ev.body)
                    if held_until == "after":
                        await self.release_held()
        except (asyncio.CancelledError, StorageError):
            raise
        except Unreachable as exc:
            self._gave_up(ev, target, exc)
        except Exception:
            log.exception("event=render_failed session=%s seq=%d kind=%s", self.session,
                          ev.seq, type(ev.body).__name__)
        if ev.seq > 0:
            self.d.journal.set_delivered(self.session, ev.seq)
            self._sync = asyncio.ensure_future(asyncio.to_thread(self.d.journal.sync))

    async def _last_recorded(self) -> None:
        """The last durable event's seq is on disk before the next durable event is shown, so a
        power cut shows at most that one again; deltas (seq 0) never wait for the disk."""
        sync, self._sync = self._sync, None
        if sync is not None:
            await sync

    def budget(self) -> float:
        """How long one Telegram call may be retried: the setting, or a short while when an
        event was just given up (Telegram is out: a backlog must not cost minutes per event)."""
        full = self.d.settings.delivery_retry_seconds
        return min(full, OUTAGE_BUDGET) if self.missed.what else full

    def _gave_up(self, ev: m.Event, target: Target | None, exc: Unreachable) -> None:
        log.warning("event=not_delivered session=%s seq=%d kind=%s error=%r seconds=%.1f",
                    self.session, ev.seq, type(ev.body).__name__, str(exc), exc.seconds)
        self.stop_typing()
        self.answer = None
        if target is not None:
            self.missed.add(view.what(ev.body), target.chat_id, str(exc), exc.seconds)

    async def _tell_missed(self) -> None:
        chat, text = self.missed.chat, self.missed.sentence(self.session)
        if chat is not None:
            try:
                with place.in_thread(self.d.topics.map.thread(chat, self.session)):
                    await attempt(partial(self.d.out.send, chat, Chunk(text)), "missed",
                                  OUTAGE_BUDGET)
            except Unreachable:
                return  # still out: told with the next event, or at the next timeout of _next
            except (Refused, Blocked):
                pass
        self.missed = Missed()

    async def show(self, chat: int, chunk: Chunk, what: str, *, message_id: int | None = None,
                   markup: InlineKeyboardMarkup | None = None) -> int | None:
        """One chunk into the chat, down the fallback ladder (see bot.telegram_out.deliver).
        Its message is remembered as this session's, for reply-to routing."""
        mid = await deliver(self.d.out, chat, chunk, what, budget=self.budget(),
                            message_id=message_id, markup=markup,
                            filename=f"{what}-{self.session}.txt")
        if mid is not None:  # also an edited one: a streamed draft became this answer
            self.d.journal.remember_sent(chat, mid, self.session)
        return mid

    def target(self, ev: m.Event) -> Target | None:
        """Where this event goes, decided once as it is taken off the queue (no SQL): a chat
        where the session has its topic counts as one where it is active."""
        j = self.d.journal
        topics = self.d.topics.map
        chat = view.choose_chat(ev.chat_id, self.last_chat,
                                topics.chats_of(self.session) + j.chats_of(self.session))
        if ev.chat_id is not None:
            self.last_chat = ev.chat_id
        if chat is None:
            return None
        return Target(chat, j.active(chat) == self.session
                      or topics.thread(chat, self.session) is not None)

    async def topic(self, chat: int) -> int | None:
        """The session's topic in this chat: made now when the chat has topics and the
        session has none there yet (None: the chat itself)."""
        thread = self.d.topics.map.thread(chat, self.session)
        if thread is None and self.d.topics.chat_has_topics(chat):
            thread = await self.d.topics.ensure(chat, self.session)
        return thread

    async def close(self) -> None:
        self.stop_typing()
        if self.draft is not None:
            await self.draft.cancel()
        self.task.cancel()
        try:
            await self.task
        except (asyncio.CancelledError, Exception):  # noqa: BLE001, S110 - ending anyway
            pass


class Delivery:
    """Every session's line; the chat socket's handler for what workers send."""

    def __init__(self, journal: Journal, out: TelegramOut, chat: ChatServer,
                 settings: BotSettings, topics: Topics) -> None:
        self.journal = journal
        self.out = out
        self.chat = chat
        self.settings = settings
        self.topics = topics
        self.lines: dict[str, SessionLine] = {}
        self._throttles: dict[int, Throttle] = {}
        self.no_drafts: set[int] = set()  # chats that refused a draft: streamed by edits
        self.on_change: Callable[[], None] = lambda: None  # the live status (bot.live_status)
        self._stops: dict[tuple[int, int | None, int], str] = {}  # native draft -> session

    def drafts_ok(self, chat_id: int) -> bool:
        """Stream into a native draft here? Private chats only (a user's chat id is positive,
        a group's negative), unless the config turned drafts off or this chat refused one."""
        return self.settings.drafts and chat_id > 0 and chat_id not in self.no_drafts

    def remember_stop(self, key: tuple[int, int | None, int], session: str) -> None:
        self._stops[key] = session
        while len(self._stops) > MAX_REMEMBERED_DRAFTS:
            self._stops.pop(next(iter(self._stops)))

    def stopped(self, key: tuple[int, int | None, int]) -> str | None:
        """The user tapped Stop on this native draft: its session (None: not one of ours), and
        that session's draft sends nothing more."""
        session = self._stops.get(key)
        line = self.lines.get(session) if session else None
        if line is not None and isinstance(line.draft, NativeDraft) and line.draft.key == key:
            line.draft.stopped()
        return session

    def throttle(self, chat_id: int) -> Throttle:
        t = self._throttles.get(chat_id)
        if t is None:
            t = self._throttles[chat_id] = Throttle(self.settings.edit_interval_seconds)
        return t

    def line(self, session: str) -> SessionLine:
        line = self.lines.get(session)
        if line is None:
            line = self.lines[session] = SessionLine(session, self)
        return line

    async def forget(self, session: str) -> None:
        line = self.lines.pop(session, None)
        if line is not None:
            await line.close()

    def on_message(self, session: str, msg: m.ChatToBot) -> None:
        line = self.line(session)
        if isinstance(msg, m.Event):
            line.offer(msg)
        elif isinstance(msg, m.Hello):
            log.info("event=worker_hello session=%s pid=%d last_seq=%d", session, msg.pid,
                     msg.last_seq)
            line.hello(msg)
        elif isinstance(msg, m.ReplayDone):
            line.replay_done(msg)

    async def sync_loop(self, interval: float = 1.0) -> None:
        """Until each known session answered a Replay, keep asking (workers reconnect silently)."""
        while True:
            for session in self.journal.known_sessions() | set(self.lines):
                line = self.line(session)
                if not line.synced:
                    line.request_replay()
            await asyncio.sleep(interval)

    async def close(self) -> None:
        for session in list(self.lines):
            await self.forget(session)
