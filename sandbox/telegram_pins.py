"""Pinned messages in the sandbox Telegram: ``pinChatMessage``, ``unpinChatMessage`` and
``unpinAllChatMessages``, as the Bot API documents them.

pinChatMessage(chat_id, message_id, disable_notification?, business_connection_id?) adds a
message to the chat's pinned ones and answers True; Telegram then shows a service message
``pinned_message`` (from the bot) in the chat, so one is added here too. A message that is not
there answers 400 "message to pin not found"; a service message cannot be pinned ("message
can't be pinned"). In a group the bot needs to be an administrator with can_pin_messages: the
sandbox's bot is never one, so a group answers 400 "not enough rights to manage pinned messages
in the chat" (private chats are free). unpinChatMessage takes message_id or, without it, unpins
the most recent pinned message "by sending date" (the docs; its id breaks a tie); an id that is
not there answers 400 "message to unpin not found". Unpinning what is not pinned is True.
This module must never change a message's content.
"""

from __future__ import annotations

from typing import Any

from sandbox.telegram_params import Params, send_chat
from sandbox.telegram_state import BotState, Chat, Message, bad

NO_RIGHTS = "not enough rights to manage pinned messages in the chat"


def _chat(bot: BotState, p: Params) -> Chat:
    chat = send_chat(bot, p)
    if chat.type != "private":
        raise bad(NO_RIGHTS)
    return chat


def _message(chat: Chat, p: Params, verb: str) -> Message:
    mid = p.integer("message_id", missing="message identifier is not specified")
    msg = chat.messages.get(mid)  # type: ignore[arg-type]
    if msg is None or msg.deleted:
        raise bad(f"message to {verb} not found")
    return msg


async def pin_chat_message(bot: BotState, p: Params) -> Any:
    chat = _chat(bot, p)
    msg = _message(chat, p, "pin")
    if msg.service is not None:
        raise bad("message can't be pinned")
    if not msg.pinned:
        msg.pinned = True
        bot.add_message(chat, sender=bot.me(), from_bot=True, thread_id=msg.thread_id,
                        service={"pinned_message": bot.message_obj(msg, nested=True)})
    return True


async def unpin_chat_message(bot: BotState, p: Params) -> Any:
    chat = _chat(bot, p)
    if p.raw("message_id") is not None:
        _message(chat, p, "unpin").pinned = False
        return True
    pinned = [m for m in chat.messages.values() if m.pinned and not m.deleted]
    if pinned:
        max(pinned, key=lambda m: (m.date, m.message_id)).pinned = False
    return True


async def unpin_all_chat_messages(bot: BotState, p: Params) -> Any:
    chat = _chat(bot, p)
    for m in chat.messages.values():
        m.pinned = False
    return True


PIN_METHODS = {
    "pinChatMessage": pin_chat_message,
    "unpinChatMessage": unpin_chat_message,
    "unpinAllChatMessages": unpin_all_chat_messages,
}
