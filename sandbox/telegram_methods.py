"""The Bot API methods of the sandbox Telegram, with Telegram's rules and error descriptions.

Each method takes the bot's :class:`BotState` and the request's :class:`Params` and returns the
``result`` or raises :class:`ApiError`. ``METHODS`` maps lower-cased names (Telegram's method
names are case-insensitive) to (canonical name, function); topics and drafts are in
:mod:`sandbox.telegram_topics` and :mod:`sandbox.telegram_drafts`. Every send method takes
``message_thread_id``; sendMessage and editMessageText record ``link_preview_options`` (and the
legacy ``disable_web_page_preview``) on the message.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sandbox.telegram_drafts import send_message_draft
from sandbox.telegram_params import Params, Upload, find_chat, send_chat
from sandbox.telegram_pins import PIN_METHODS
from sandbox.telegram_rules import (
    MAX_CAPTION,
    MAX_TEXT,
    FormatError,
    check_inline_keyboard,
    format_text,
)
from sandbox.telegram_state import ApiError, BotState, Chat, Message, bad, now
from sandbox.telegram_topics import TOPIC_METHODS, send_thread

NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the "
    "same as a current content and reply markup of the message"
)
CHAT_ACTIONS = {
    "typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice",
    "upload_document", "choose_sticker", "find_location", "record_video_note", "upload_video_note",
}  # fmt: skip
UPDATE_KINDS = {
    "message", "edited_message", "channel_post", "edited_channel_post", "business_connection",
    "business_message", "edited_business_message", "deleted_business_messages",
    "message_reaction", "message_reaction_count", "inline_query", "chosen_inline_result",
    "callback_query", "shipping_query", "pre_checkout_query", "purchased_paid_media", "poll",
    "poll_answer", "my_chat_member", "chat_member", "chat_join_request", "chat_boost",
    "removed_chat_boost", "stopped_message_generation",
}  # fmt: skip


def _text(p: Params, *, caption: bool = False) -> tuple[str, list[dict[str, Any]]]:
    key, ents = ("caption", "caption_entities") if caption else ("text", "entities")
    raw_entities = p.json(ents, "entities")
    try:
        return format_text(
            p.raw(key),
            p.string("parse_mode"),
            raw_entities,
            limit=MAX_CAPTION if caption else MAX_TEXT,
            what="caption" if caption else "text",
        )
    except FormatError as exc:
        raise bad(str(exc)) from None


def _markup(p: Params) -> dict[str, Any] | None:
    try:
        return check_inline_keyboard(p.json("reply_markup", "reply keyboard markup"))
    except FormatError as exc:
        raise bad(str(exc)) from None


def _reply_to(chat: Chat, p: Params) -> int | None:
    target = p.integer("reply_to_message_id")
    allow = p.flag("allow_sending_without_reply")
    params = p.json("reply_parameters", "reply parameters")
    if isinstance(params, dict) and params.get("message_id") is not None:
        target = int(params["message_id"])
        allow = allow or bool(params.get("allow_sending_without_reply"))
    if target is None:
        return None
    if target not in chat.messages or chat.messages[target].deleted:
        if allow:
            return None
        raise bad("message to be replied not found")
    return target


def _link_preview(p: Params) -> dict[str, Any] | None:
    """What the bot asked for about the link preview (None: nothing, so Telegram shows one)."""
    options = p.json("link_preview_options", "link preview options")
    legacy = p.raw("disable_web_page_preview")
    if options is None and legacy is None:
        return None
    if options is not None and not isinstance(options, dict):
        raise bad("can't parse link preview options JSON object")
    out = dict(options or {})
    out["is_disabled"] = bool(out.get("is_disabled")) or (
        legacy is not None and p.flag("disable_web_page_preview")
    )
    return out


def _edit_target(bot: BotState, p: Params, verb: str = "edit") -> Message:
    if p.raw("inline_message_id") is not None:
        raise bad("MESSAGE_ID_INVALID")
    chat = find_chat(bot, p)
    mid = p.integer("message_id", missing="message identifier is not specified")
    msg = chat.messages.get(mid)  # type: ignore[arg-type]
    if msg is None or msg.deleted:
        raise bad(f"message to {verb} not found")
    return msg


def _edited(bot: BotState, msg: Message) -> dict[str, Any]:
    msg.edits += 1
    msg.edit_date = now()
    return bot.message_obj(msg)


# ---------------------------------------------------------------------------------- methods


async def get_me(bot: BotState, p: Params) -> Any:
    return {
        **bot.me(),
        "can_join_groups": True,
        "can_read_all_group_messages": False,
        "supports_inline_queries": False,
        "can_connect_to_business": False,
        "has_main_web_app": False,
        "has_topics_enabled": bot.has_topics_enabled,
        "allows_users_to_create_topics": bot.allows_users_to_create_topics,
    }


async def get_updates(bot: BotState, p: Params) -> Any:
    offset = p.integer("offset") or 0
    limit = min(max(p.integer("limit") or 100, 1), 100)
    timeout = max(p.number("timeout") or 0.0, 0.0)
    allowed = p.json("allowed_updates", "allowed_updates")
    if allowed is not None:
        if not isinstance(allowed, list):
            raise bad("can't parse allowed_updates JSON object")
        bot.allowed_updates = {a for a in allowed if a in UPDATE_KINDS} or None
    if offset > 0:
        bot.updates = [u for u in bot.updates if u["update_id"] >= offset]
    elif offset < 0:
        bot.updates = bot.updates[offset:]
    bot.updates = [u for u in bot.updates if bot.allowed(u)]
    bot.poll_seq += 1
    me, epoch = bot.poll_seq, bot.epoch
    bot.current_poller = me
    bot.notify()  # an older waiting getUpdates now ends with 409
    deadline = time.monotonic() + timeout
    while True:
        if bot.epoch != epoch:
            return []
        if bot.current_poller != me:
            raise ApiError(409, "Conflict: terminated by other getUpdates request")
        ready = bot.updates[:limit]
        left = deadline - time.monotonic()
        if ready or left <= 0:
            return ready
        await bot.wait_change(left)


async def delete_webhook(bot: BotState, p: Params) -> Any:
    if p.flag("drop_pending_updates"):
        bot.updates.clear()
    return True


async def get_webhook_info(bot: BotState, p: Params) -> Any:
    return {"url": "", "has_custom_certificate": False, "pending_update_count": len(bot.updates)}


def _commands_key(p: Params) -> tuple[str, str]:
    scope = p.json("scope", "scope") or {"type": "default"}
    return json.dumps(scope, sort_keys=True), p.string("language_code") or ""


async def set_my_commands(bot: BotState, p: Params) -> Any:
    commands = p.json("commands", "commands")
    if not isinstance(commands, list):
        raise bad("can't parse commands JSON object")
    if len(commands) > 100:
        raise bad("BOT_COMMANDS_TOO_MUCH")
    stored = []
    for c in commands:
        if not isinstance(c, dict) or not re.fullmatch(
            r"[a-z0-9_]{1,32}", str(c.get("command", ""))
        ):
            raise bad("BOT_COMMAND_INVALID")
        desc = str(c.get("description", ""))
        if not 1 <= len(desc) <= 256:
            raise bad("BOT_COMMAND_DESCRIPTION_INVALID")
        stored.append({"command": c["command"], "description": desc})
    bot.commands[_commands_key(p)] = stored
    return True


async def get_my_commands(bot: BotState, p: Params) -> Any:
    return bot.commands.get(_commands_key(p), [])


async def delete_my_commands(bot: BotState, p: Params) -> Any:
    bot.commands.pop(_commands_key(p), None)
    return True


async def send_message(bot: BotState, p: Params) -> Any:
    chat = send_chat(bot, p)
    thread = send_thread(chat, p)
    text, entities = _text(p)
    markup = _markup(p)
    reply_to = _reply_to(chat, p)
    msg = bot.add_message(
        chat,
        sender=bot.me(),
        from_bot=True,
        text=text,
        entities=entities,
        reply_markup=markup,
        reply_to=reply_to,
        thread_id=thread,
        link_preview=_link_preview(p),
    )
    return bot.message_obj(msg)


async def edit_message_text(bot: BotState, p: Params) -> Any:
    msg = _edit_target(bot, p)
    if not msg.from_bot:
        raise bad("message can't be edited")
    if msg.text is None:
        raise bad("there is no text in the message to edit")
    text, entities = _text(p)
    markup = _markup(p)  # absent: the inline keyboard goes, as on Telegram
    if text == msg.text and entities == msg.entities and markup == msg.reply_markup:
        raise bad(NOT_MODIFIED)
    msg.text, msg.entities, msg.reply_markup = text, entities, markup
    msg.link_preview = _link_preview(p)
    return _edited(bot, msg)


async def edit_message_caption(bot: BotState, p: Params) -> Any:
    msg = _edit_target(bot, p)
    if not msg.from_bot:
        raise bad("message can't be edited")
    if msg.text is not None:
        raise bad("there is no caption in the message to edit")
    caption, entities = _text(p, caption=True)
    markup = _markup(p)
    if (
        caption == (msg.caption or "")
        and entities == msg.caption_entities
        and markup == msg.reply_markup
    ):
        raise bad(NOT_MODIFIED)
    msg.caption, msg.caption_entities, msg.reply_markup = caption or None, entities, markup
    return _edited(bot, msg)


async def edit_message_reply_markup(bot: BotState, p: Params) -> Any:
    msg = _edit_target(bot, p)
    if not msg.from_bot:
        raise bad("message can't be edited")
    markup = _markup(p)
    if markup == msg.reply_markup:
        raise bad(NOT_MODIFIED)
    msg.reply_markup = markup
    return _edited(bot, msg)


async def delete_message(bot: BotState, p: Params) -> Any:
    msg = _edit_target(bot, p, verb="delete")
    msg.deleted = True
    return True


async def leave_chat(bot: BotState, p: Params) -> Any:
    """The bot leaves a group; Telegram then sends it a ``my_chat_member`` update (left)."""
    chat = send_chat(bot, p)
    if chat.type == "private":
        raise bad("chat member status can't be changed in private chats")
    chat.left = True
    bot.member_update(chat, bot.me(), "member", "left")
    return True


async def send_chat_action(bot: BotState, p: Params) -> Any:
    chat = send_chat(bot, p)
    send_thread(chat, p)
    action = p.string("action")
    if action not in CHAT_ACTIONS:
        raise bad("wrong parameter action in request")
    chat.last_action = (action, time.time())
    return True


async def answer_callback_query(bot: BotState, p: Params) -> Any:
    query = bot.callbacks.get(p.string("callback_query_id") or "")
    if query is None or query["answered"]:
        raise bad("query is too old and response timeout expired or query ID is invalid")
    text = p.string("text")
    if text is not None and len(text) > 200:
        raise bad("MESSAGE_TOO_LONG")
    query["answered"] = True
    query["answer"] = {
        "text": text,
        "show_alert": p.flag("show_alert"),
        "url": p.string("url"),
        "time": time.time(),
    }
    return True


async def _send_file(bot: BotState, p: Params, key: str) -> Any:
    chat = send_chat(bot, p)
    thread = send_thread(chat, p)
    value = p.raw(key)
    if isinstance(value, str) and value.startswith("attach://"):
        value = p.raw(value[len("attach://") :])
    kind = "photos" if key == "photo" else "documents"
    if isinstance(value, Upload):
        if not value.data:
            raise bad("file must be non-empty")
        if len(value.data) > 50 * 1024 * 1024:
            raise ApiError(413, "Request Entity Too Large")
        name = (value.filename or "document") if key == "document" else None
        mime = value.content_type if key == "document" else None
        stored = bot.store_file(value.data, kind, name, mime)
        w, h = stored.width, stored.height
        # sendPhoto: "width and height must not exceed 10000 in total; ratio at most 20"
        if key == "photo" and w and h and (w + h > 10000 or max(w, h) > 20 * min(w, h)):
            raise bad("PHOTO_INVALID_DIMENSIONS")
        file_id = stored.file_id
    elif isinstance(value, str) and value in bot.files:
        file_id = value
    elif value is None:
        raise bad(f"there is no {key} in the request")
    else:
        raise bad("wrong file identifier/HTTP URL specified")
    caption, entities = _text(p, caption=True)
    markup = _markup(p)
    reply_to = _reply_to(chat, p)
    fields: dict[str, Any] = {key: file_id}
    msg = bot.add_message(
        chat,
        sender=bot.me(),
        from_bot=True,
        caption=caption or None,
        caption_entities=entities,
        reply_markup=markup,
        reply_to=reply_to,
        thread_id=thread,
        **fields,
    )
    return bot.message_obj(msg)


GET_FILE_LIMIT = 20 * 1024 * 1024  # a bot can download files up to 20 MB


async def send_document(bot: BotState, p: Params) -> Any:
    return await _send_file(bot, p, "document")


async def send_photo(bot: BotState, p: Params) -> Any:
    return await _send_file(bot, p, "photo")


async def get_file(bot: BotState, p: Params) -> Any:
    f = bot.files.get(p.string("file_id") or "")
    if f is None:
        raise bad("invalid file_id")
    if len(f.data) > GET_FILE_LIMIT:
        raise bad("file is too big")
    return {
        "file_id": f.file_id,
        "file_unique_id": f.file_unique_id,
        "file_size": len(f.data),
        "file_path": f.file_path,
    }


Method = Callable[[BotState, Params], Awaitable[Any]]
METHODS: dict[str, tuple[str, Method]] = {
    name.lower(): (name, fn)
    for name, fn in {
        "getMe": get_me,
        "getUpdates": get_updates,
        "deleteWebhook": delete_webhook,
        "getWebhookInfo": get_webhook_info,
        "setMyCommands": set_my_commands,
        "getMyCommands": get_my_commands,
        "deleteMyCommands": delete_my_commands,
        "sendMessage": send_message,
        "editMessageText": edit_message_text,
        "editMessageCaption": edit_message_caption,
        "editMessageReplyMarkup": edit_message_reply_markup,
        "deleteMessage": delete_message,
        "sendChatAction": send_chat_action,
        "leaveChat": leave_chat,
        "answerCallbackQuery": answer_callback_query,
        "sendDocument": send_document,
        "sendPhoto": send_photo,
        "getFile": get_file,
        "sendMessageDraft": send_message_draft,
        **TOPIC_METHODS,
        **PIN_METHODS,
    }.items()
}
