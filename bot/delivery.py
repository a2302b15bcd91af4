"""Outbound: each session's events, in order, into its chat; the seq recorded once Telegram took it.

The shell around two pure parts. One `SessionLine` per session owns a queue and a task; what to
do with each arrival is bot.sequencer's decision (durable events, seq > 0, in exact sequence: a
duplicate is dropped, a gap asks the worker for a `Replay` after the last seq taken), and this
module sends the replay requests it asks for. Each event taken off the queue is given its
`Target` once (its chat, and whether the session is that chat's active one: from memory, no
SQL), and bot.view's table picks the method below that shows its body. After an event's
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
import gzip
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from telegram import InlineKeyboardMarkup

from bot import files_out, meters, place, prompt_render, render, view
from bot.callbacks import budget_markup, permission_markup, retry_markup, stop_markup, switch_button
from bot.chat import ChatServer
from bot.draft import Throttle
from bot.journal import Journal, StorageError
from bot.live_draft import DraftStreamer
from bot.native_draft import NativeDraft
from bot.promise import OUTAGE_BUDGET, Missed
from bot.render import Chunk
from bot.sequencer import Sequencer, Verdict
from bot.telegram_out import (
    Blocked,
    Refused,
    TelegramOut,
    Unreachable,
    attempt,
    deliver,
    reliably,
)
from bot.topics import Topics
from bot.view import Target
from wire import messages as m
from wire.settings import BotSettings

log = logging.getLogger(__name__)

RENDER_IN_THREAD_CHARS = 20_000
GZIP_OVER_BYTES = 10 * 1024 * 1024  # Telegram takes documents up to 50 MB from a bot


def answer_file(session: str, text: str) -> tuple[str, bytes]:
    """The whole answer as a document: Markdown, gzipped when it is large."""
    data = text.encode()
    if len(data) > GZIP_OVER_BYTES:
        return f"answer-{session}.md.gz", gzip.compress(data, compresslevel=6)
    return f"answer-{session}.md", data
MAX_TYPING_SECONDS = 30 * 60.0
MAX_REMEMBERED_DRAFTS = 1000  # a Stop names a draft of the last few minutes at most




def _held_release(body: m.EventBody) -> str:
    """When a held tool line is shown: after its prompt's answer, or before anything else the
    chat shows (the turn moved on without a prompt); a prompt itself keeps it held."""
    if isinstance(body, m.PermissionRequest):
        return ""
    if isinstance(body, m.PermissionResolved):
        return "after"
    return "before" if view.handler(body) is not None else ""


@dataclass
class Answer:
    chat_id: int
    message_id: int
    chunk: Chunk


class SessionLine:
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

    async def turn_started(self, t: Target, body: m.TurnStarted) -> None:
        self.answer = None
        self.d.on_change()
        if t.active and self.d.drafts_ok(t.chat_id):
            # The draft's "Thinking…" is the typing indicator (unless the first words come first).
            if self.draft is not None:
                await self.draft.cancel()
            self.draft = self._native(t.chat_id)
            return
        self.start_typing(t.chat_id)

    def _native(self, chat: int) -> NativeDraft:
        # In the session's topic, where this event's sends go (bot.place): the draft shows there,
        # and Telegram's Stop on it names that topic.
        d = NativeDraft(self.d.out.bot, chat, self.d.settings.draft_interval_seconds,
                        thread_id=place.thread(), on_refused=self._drafts_refused)
        self.d.remember_stop(d.key, self.session)
        return d

    def _edited_draft(self, chat: int) -> DraftStreamer:
        stored = self.d.journal.draft(self.session)
        earlier = stored[1] if stored and stored[0] == chat else None
        return DraftStreamer(self.d.out, chat, self.d.throttle(chat),
                             lambda ids: self.d.journal.set_draft(self.session, chat, ids),
                             earlier, markup=stop_markup(self.session))

    def _drafts_refused(self, d: NativeDraft) -> None:
        """Telegram refused drafts in this chat: edits from now on (this answer included)."""
        self.d.no_drafts.add(d.chat_id)
        log.warning("event=drafts_refused chat_id=%s fallback=edits error=%r", d.chat_id,
                    d.refused)
        if self.draft is d:
            self.draft = self._edited_draft(d.chat_id)
            if d.text:
                self.draft.feed(d.text)
            self.start_typing(d.chat_id)

    async def text_delta(self, t: Target, body: m.TextDelta) -> None:
        if not t.active:
            return
        chat = t.chat_id
        if self.draft is None or self.draft.chat_id != chat:
            if self.draft is not None:
                await self.draft.cancel()
            self.draft = (self._native(chat) if self.d.drafts_ok(chat)
                          else self._edited_draft(chat))
        self.draft.feed(body.text)

    async def _end_draft(self) -> list[tuple[int, str]]:
        """Stop the draft; the messages it left as (id, text shown) (none for a native one)."""
        if self.draft is None:
            return []
        draft, self.draft = self.draft, None
        shown = await draft.finish()
        if isinstance(draft, DraftStreamer) and draft.markup is not None:
            self.stop_buttons = [mid for mid, _ in shown]
        return shown

    async def _drop_stop_buttons(self, chat: int) -> None:
        """The ⏹ left on draft messages that no later edit replaced."""
        mids, self.stop_buttons = self.stop_buttons, []
        for mid in mids:
            try:
                await attempt(partial(self.d.out.remove_buttons, chat, mid), "stop_button",
                              self.budget())
            except (Refused, Blocked, Unreachable):
                pass  # a ⏹ left on a finished answer answers "nothing is running" when tapped

    async def assistant_text(self, t: Target, body: m.AssistantText) -> None:
        await self.final_text(t, body.text)

    async def tool_use(self, t: Target, body: m.ToolUse) -> None:
        if not t.active:
            return
        line = render.tool_line(body)
        if render.has_url(line):
            # Its permission prompt, if it needs one, comes next: the URL waits for the answer.
            self.held = (t.chat_id, line)
            return
        await self.show(t.chat_id, Chunk(line), "tool_line")

    async def release_held(self) -> None:
        """Show the tool line held back for its prompt (answered, or the turn moved on)."""
        if self.held is not None:
            chat, line = self.held
            self.held = None
            await self.show(chat, Chunk(line), "tool_line")

    async def file_out(self, t: Target, body: m.FileOut) -> None:
        """A file from the session (send_file, /get): as a photo or a document (bot.files_out)."""
        if not t.active:  # a background session's file says whose it is, as its answers do
            body = m.FileOut(path=body.path, name=body.name, size=body.size, photo=body.photo,
                             caption=f"[{self.session}] {body.caption}".strip())
        try:
            await files_out.send(self.d.out, t.chat_id, body, self.budget())
        except files_out.Unsendable as exc:
            log.info("event=file_not_sent session=%s name=%r why=%r", self.session, body.name,
                     str(exc))
            chunks = [Chunk(str(exc))]
            if not t.active:
                chunks = render.labelled(self.session, chunks)
            for c in chunks:
                await self.show(t.chat_id, c, "notice")
        except Blocked:
            pass

    async def notice(self, t: Target, body: m.Notice) -> None:
        chunks = [Chunk(render.notice(body))]
        if not t.active:
            chunks = render.labelled(self.session, chunks)
        for c in chunks:
            await self.show(t.chat_id, c, "notice")

    async def budget_hold(self, t: Target, body: m.BudgetHold) -> None:
        """A budget keeps the next message waiting: one sentence and the button that raises
        the budget for today (the worker runs the message then)."""
        chunks = [Chunk(meters.hold_text(body))]
        if not t.active:
            chunks = render.labelled(self.session, chunks)
        for i, c in enumerate(chunks):
            last = i == len(chunks) - 1
            await self.show(t.chat_id, c, "budget",
                            markup=budget_markup(self.session, body.kind) if last else None)

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

    async def final_text(self, t: Target, text: str) -> None:
        chat = t.chat_id
        shown = await self._end_draft()
        if not shown:
            stored = self.d.journal.draft(self.session)
            if stored and stored[0] == chat:
                shown = [(mid, "") for mid in stored[1]]
        settings = self.d.settings
        try:
            if len(text) > settings.preview_over_chars:
                chunks = [render.render_preview(text)]
            elif len(text) > RENDER_IN_THREAD_CHARS:  # a big conversion must not stall the loop
                chunks = await asyncio.to_thread(render.render_markdown, text)
            else:
                chunks = render.render_markdown(text)
        except Exception:  # a text the converter cannot take is still the answer: shown plain
            log.exception("event=render_failed session=%s chars=%d", self.session, len(text))
            chunks = render.render_plain(text)
        if not t.active:
            chunks = render.labelled(self.session, chunks)
        out = self.d.out
        last: int | None = None
        for i, chunk in enumerate(chunks):
            if i < len(shown):
                mid, was = shown[i]
                if not chunk.entities and was.strip() == chunk.text.strip():
                    last = mid  # the draft already shows exactly this: no edit
                    self.d.journal.remember_sent(chat, mid, self.session)
                    continue
                last = await self.show(chat, chunk, "answer", message_id=mid)
                if mid in self.stop_buttons:
                    self.stop_buttons.remove(mid)  # the edit replaced its buttons
            else:
                last = await self.show(chat, chunk, "answer")
        for mid, _ in shown[len(chunks):]:
            try:
                await attempt(partial(out.delete, chat, mid), "draft_delete", self.budget())
            except (Refused, Blocked):
                pass  # a draft message left over is untidy, not a loss
        await self._drop_stop_buttons(chat)
        self.d.journal.clear_draft(self.session)
        if last is not None and chunks:
            self.answer = Answer(chat, last, chunks[-1])
        if len(text) > settings.file_threshold_chars:
            name, data = await asyncio.to_thread(answer_file, self.session, text)
            try:
                await attempt(partial(out.document, chat, name, data,
                                      "The whole answer as a file."), "answer_file", self.budget())
            except (Refused, Blocked):
                pass  # the answer itself is in the chat already

    async def turn_result(self, t: Target, body: m.TurnResult) -> None:
        chat = t.chat_id
        self.d.on_change()
        self.stop_typing()
        self.d.journal.clear_draft(self.session)
        if self.draft is not None:
            if not self.answer and body.text and not body.retry_text:
                await self.final_text(t, body.text)
            else:
                await self._end_draft()
                await self._drop_stop_buttons(chat)
        foot = render.footer(body)
        if body.retry_text and body.text:  # a user's stop cut it short: offer it again
            n = self.d.journal.add_retry(self.session, body.key, chat, body.retry_text)
            self.answer = None
            chunks = render.render_plain("⚠️ " + body.text)
            if not t.active:
                chunks = render.labelled(self.session, chunks)
            for i, c in enumerate(chunks):
                last = i == len(chunks) - 1
                await self.show(chat, c, "stopped", markup=retry_markup(n) if last else None)
            return
        if body.is_error and body.text and self.answer is None:
            mid: int | None = None
            chunks = render.render_plain("⚠️ " + body.text)
            for c in chunks:
                mid = await self.show(chat, c, "error_text")
            if chunks and mid:
                self.answer = Answer(chat, mid, chunks[-1])
        answer = self.answer
        self.answer = None
        if not t.active:
            await self.show(chat, Chunk(f"Session {self.session} finished a turn ({foot})."),
                            "background_notice",
                            markup=InlineKeyboardMarkup([[switch_button(self.session)]]))
            return
        if answer is not None and answer.chat_id == chat and answer.message_id:
            joined = render.with_footer(answer.chunk, foot)
            if joined is not None:
                await self.show(chat, joined, "footer", message_id=answer.message_id)
                return
        await self.show(chat, Chunk(foot), "footer")

    async def permission_request(self, t: Target, body: m.PermissionRequest) -> None:
        chat = t.chat_id
        j = self.d.journal
        shown = prompt_render.view(self.session, body)
        text = shown.parts[-1]  # the part with the buttons, edited with the outcome later
        n, _ = j.add_prompt(self.session, body.prompt_id, chat, text)
        self.d.topics.touch(self.session)  # its topic's title shows it waits
        self.d.on_change()
        prompt = j.prompt(n)
        if prompt is None or prompt.state != "open" or prompt.message_id is not None:
            return
        out = self.d.out
        if shown.file is not None:
            name, data = shown.file
            await reliably(lambda: out.document(chat, name, data, "The whole input of the"
                                                " permission request below."), "permission_file")
        for part in shown.parts[:-1]:
            await self.show(chat, prompt_render.chunk(part), "permission_part")
        markup = permission_markup(n, None if t.active else self.session, body.grant_label)
        mid = await self.show(chat, prompt_render.chunk(text), "permission", markup=markup)
        if mid is not None:
            j.set_prompt_message(n, mid)

    async def permission_resolved(self, t: Target, body: m.PermissionResolved) -> None:
        # The prompt's own chat and message, whatever chat this event was routed to.
        j = self.d.journal
        prompt = j.prompt_by_id(self.session, body.prompt_id)
        if prompt is None or not j.close_prompt(prompt.n, "resolved"):
            return
        self.d.topics.touch(self.session)
        self.d.on_change()
        if prompt.message_id is None:
            return
        shown = prompt_render.chunk(prompt.text,
                                    render.permission_outcome(body.allowed, body.reason))
        await self.show(prompt.chat_id, shown, "permission_resolved",
                        message_id=prompt.message_id)

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
