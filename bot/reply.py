"""How a handler answers in the chat: one message (split at Telegram's limit), sent reliably.

Shared by the command, message and button handlers so that every reply is made the same way.
Never raises for Telegram's trouble: bot.telegram_out.reliably retries and logs.
"""
from __future__ import annotations

from functools import partial

from telegram import InlineKeyboardMarkup, Update
from telegramify_markdown import MessageEntity, utf16_len

from bot import render
from bot.render import Chunk
from bot.telegram_out import TelegramOut, reliably

NO_SESSION = "No active session: create one with /new NAME, or pick one with /switch."


async def say(out: TelegramOut, chat_id: int, text: str,
              markup: InlineKeyboardMarkup | None = None, *, monospace: bool = False) -> None:
    ents = (MessageEntity("pre", 0, utf16_len(text)),) if monospace and text else ()
    for chunk in render.split(text, ents) or [Chunk("(empty)")]:
        await reliably(partial(out.send, chat_id, chunk, markup), "reply")


def chat_of(update: Update) -> int:
    assert update.effective_chat is not None
    return update.effective_chat.id
