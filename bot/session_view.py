"""How one session's events look in Telegram: the View (bot.view) of a session's line.

The methods bot.view's table picks for each event body: the turn's start ("Thinking…" in a
native draft, or the typing indicator), its text deltas streamed into a native draft
(bot.native_draft) or into a message edited in place (bot.live_draft) with a ⏹ button, the final
text that replaces the draft (bot.render; a long one as a file), tool lines (one carrying a URL
is held until its prompt is answered), files for the chat (bot.files_out), notices, budget holds,
the footer of a finished turn, and permission prompts with their outcome. A part of
bot.delivery.SessionLine (a mixin): the line decides order and target and records the seq; this
only shows. It must never record a seq, nor decide order.
"""
from __future__ import annotations

import asyncio
import gzip
import logging
import time
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from telegram import InlineKeyboardMarkup

from bot import files_out, meters, place, prompt_render, render
from bot.callbacks import budget_markup, permission_markup, retry_markup, stop_markup, switch_button
from bot.live_draft import DraftStreamer
from bot.native_draft import NativeDraft
from bot.render import Chunk
from bot.telegram_out import Blocked, Refused, Unreachable, attempt, reliably
from bot.view import Target
from wire import messages as m

if TYPE_CHECKING:
    from bot.delivery import Delivery

log = logging.getLogger("bot.delivery")

RENDER_IN_THREAD_CHARS = 20_000
GZIP_OVER_BYTES = 10 * 1024 * 1024  # Telegram takes documents up to 50 MB from a bot


def answer_file(session: str, text: str) -> tuple[str, bytes]:
    """The whole answer as a document: Markdown, gzipped when it is large."""
    data = text.encode()
    if len(data) > GZIP_OVER_BYTES:
        return f"answer-{session}.md.gz", gzip.compress(data, compresslevel=6)
    return f"answer-{session}.md", data


MAX_TYPING_SECONDS = 30 * 60.0


@dataclass
class Answer:
    chat_id: int
    message_id: int
    chunk: Chunk


class SessionView:
    if TYPE_CHECKING:  # the SessionLine's, which this part of it uses
        session: str
        d: Delivery
        draft: DraftStreamer | NativeDraft | None
        answer: Answer | None
        typing: asyncio.Task[None] | None
        held: tuple[int, str] | None
        stop_buttons: list[int]

        def budget(self) -> float: ...
        async def show(self, chat: int, chunk: Chunk, what: str, *,
                       message_id: int | None = None,
                       markup: InlineKeyboardMarkup | None = None) -> int | None: ...

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
