"""The live status: one message per chat, pinned, that always shows every session as it is.

`status_text` and `status_markup` are pure: each session's state (working, ready, suspended,
stopped, ...), project, persona, model, context fill, cost, queued messages, pending approvals
and idle time, then the subscription's windows (bot.meters), and one button per other session
that switches the chat to it, or, where the chat has topics, one per session that opens its
topic (a t.me link in a forum; in a private chat, where Telegram has no such link, a tap that
puts a line in the topic, which brings it up with a badge). `LiveStatus` is the shell: `/status`
posts a new one at the bottom of the chat, pins it, and unpins and deletes the one before
(`bring_up`); from then on it is edited in place whenever something changes (`poke`: a state
change from the supervisor, a turn starting or ending, a permission prompt), debounced, and at
least every `status_refresh_seconds` (idle times, a suspend after the idle timeout); an edit
that would show the same text is never sent. Its message id is in bot.db, so a restarted bot
edits the same message instead of posting another; a status message the user deleted is posted
again.

The text says nothing that changes every second (no uptime, idle time in minutes), so a quiet
system costs no edits at all. It must never show a session's conversation, and never block a
handler: the refresh runs in its own task.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from functools import partial

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot import meters, place
from bot.callbacks import switch_button, topic_button, topic_link
from bot.control import Refused, SupervisorClient
from bot.journal import Journal
from bot.render import Chunk, format_cost, format_idle, session_name, session_rows
from bot.telegram_out import Gone, TelegramOut, reliably
from wire import messages as m
from wire.aio import wait_event

log = logging.getLogger(__name__)

DEBOUNCE_SECONDS = 0.3
TITLE = "📌 Sessions, live"


def idle_words(seconds: float | None) -> str:
    """Idle time that changes at most once a minute."""
    if seconds is None:
        return ""
    return "idle <1 min" if seconds < 60 else f"idle {format_idle(seconds)}"


def state_words(r: m.ProgramStatus) -> str:
    if r.state == "RUNNING":
        if r.busy:
            return "working"
        return "suspended" if r.suspended else "ready"
    return r.state.lower()


def session_line(r: m.ProgramStatus, active: bool, approvals: int) -> str:
    parts = [f"{'▶' if active else '•'} {session_name(r)} — {state_words(r)}"]
    if r.project:
        parts.append(f"@{r.project}")
    if r.persona:
        parts.append(f"persona {r.persona}")
    parts += [b for b in (r.model, meters.context_part(r.context_percent)) if b]
    parts.append(format_cost(r.cost_usd))
    if r.queued:
        parts.append(f"{r.queued} queued")
    if approvals:
        parts.append(f"{approvals} approval{'s' if approvals > 1 else ''} waiting")
    if r.state == "RUNNING" and not r.busy and (idle := idle_words(r.idle_seconds)):
        parts.append(idle)
    return " · ".join(parts)


def status_text(rows: list[m.ProgramStatus], active: str | None,
                approvals: dict[str, int]) -> str:
    sessions = session_rows(rows)
    if not sessions:
        return f"{TITLE}\nNo sessions yet: create one with /new NAME."
    lines = [TITLE]
    windows: dict[str, m.RateWindow] = {}
    for r in sessions:
        name = session_name(r)
        lines.append(session_line(r, name == active, approvals.get(name, 0)))
        windows.update((w.window, w) for w in r.rate_limits)
    if windows:  # every session reports the same account's windows
        lines.append(f"limits: {meters.windows_text(list(windows.values()))}")
    return "\n".join(lines)


def status_markup(rows: list[m.ProgramStatus], active: str | None, chat_id: int = 0,
                  thread: Callable[[str], int | None] = lambda session: None,
                  ) -> InlineKeyboardMarkup | None:
    """Two buttons to a row: where the chat has topics, one per session that has its topic
    there, to open it (`thread`: the session's topic in this chat); elsewhere one per session
    the chat is not on, to switch to it."""
    buttons: list[InlineKeyboardButton] = []
    for r in session_rows(rows):
        name = session_name(r)
        topic = thread(name)
        if topic is not None:
            buttons.append(topic_button(name, topic_link(chat_id, topic)))
        elif name != active:
            buttons.append(switch_button(name))
    if not buttons:
        return None
    return InlineKeyboardMarkup([buttons[i:i + 2] for i in range(0, len(buttons), 2)])


class LiveStatus:
    """The pinned status message of every chat that asked for one, kept up to date."""

    def __init__(self, journal: Journal, supervisor: SupervisorClient, out: TelegramOut,
                 refresh_seconds: float) -> None:
        self.journal = journal
        self.supervisor = supervisor
        self.out = out
        self.refresh_seconds = refresh_seconds
        self._poked = asyncio.Event()
        self._shown: dict[int, str] = {}  # chat -> the text (and buttons) its message shows
        self._lock = asyncio.Lock()  # one refresh or bring-up at a time
        # The session's topic in a chat (bot.topics), for the buttons that open it.
        self.thread_of: Callable[[int, str], int | None] = lambda chat, session: None

    def poke(self) -> None:
        """Something changed: refresh soon (many pokes make one refresh)."""
        self._poked.set()

    async def run(self) -> None:
        while True:
            await wait_event(self._poked, self.refresh_seconds)
            if self._poked.is_set():
                await asyncio.sleep(DEBOUNCE_SECONDS)
            self._poked.clear()
            try:
                await self.refresh()
            except Exception:
                log.exception("event=live_status_failed")

    async def _view(self, chat: int, rows: list[m.ProgramStatus]
                    ) -> tuple[str, InlineKeyboardMarkup | None]:
        active = self.journal.active(chat)
        return (status_text(rows, active, self.journal.open_prompt_counts()),
                status_markup(rows, active, chat, lambda session: self.thread_of(chat, session)))

    @staticmethod
    def _key(text: str, markup: InlineKeyboardMarkup | None) -> str:
        return text + "\0" + (str(markup.to_dict()) if markup else "")

    async def refresh(self) -> None:
        chats = self.journal.status_messages()
        if not chats:
            return
        try:
            rows = await self.supervisor.status()
        except Refused:
            return  # the supervisor is busy or away: the next refresh tries again
        async with self._lock:
            for chat, mid in self.journal.status_messages().items():
                text, markup = await self._view(chat, rows)
                key = self._key(text, markup)
                if self._shown.get(chat) == key:
                    continue
                try:
                    await self.out.edit(chat, mid, Chunk(text), markup)
                except Gone:  # the user deleted it: a new one, pinned
                    await self._post(chat, text, markup, None)
                    continue
                except Exception as exc:  # noqa: BLE001 - a missed edit waits for the next one
                    log.info("event=live_status_edit_failed chat_id=%s error=%r", chat, str(exc))
                    continue
                self._shown[chat] = key

    async def bring_up(self, chat: int) -> str | None:
        """/status: a new status message at the bottom, pinned; the old one unpinned and
        deleted. None, or the sentence for the chat when the supervisor did not answer."""
        try:
            rows = await self.supervisor.status()
        except Refused as exc:
            return str(exc)
        text, markup = await self._view(chat, rows)
        async with self._lock:
            await self._post(chat, text, markup, self.journal.status_messages().get(chat))
        return None

    async def _post(self, chat: int, text: str, markup: InlineKeyboardMarkup | None,
                    old: int | None) -> None:
        with place.in_thread(None):  # in General (or the chat), wherever /status was typed
            mid = await reliably(partial(self.out.send, chat, Chunk(text), markup),
                                 "live_status")
        if mid is None:
            return
        self.journal.set_status_message(chat, mid)
        self._shown[chat] = self._key(text, markup)
        bot = self.out.bot
        await reliably(lambda: bot.pin_chat_message(chat, mid, disable_notification=True),
                       "live_status_pin")
        if old is not None and old != mid:
            await reliably(lambda: bot.unpin_chat_message(chat, old), "live_status_unpin")
            await reliably(partial(self.out.delete, chat, old), "live_status_delete")
        log.info("event=live_status_posted chat_id=%s message_id=%s", chat, mid)
