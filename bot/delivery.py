"""Outbound: each session's events, in order, into its chat; the seq recorded once Telegram took it.

One `SessionLine` per session owns a queue and a task. Durable events (seq > 0) are taken in
exact sequence: a duplicate is dropped, a gap asks the worker for a `Replay` from the last seq
queued. After an event's Telegram calls succeeded, bot.db records its seq, so a restarted bot
asks for exactly what Telegram has not shown yet (at most one event is shown twice, none lost).

While a turn runs: a typing indicator every few seconds, and text deltas (seq 0) streamed into a
draft edited in place (bot.draft), throttled per chat. The durable `AssistantText` then replaces
the draft with the final, formatted text. A session that is not the chat's active one streams
nothing: its answers come labelled with its name, and its finished turn and permission prompts
come with a button to switch to it.
"""
from __future__ import annotations

import asyncio
import gzip
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, NetworkError, RetryAfter

from bot import render
from bot.chat import ChatServer
from bot.draft import Draft, Send, Throttle
from bot.journal import Journal
from bot.ratelimit import retry_seconds
from bot.render import Chunk
from bot.telegram_out import Gone, TelegramOut, reliably
from wire import messages as m
from wire.aio import wait_event
from wire.settings import BotSettings

log = logging.getLogger(__name__)

REPLAY_RETRY_SECONDS = 5.0
RENDER_IN_THREAD_CHARS = 20_000
GZIP_OVER_BYTES = 10 * 1024 * 1024  # Telegram takes documents up to 50 MB from a bot


def answer_file(session: str, text: str) -> tuple[str, bytes]:
    """The whole answer as a document: Markdown, gzipped when it is large."""
    data = text.encode()
    if len(data) > GZIP_OVER_BYTES:
        return f"answer-{session}.md.gz", gzip.compress(data, compresslevel=6)
    return f"answer-{session}.md", data
MAX_TYPING_SECONDS = 30 * 60.0


def switch_button(session: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(f"Switch to {session}", callback_data=f"sw:{session}")


def permission_markup(n: int, session: str | None) -> InlineKeyboardMarkup:
    rows = [
        [InlineKeyboardButton("Allow", callback_data=f"p:{n}:a"),
         InlineKeyboardButton("Deny", callback_data=f"p:{n}:d")],
        [InlineKeyboardButton("Allow for this session", callback_data=f"p:{n}:s")],
    ]
    if session is not None:
        rows.append([switch_button(session)])
    return InlineKeyboardMarkup(rows)


class DraftStreamer:
    """One streamed answer in one chat: deltas in, throttled sends/edits out (all droppable)."""

    def __init__(self, out: TelegramOut, chat_id: int, throttle: Throttle,
                 on_ids: Callable[[list[int]], None], earlier: list[int] | None = None) -> None:
        """`earlier`: the draft messages a previous bot process left (the last one is reused)."""
        self.out = out
        self.chat_id = chat_id
        self.throttle = throttle
        self.prefix = list(earlier or [])[:-1]
        self._on_ids = on_ids
        self.draft = Draft()
        if earlier:
            self.draft.current.message_id = earlier[-1]
        self._changed = asyncio.Event()
        self._stop = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"draft-{chat_id}")

    def feed(self, text: str) -> None:
        self.draft.append(text)
        self._changed.set()

    async def _pause(self, seconds: float) -> None:
        if seconds > 0:
            await wait_event(self._stop, seconds)

    async def _run(self) -> None:
        while not self._stop.is_set():
            await self._changed.wait()
            self._changed.clear()
            while not self._stop.is_set():
                await self._pause(self.throttle.delay(time.monotonic()))
                if self._stop.is_set():
                    return
                action = self.draft.next_action()
                if action is None:
                    break
                try:
                    if isinstance(action, Send):
                        mid = await self.out.send(self.chat_id, Chunk(action.text), droppable=True)
                        self.draft.done(action, mid)
                        self._on_ids(self.prefix + self.draft.message_ids())
                    else:
                        await self.out.edit(self.chat_id, action.message_id, Chunk(action.text),
                                            droppable=True)
                        self.draft.done(action)
                except Gone:
                    self.draft.lost()
                except RetryAfter as exc:
                    await self._pause(min(retry_seconds(exc), 60.0))
                except (NetworkError, BadRequest) as exc:
                    log.info("event=draft_skipped chat_id=%s error=%r", self.chat_id, str(exc))
                    await self._pause(self.throttle.interval)
                self.throttle.mark(time.monotonic())

    async def finish(self) -> list[tuple[int, str]]:
        """Stop streaming; the draft's messages as (message_id, text shown)."""
        self._stop.set()
        self._changed.set()
        try:
            await self._task
        except Exception:
            log.exception("event=draft_failed chat_id=%s", self.chat_id)
        shown = [(s.message_id, s.shown) for s in self.draft.messages if s.message_id is not None]
        return [(mid, "") for mid in self.prefix] + shown

    async def cancel(self) -> None:
        self._task.cancel()
        try:
            await self._task
        except (asyncio.CancelledError, Exception):  # noqa: BLE001, S110 - ending anyway
            pass


@dataclass
class Answer:
    chat_id: int
    message_id: int
    chunk: Chunk


class SessionLine:
    def __init__(self, session: str, delivery: Delivery) -> None:
        self.session = session
        self.d = delivery
        self.expected = delivery.journal.delivered(session) + 1
        self.max_seen = 0
        self.synced = False
        self.replay_sent: float | None = None
        self.queue: asyncio.Queue[m.Event] = asyncio.Queue()
        self.last_chat: int | None = None
        self.draft: DraftStreamer | None = None
        self.answer: Answer | None = None
        self.typing: asyncio.Task[None] | None = None
        self.task = asyncio.get_running_loop().create_task(self._run(), name=f"line-{session}")

    # ----------------------------------------------------------------------- ordering

    def request_replay(self, force: bool = False) -> None:
        now = time.monotonic()
        if (not force and self.replay_sent is not None
                and now - self.replay_sent < REPLAY_RETRY_SECONDS):
            return
        sent = self.d.chat.send(self.session, m.Replay(id=m.new_id(), after_seq=self.expected - 1))
        self.replay_sent = now if sent else None
        if sent:
            log.info("event=replay_requested session=%s after_seq=%d", self.session,
                     self.expected - 1)

    def hello(self, msg: m.Hello) -> None:
        if msg.last_seq < self.expected - 1:
            # The worker's outbox is younger than what we saw: the session was re-created.
            log.warning("event=outbox_reset session=%s last_seq=%d expected=%d", self.session,
                        msg.last_seq, self.expected)
            self.expected = msg.last_seq + 1
            self.d.journal.reset_delivered(self.session, msg.last_seq)
        self.request_replay(force=True)

    def replay_done(self, msg: m.ReplayDone) -> None:
        self.replay_sent = None
        self.synced = True
        if self.max_seen >= self.expected:
            self.request_replay()

    def offer(self, ev: m.Event) -> None:
        if not self.synced:
            self.request_replay()
        if ev.seq <= 0:
            self.queue.put_nowait(ev)
            return
        self.max_seen = max(self.max_seen, ev.seq)
        if ev.seq < self.expected:
            return
        if ev.seq > self.expected:
            self.request_replay()
            return
        self.expected += 1
        self.queue.put_nowait(ev)

    # ----------------------------------------------------------------------- rendering

    async def _run(self) -> None:
        while True:
            ev = await self.queue.get()
            try:
                await self.handle(ev)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("event=render_failed session=%s seq=%d kind=%s", self.session,
                              ev.seq, type(ev.body).__name__)
            if ev.seq > 0:
                self.d.journal.set_delivered(self.session, ev.seq)

    def chat_for(self, ev: m.Event) -> int | None:
        if ev.chat_id is not None:
            self.last_chat = ev.chat_id
            return ev.chat_id
        if self.last_chat is not None:
            return self.last_chat
        chats = self.d.journal.chats_of(self.session)
        return chats[0] if chats else None

    async def handle(self, ev: m.Event) -> None:
        chat = self.chat_for(ev)
        if chat is None:
            return
        body = ev.body
        active = self.d.journal.active(chat) == self.session
        out = self.d.out
        if isinstance(body, m.TurnStarted):
            self.answer = None
            self.start_typing(chat)
        elif isinstance(body, m.TextDelta):
            if active:
                if self.draft is None or self.draft.chat_id != chat:
                    stored = self.d.journal.draft(self.session)
                    earlier = stored[1] if stored and stored[0] == chat else None
                    self.draft = DraftStreamer(out, chat, self.d.throttle(chat),
                                               lambda ids: self.d.journal.set_draft(
                                                   self.session, chat, ids), earlier)
                self.draft.feed(body.text)
        elif isinstance(body, m.AssistantText):
            await self.final_text(chat, body.text, active)
        elif isinstance(body, m.ToolUse):
            if active:
                await reliably(lambda: out.send(chat, Chunk(render.tool_line(body))), "tool_line")
        elif isinstance(body, m.TurnResult):
            await self.turn_result(chat, body, active)
        elif isinstance(body, m.PermissionRequest):
            await self.permission(chat, body, active)
        elif isinstance(body, m.PermissionResolved):
            await self.resolved(body)
        elif isinstance(body, m.Notice):
            chunks = [Chunk(render.notice(body))]
            if not active:
                chunks = render.labelled(self.session, chunks)
            for c in chunks:
                await reliably(partial(out.send, chat, c), "notice")

    def start_typing(self, chat: int) -> None:
        self.stop_typing()
        self.typing = asyncio.get_running_loop().create_task(self._typing(chat),
                                                             name=f"typing-{self.session}")

    def stop_typing(self) -> None:
        if self.typing is not None:
            self.typing.cancel()
            self.typing = None

    async def _typing(self, chat: int) -> None:
        started = time.monotonic()
        while time.monotonic() - started < MAX_TYPING_SECONDS:
            await self.d.out.typing(chat)
            await asyncio.sleep(self.d.settings.typing_interval_seconds)

    async def final_text(self, chat: int, text: str, active: bool) -> None:
        shown: list[tuple[int, str]] = []
        if self.draft is not None:
            shown = await self.draft.finish()
            self.draft = None
        if not shown:
            stored = self.d.journal.draft(self.session)
            if stored and stored[0] == chat:
                shown = [(mid, "") for mid in stored[1]]
        settings = self.d.settings
        if len(text) > settings.preview_over_chars:
            chunks = [render.render_preview(text)]
        elif len(text) > RENDER_IN_THREAD_CHARS:  # a big conversion must not stall the loop
            chunks = await asyncio.to_thread(render.render_markdown, text)
        else:
            chunks = render.render_markdown(text)
        if not active:
            chunks = render.labelled(self.session, chunks)
        out = self.d.out
        last: int | None = None
        for i, chunk in enumerate(chunks):
            if i < len(shown):
                mid, was = shown[i]
                if not chunk.entities and was.strip() == chunk.text.strip():
                    last = mid  # the draft already shows exactly this: no edit
                    continue
                last = await reliably(partial(out.put, chat, mid, chunk), "answer_edit")
            else:
                last = await reliably(partial(out.send, chat, chunk), "answer")
        for mid, _ in shown[len(chunks):]:
            await reliably(partial(out.delete, chat, mid), "draft_delete")
        self.d.journal.clear_draft(self.session)
        if last is not None and chunks:
            self.answer = Answer(chat, last, chunks[-1])
        if len(text) > settings.file_threshold_chars:
            name, data = await asyncio.to_thread(answer_file, self.session, text)
            await reliably(lambda: out.document(chat, name, data, "The whole answer as a file."),
                           "answer_file")

    async def turn_result(self, chat: int, body: m.TurnResult, active: bool) -> None:
        self.stop_typing()
        self.d.journal.clear_draft(self.session)
        if self.draft is not None:
            if not self.answer and body.text:
                await self.final_text(chat, body.text, active)
            else:
                await self.draft.finish()
                self.draft = None
        out = self.d.out
        foot = render.footer(body)
        if body.is_error and body.text and self.answer is None:
            mid: int | None = None
            chunks = render.render_plain("⚠️ " + body.text)
            for c in chunks:
                mid = await reliably(partial(out.send, chat, c), "error_text")
            if chunks and mid:
                self.answer = Answer(chat, mid, chunks[-1])
        answer = self.answer
        self.answer = None
        if not active:
            await reliably(
                lambda: out.send(chat, Chunk(f"Session {self.session} finished a turn ({foot})."),
                                 InlineKeyboardMarkup([[switch_button(self.session)]])),
                "background_notice")
            return
        if answer is not None and answer.chat_id == chat and answer.message_id:
            joined = render.with_footer(answer.chunk, foot)
            if joined is not None:
                await reliably(lambda: out.put(chat, answer.message_id, joined), "footer")
                return
        await reliably(lambda: out.send(chat, Chunk(foot)), "footer")

    async def permission(self, chat: int, body: m.PermissionRequest, active: bool) -> None:
        j = self.d.journal
        text = render.permission_text(self.session, body)
        n, _ = j.add_prompt(self.session, body.prompt_id, chat, text)
        prompt = j.prompt(n)
        if prompt is None or prompt.state != "open" or prompt.message_id is not None:
            return
        markup = permission_markup(n, None if active else self.session)
        mid = await reliably(lambda: self.d.out.send(chat, Chunk(text), markup), "permission")
        if mid is not None:
            j.set_prompt_message(n, mid)

    async def resolved(self, body: m.PermissionResolved) -> None:
        j = self.d.journal
        prompt = j.prompt_by_id(self.session, body.prompt_id)
        if prompt is None or not j.close_prompt(prompt.n, "resolved"):
            return
        if prompt.message_id is None:
            return
        text = prompt.text + "\n" + render.permission_outcome(body.allowed, body.reason)
        await reliably(lambda: self.d.out.put(prompt.chat_id, prompt.message_id, Chunk(text)),
                       "permission_resolved")

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
                 settings: BotSettings) -> None:
        self.journal = journal
        self.out = out
        self.chat = chat
        self.settings = settings
        self.lines: dict[str, SessionLine] = {}
        self._throttles: dict[int, Throttle] = {}

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
