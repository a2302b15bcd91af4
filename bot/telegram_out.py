"""Sending to Telegram: entities with a plain-text fallback, and retries with a bound.

`send`/`edit` turn a `render.Chunk` into a PTB call, never with a link preview. When Telegram
rejects the entities, the same text goes out plain; "message is not modified" counts as success;
an edit of a message that is gone raises `Gone` so the caller sends a new one. Every send goes
to the current topic (bot.place); one whose topic is gone or closed is recreated or reopened
through `recover_topic` (bot.topics) and sent again there. `attempt` retries
network failures and flood waits with capped backoff for at most `budget` seconds in all
(bot.promise decides the waits), then raises `Unreachable`; a refusal no retry can fix raises
`Refused` at once (a bad request, so the caller can try the next rung of bot.promise's ladder)
or `Blocked` (the bot is blocked, the chat is gone). `reliably` is the same for callers that
only want a result or None.

It must never retry without a bound: a line that waits forever on Telegram is a wedged session.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

from telegram import InlineKeyboardMarkup, LinkPreviewOptions, MessageEntity
from telegram.constants import ChatAction
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.ext import ExtBot

from bot import place
from bot.promise import Rung, next_rung, retry_delay
from bot.ratelimit import DROPPABLE
from bot.render import Chunk, render_plain, split

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_BACKOFF = 10.0
# Model and tool text can carry any URL: a preview would fetch it (and show what it returns)
# before anyone approved anything, so no message or edit of the bot ever has one.
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
# The default of telegram.delivery_retry_seconds, for the callers outside a session's line.
DEFAULT_BUDGET = 120.0
AS_FILE_CAPTION = "Telegram refused this message as text, so here it is as a file."


class Gone(Exception):
    """The message to edit no longer exists."""


class Refused(Exception):
    """Telegram refused this request (400): sending it again as it is cannot work."""


class Blocked(Exception):
    """The bot may not write to this chat (blocked by the user, chat gone): nothing will work."""


class Unreachable(Exception):
    """Network errors (or flood waits) outlasted the retry bound; str() is the last error."""

    def __init__(self, error: str, seconds: float) -> None:
        super().__init__(error)
        self.seconds = seconds


def _entities(chunk: Chunk) -> list[MessageEntity] | None:
    if not chunk.entities:
        return None
    return [
        MessageEntity(type=e.type, offset=e.offset, length=e.length, url=e.url,
                      language=e.language, custom_emoji_id=e.custom_emoji_id)
        for e in chunk.entities
    ]


def _is(exc: TelegramError, *needles: str) -> bool:
    text = str(exc).lower()
    return any(n in text for n in needles)


# A topic that is gone, or closed: (chat, topic, Telegram's words) -> the topic to send to now
# (recreated or reopened; None: the chat's General). Set by bot.topics.
TopicRecovery = Callable[[int, int, str], Awaitable[int | None]]


def topic_trouble(exc: TelegramError) -> bool:
    """Telegram's words for a send into a topic that is gone or closed."""
    return _is(exc, "thread not found", "topic_closed", "topic_deleted")


class TelegramOut:
    def __init__(self, bot: ExtBot[Any]) -> None:
        self.bot = bot
        self.recover_topic: TopicRecovery | None = None

    async def _in_topic(self, chat_id: int, call: Callable[[int | None], Awaitable[T]]) -> T:
        """`call(topic)` in the current topic (bot.place); a topic that is gone is recreated
        (or reopened) once and the call made again there, so the message is not lost."""
        thread = place.thread()
        try:
            return await call(thread)
        except BadRequest as exc:
            if thread is None or self.recover_topic is None or not topic_trouble(exc):
                raise
            log.warning("event=topic_trouble chat_id=%s thread=%s error=%r", chat_id, thread,
                        str(exc))
            moved = await self.recover_topic(chat_id, thread, str(exc))
            place.move_to(moved)
            return await call(moved)

    async def send(self, chat_id: int, chunk: Chunk, markup: InlineKeyboardMarkup | None = None,
                   *, droppable: bool = False) -> int:
        rl = DROPPABLE if droppable else None
        try:
            msg = await self._in_topic(chat_id, lambda t: self.bot.send_message(
                chat_id, chunk.text, entities=_entities(chunk), reply_markup=markup,
                rate_limit_args=rl, link_preview_options=NO_PREVIEW, message_thread_id=t))
        except BadRequest as exc:
            if chunk.entities and _is(exc, "entit"):
                log.warning("event=entities_rejected chat_id=%s error=%r", chat_id, str(exc))
                msg = await self.bot.send_message(chat_id, chunk.text, reply_markup=markup,
                                                  rate_limit_args=rl,
                                                  link_preview_options=NO_PREVIEW,
                                                  message_thread_id=place.thread())
            elif _is(exc, "too long"):
                last = 0
                for part in split(chunk.text, (), 4000):
                    last = await self.send(chat_id, part, markup, droppable=droppable)
                return last
            else:
                raise
        return msg.message_id

    async def edit(self, chat_id: int, message_id: int, chunk: Chunk,
                   markup: InlineKeyboardMarkup | None = None, *, droppable: bool = False) -> None:
        rl = DROPPABLE if droppable else None
        try:
            await self.bot.edit_message_text(chunk.text, chat_id=chat_id, message_id=message_id,
                                             entities=_entities(chunk), reply_markup=markup,
                                             rate_limit_args=rl, link_preview_options=NO_PREVIEW)
        except BadRequest as exc:
            if _is(exc, "not modified"):
                return
            if _is(exc, "not found", "can't be edited"):
                raise Gone(str(exc)) from None
            if chunk.entities and _is(exc, "entit"):
                log.warning("event=entities_rejected chat_id=%s error=%r", chat_id, str(exc))
                await self.edit(chat_id, message_id, Chunk(chunk.text), markup, droppable=droppable)
                return
            raise

    async def put(self, chat_id: int, message_id: int | None, chunk: Chunk,
                  markup: InlineKeyboardMarkup | None = None) -> int:
        """Show `chunk` in `message_id` if it still exists, else in a new message."""
        if message_id is not None:
            try:
                await self.edit(chat_id, message_id, chunk, markup)
                return message_id
            except Gone:
                pass
        return await self.send(chat_id, chunk, markup)

    async def remove_buttons(self, chat_id: int, message_id: int) -> None:
        try:
            await self.bot.edit_message_reply_markup(chat_id=chat_id, message_id=message_id,
                                                     reply_markup=None)
        except BadRequest as exc:
            if not _is(exc, "not modified", "not found"):
                raise

    async def delete(self, chat_id: int, message_id: int) -> None:
        try:
            await self.bot.delete_message(chat_id, message_id)
        except BadRequest:
            pass

    async def document(self, chat_id: int, filename: str, data: bytes, caption: str = "",
                       markup: InlineKeyboardMarkup | None = None) -> int:
        msg = await self._in_topic(chat_id, lambda t: self.bot.send_document(
            chat_id, document=data, filename=filename, caption=caption or None,
            reply_markup=markup, message_thread_id=t))
        return msg.message_id

    async def photo(self, chat_id: int, data: bytes, caption: str = "",
                    markup: InlineKeyboardMarkup | None = None) -> int:
        msg = await self._in_topic(chat_id, lambda t: self.bot.send_photo(
            chat_id, photo=data, caption=caption or None, reply_markup=markup,
            message_thread_id=t))
        return msg.message_id

    async def typing(self, chat_id: int) -> None:
        """One typing indicator; skipped (never queued) while the chat waits out a flood limit."""
        try:
            await self.bot.send_chat_action(chat_id, ChatAction.TYPING, rate_limit_args=DROPPABLE,
                                            message_thread_id=place.thread())
        except (RetryAfter, NetworkError, BadRequest) as exc:  # a topic gone: the next send says

            log.debug("event=typing_skipped chat_id=%s error=%r", chat_id, type(exc).__name__)


async def attempt(op: Callable[[], Awaitable[T]], what: str,
                  budget: float = DEFAULT_BUDGET) -> T:
    """Run `op` until it succeeds, within `budget` seconds of network errors and flood waits."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    tries = 0
    while True:
        try:
            return await op()
        except Forbidden as exc:
            log.warning("event=telegram_forbidden what=%s error=%r", what, str(exc))
            raise Blocked(str(exc)) from None
        except BadRequest as exc:
            log.warning("event=telegram_refused what=%s error=%r", what, str(exc))
            raise Refused(str(exc)) from None
        except (RetryAfter, NetworkError) as exc:  # NetworkError includes TimedOut and 5xx
            tries += 1
            elapsed = loop.time() - started
            # A flood wait was already waited out by the rate limiter: try again at once.
            delay = retry_delay(tries, elapsed, budget)
            if delay is None:
                log.warning("event=telegram_gave_up what=%s error=%r tries=%d seconds=%.1f",
                            what, str(exc), tries, elapsed)
                raise Unreachable(str(exc) or type(exc).__name__, elapsed) from None
            if isinstance(exc, RetryAfter):
                continue
            log.warning("event=telegram_retry what=%s error=%r delay=%.1f", what, str(exc), delay)
            await asyncio.sleep(delay)


async def reliably(op: Callable[[], Awaitable[T]], what: str,
                   budget: float = DEFAULT_BUDGET) -> T | None:
    """`attempt`, with None for a refusal or an outage past the bound (both logged)."""
    try:
        return await attempt(op, what, budget)
    except (Refused, Blocked, Unreachable):
        return None


async def deliver(out: TelegramOut, chat_id: int, chunk: Chunk, what: str, *, budget: float,
                  message_id: int | None = None, markup: InlineKeyboardMarkup | None = None,
                  filename: str = "message.txt") -> int | None:
    """Show `chunk` (in `message_id` when it still exists), down bot.promise's ladder until
    Telegram takes it: as rendered, then plain, then as a file. The id of the message that
    shows it, or None when even the file was refused or the chat is closed to the bot (logged).
    Raises `Unreachable` past the retry bound: the caller decides what the chat is told."""
    rung: Rung | None = Rung.RICH
    while rung is not None:
        try:
            if rung is Rung.RICH:
                return await attempt(partial(out.put, chat_id, message_id, chunk, markup),
                                     what, budget)
            if rung is Rung.PLAIN:
                last: int | None = None
                for i, part in enumerate(render_plain(chunk.text)):
                    mid = message_id if i == 0 else None
                    last = await attempt(partial(out.put, chat_id, mid, part, markup), what,
                                         budget)
                return last
            return await attempt(partial(out.document, chat_id, filename, chunk.text.encode(),
                                         AS_FILE_CAPTION, markup), what, budget)
        except Refused:
            rung = next_rung(rung)
            if rung is not None:
                log.info("event=telegram_fallback what=%s to=%s", what, rung.value)
        except Blocked:
            return None
    log.error("event=undeliverable what=%s chat_id=%s chars=%d", what, chat_id, len(chunk.text))
    return None
