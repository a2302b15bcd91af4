"""Sending to Telegram: entities with a plain-text fallback, and retries that lose nothing.

`send`/`edit` turn a `render.Chunk` into a PTB call, never with a link preview. When Telegram
rejects the entities, the same text goes out plain; "message is not modified" counts as success;
an edit of a message that is gone raises `Gone` so the caller sends a new one. `reliably`
retries network failures and flood waits with backoff (a durable event must reach the chat), and
gives up only on a refusal that no retry can fix (bot blocked, chat gone), which it logs.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from telegram import InlineKeyboardMarkup, LinkPreviewOptions, MessageEntity
from telegram.constants import ChatAction
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.ext import ExtBot

from bot.ratelimit import DROPPABLE
from bot.render import Chunk, split

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_BACKOFF = 10.0
# Model and tool text can carry any URL: a preview would fetch it (and show what it returns)
# before anyone approved anything, so no message or edit of the bot ever has one.
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


class Gone(Exception):
    """The message to edit no longer exists."""


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


class TelegramOut:
    def __init__(self, bot: ExtBot[Any]) -> None:
        self.bot = bot

    async def send(self, chat_id: int, chunk: Chunk, markup: InlineKeyboardMarkup | None = None,
                   *, droppable: bool = False) -> int:
        rl = DROPPABLE if droppable else None
        try:
            msg = await self.bot.send_message(chat_id, chunk.text, entities=_entities(chunk),
                                              reply_markup=markup, rate_limit_args=rl,
                                              link_preview_options=NO_PREVIEW)
        except BadRequest as exc:
            if chunk.entities and _is(exc, "entit"):
                log.warning("event=entities_rejected chat_id=%s error=%r", chat_id, str(exc))
                msg = await self.bot.send_message(chat_id, chunk.text, reply_markup=markup,
                                                  rate_limit_args=rl,
                                                  link_preview_options=NO_PREVIEW)
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

    async def document(self, chat_id: int, filename: str, data: bytes, caption: str = "") -> None:
        await self.bot.send_document(chat_id, document=data, filename=filename,
                                     caption=caption or None)

    async def typing(self, chat_id: int) -> None:
        """One typing indicator; skipped (never queued) while the chat waits out a flood limit."""
        try:
            await self.bot.send_chat_action(chat_id, ChatAction.TYPING, rate_limit_args=DROPPABLE)
        except (RetryAfter, NetworkError) as exc:
            log.debug("event=typing_skipped chat_id=%s error=%r", chat_id, type(exc).__name__)


async def reliably(op: Callable[[], Awaitable[T]], what: str) -> T | None:
    """Run `op` until it succeeds; None when Telegram refuses it for good (logged)."""
    delay = 0.5
    while True:
        try:
            return await op()
        except (BadRequest, Forbidden) as exc:
            log.warning("event=telegram_refused what=%s error=%r", what, str(exc))
            return None
        except RetryAfter:
            continue  # the rate limiter has already waited; try again
        except NetworkError as exc:  # includes TimedOut and 5xx
            log.warning("event=telegram_retry what=%s error=%r delay=%.1f", what, str(exc), delay)
            await asyncio.sleep(delay)
            delay = min(MAX_BACKOFF, delay * 2)
