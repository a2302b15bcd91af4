"""What the test's users do in the sandbox Telegram (send a text, a file or a photo, tap a button)
and what they see (:func:`chat_view`): the ``/_sandbox/...`` side of :mod:`sandbox.telegram_server`.

Every action checks its input like a Telegram client would and raises :class:`ApiError` with one
sentence for the test; it must never bypass Telegram's own rules for what a user can send.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
import secrets
import time
from typing import Any

from sandbox.telegram_rules import MAX_CAPTION, MAX_TEXT, auto_entities, u16len
from sandbox.telegram_state import ApiError, BotState, Chat, StoredFile

# ---------------------------------------------------------------------------- what users do


def user_chat(bot: BotState, body: dict[str, Any]) -> tuple[dict[str, Any], Chat]:
    user_id = required_int(body, "user_id")
    chat_id = int_field(body, "chat_id")
    known = bot.chats.get(chat_id) if chat_id is not None else None
    # like Telegram ids: a negative chat_id is a group (of the type it already has)
    default_type = (
        known.type if known else ("group" if chat_id is not None and chat_id < 0 else "private")
    )
    chat_type = str(body.get("chat_type") or default_type)
    if chat_type not in ("private", "group", "supergroup"):
        raise ApiError(400, f"chat_type must be private, group or supergroup, not {chat_type!r}")
    if chat_id is None:
        if chat_type != "private":
            raise ApiError(400, "a group message needs a chat_id (a negative number)")
        chat_id = user_id
    if chat_type == "private" and chat_id != user_id:
        raise ApiError(400, "in a private chat, chat_id is the user_id")
    if chat_type != "private" and chat_id >= 0:
        raise ApiError(400, "a group's chat_id is negative")
    if known is not None and known.type != chat_type:
        raise ApiError(400, f"chat {chat_id} is a {known.type}")
    if known is not None and known.left and not body.get("adds_bot"):
        raise ApiError(400, f"the bot left chat {chat_id}: add it again (add_bot) first")
    user = bot.user(user_id, body.get("first_name"), body.get("username"))
    chat = bot.chat_for(chat_id, chat_type=chat_type if known is None else known.type)
    assert chat is not None
    if chat.type == "private":
        chat.first_name, chat.username = user["first_name"], user.get("username")
    elif body.get("title"):
        chat.title = str(body["title"])
    if body.get("is_forum"):
        if chat.type != "supergroup":
            raise ApiError(400, "only a supergroup can be a forum")
        chat.is_forum = True
    return user, chat


def _user_message(bot: BotState, body: dict[str, Any], **fields: Any) -> dict[str, Any]:
    user, chat = user_chat(bot, body)
    reply_to = int_field(body, "reply_to_message_id")
    if reply_to is not None and reply_to not in chat.messages:
        raise ApiError(400, f"no message {reply_to} in chat {chat.id} to reply to")
    thread = int_field(body, "message_thread_id")
    if thread is not None:
        topic = chat.topics.get(thread)
        if topic is None or topic.deleted:
            raise ApiError(400, f"no topic {thread} in chat {chat.id}")
        if topic.closed and chat.type != "private":  # the user owns a private chat's topics
            raise ApiError(400, f"topic {thread} is closed: reopen it first")
    msg = bot.add_message(
        chat, sender=user, from_bot=False, reply_to=reply_to, thread_id=thread, **fields
    )
    created = time.time()  # when Telegram has the update: where a benchmark's turn starts
    update = bot.push_update("message", bot.message_obj(msg))
    return {"update": update, "message": bot.message_obj(msg), "created": created}


def add_bot(bot: BotState, body: dict[str, Any]) -> dict[str, Any]:
    """The user adds the bot to a group: a ``my_chat_member`` update (left -> member)."""
    user, chat = user_chat(bot, {**body, "adds_bot": True})
    if chat.type == "private":
        raise ApiError(400, "the bot can only be added to a group or supergroup")
    was = "left" if chat.left or not chat.messages else "member"
    chat.left = False
    return {"update": bot.member_update(chat, user, was, "member")}


def membership(bot: BotState, body: dict[str, Any]) -> dict[str, Any]:
    """Whether the bot is in the chat ``chat_id`` (a group it left is not; unknown: not)."""
    chat = bot.chats.get(required_int(body, "chat_id"))
    return {"member": chat is not None and not chat.left}


def send(bot: BotState, body: dict[str, Any]) -> dict[str, Any]:
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ApiError(400, "text must be a non-empty string")
    if u16len(text) > MAX_TEXT:
        raise ApiError(400, f"a user cannot send more than {MAX_TEXT} characters")
    return _user_message(bot, body, text=text, entities=auto_entities(text))


def _user_file(bot: BotState, body: dict[str, Any], kind: str) -> tuple[StoredFile, str | None]:
    try:
        data = base64.b64decode(str(body.get("content_b64", "")), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ApiError(400, f"content_b64 is not base64: {exc}") from exc
    if not data:
        raise ApiError(400, "content_b64 must not be empty")
    caption = body.get("caption") or None
    if caption is not None and u16len(str(caption)) > MAX_CAPTION:
        raise ApiError(400, f"a caption holds at most {MAX_CAPTION} characters")
    name = body.get("filename")
    if kind == "documents" and not name:
        raise ApiError(400, "filename is required")
    mime = body.get("mime_type") or (mimetypes.guess_type(name)[0] if name else None)
    if kind == "photos":
        mime = None
    return bot.store_file(
        data, kind, name, mime or ("application/octet-stream" if name else None)
    ), caption


def send_document(bot: BotState, body: dict[str, Any]) -> dict[str, Any]:
    f, caption = _user_file(bot, body, "documents")
    ents = auto_entities(caption) if caption else []
    return _user_message(bot, body, document=f.file_id, caption=caption, caption_entities=ents)


def send_photo(bot: BotState, body: dict[str, Any]) -> dict[str, Any]:
    f, caption = _user_file(bot, body, "photos")
    ents = auto_entities(caption) if caption else []
    return _user_message(bot, body, photo=f.file_id, caption=caption, caption_entities=ents)


MAX_ALBUM = 10  # Telegram: an album holds 2 to 10 photos or videos


def send_album(bot: BotState, body: dict[str, Any]) -> dict[str, Any]:
    """The user sends an album: ``photos`` (2 to 10 of ``{"content_b64", "caption"?}``) arrive
    as one message and one update each, with one ``media_group_id``, as Telegram sends them."""
    photos = body.get("photos")
    if not isinstance(photos, list) or not 2 <= len(photos) <= MAX_ALBUM:
        raise ApiError(400, f"an album holds 2 to {MAX_ALBUM} photos")
    group = str(secrets.randbits(63))
    sent = []
    for part in photos:
        if not isinstance(part, dict):
            raise ApiError(400, "each photo of an album is an object with content_b64")
        f, caption = _user_file(bot, {**body, **part}, "photos")
        ents = auto_entities(caption) if caption else []
        sent.append(_user_message(bot, body, photo=f.file_id, caption=caption,
                                  caption_entities=ents, media_group_id=group))
    return {"media_group_id": group, "messages": [s["message"] for s in sent],
            "updates": [s["update"] for s in sent]}


# What a Telegram client sends for each kind of message that is neither text nor a file.
OTHER_KINDS: dict[str, dict[str, Any]] = {
    "voice": {"file_id": "voice-1", "file_unique_id": "v1", "duration": 2,
              "mime_type": "audio/ogg"},
    "audio": {"file_id": "audio-1", "file_unique_id": "a1", "duration": 3},
    "video": {"file_id": "video-1", "file_unique_id": "vd1", "width": 64, "height": 64,
              "duration": 1},
    "video_note": {"file_id": "vnote-1", "file_unique_id": "vn1", "length": 64, "duration": 1},
    "sticker": {"file_id": "sticker-1", "file_unique_id": "s1", "type": "regular", "width": 512,
                "height": 512, "is_animated": False, "is_video": False, "emoji": "👍"},
    "location": {"latitude": 52.52, "longitude": 13.405},
    "contact": {"phone_number": "+10000000000", "first_name": "Ada"},
    "poll": {"id": "poll-1", "question": "Tea?", "options": [
        {"text": "yes", "voter_count": 0}, {"text": "no", "voter_count": 0}],
        "total_voter_count": 0, "is_closed": False, "is_anonymous": True, "type": "regular",
        "allows_multiple_answers": False},
}  # fmt: skip


def send_other(bot: BotState, body: dict[str, Any]) -> dict[str, Any]:
    """The user sends a voice note, sticker, location, ... (``kind``, one of OTHER_KINDS)."""
    kind = str(body.get("kind") or "")
    if kind not in OTHER_KINDS:
        raise ApiError(400, f"kind must be one of {sorted(OTHER_KINDS)}, not {kind!r}")
    return _user_message(bot, body, service={kind: dict(OTHER_KINDS[kind])})


def edit(bot: BotState, body: dict[str, Any]) -> dict[str, Any]:
    """The user edits the text of one of their own messages: an ``edited_message`` update."""
    user_id = required_int(body, "user_id")
    chat_id = int_field(body, "chat_id")
    chat = bot.chats.get(user_id if chat_id is None else chat_id)
    message_id = required_int(body, "message_id")
    msg = chat.messages.get(message_id) if chat else None
    if chat is None or msg is None or msg.deleted or msg.from_bot or msg.sender["id"] != user_id:
        raise ApiError(400, f"user {user_id} has no message {message_id} to edit there")
    text = body.get("text")
    if msg.text is None or not isinstance(text, str) or not text.strip():
        raise ApiError(400, "only a text message can be edited, to a non-empty text")
    if u16len(text) > MAX_TEXT:
        raise ApiError(400, f"a user cannot send more than {MAX_TEXT} characters")
    msg.text, msg.entities = text, auto_entities(text)
    msg.edits += 1
    msg.edit_date = int(time.time())
    update = bot.push_update("edited_message", bot.message_obj(msg))
    return {"update": update, "message": bot.message_obj(msg)}


def tap(bot: BotState, body: dict[str, Any]) -> dict[str, Any]:
    user_id = required_int(body, "user_id")
    chat_id = int_field(body, "chat_id")
    chat_id = user_id if chat_id is None else chat_id
    message_id = required_int(body, "message_id")
    data = body.get("data")
    chat = bot.chats.get(chat_id)
    msg = chat.messages.get(message_id) if chat else None
    if msg is None or msg.deleted:
        raise ApiError(400, f"no message {message_id} in chat {chat_id}")
    buttons = [b for row in (msg.reply_markup or {}).get("inline_keyboard", []) for b in row]
    if not any(b.get("callback_data") == data for b in buttons):
        shown = [(b.get("text"), b.get("callback_data")) for b in buttons]
        raise ApiError(
            400, f"message {message_id} has no button with data {data!r}; buttons: {shown}"
        )
    query_id = str(secrets.randbits(62))
    query = {
        "id": query_id,
        "from": bot.user(user_id),
        "message": bot.message_obj(msg),
        "chat_instance": str(abs(hash((bot.id, chat_id))) % 10**18),
        "data": data,
    }
    bot.callbacks[query_id] = {
        "id": query_id, "user_id": user_id, "chat_id": chat_id, "message_id": message_id,
        "data": data, "answered": False, "answer": None, "time": time.time(),
    }  # fmt: skip
    update = bot.push_update("callback_query", query)
    return {"update": update, "callback_query_id": query_id}


# ---------------------------------------------------------------------------- what users see


def chat_view(
    bot: BotState,
    chat_id: int,
    *,
    include_deleted: bool = False,
    content: bool = True,
    thread: int | None = None,
) -> list[dict[str, Any]]:
    """``thread``: only that topic's messages (0: those outside every topic)."""
    chat = bot.chats.get(chat_id)
    if chat is None:
        return []
    view = []
    for m in chat.messages.values():
        if m.deleted and not include_deleted:
            continue
        if thread is not None and (m.thread_id or 0) != thread:
            continue
        view.append(
            {
                "message_id": m.message_id,
                "date": m.date,
                "from_bot": m.from_bot,
                "from_id": m.sender["id"],
                "text": m.text,
                "entities": m.entities,
                "caption": m.caption,
                "caption_entities": m.caption_entities,
                "reply_markup": m.reply_markup,
                "document": _file_view(bot, m.document, content) if m.document else None,
                "photo": _file_view(bot, m.photo, content) if m.photo else None,
                "voice": _file_view(bot, m.voice, content) if m.voice else None,
                "audio": _file_view(bot, m.audio, content) if m.audio else None,
                "reply_to_message_id": m.reply_to,
                "edits": m.edits,
                "deleted": m.deleted,
                "message_thread_id": m.thread_id,
                "service": m.service,
                "link_preview": m.link_preview,
                "media_group_id": m.media_group_id,
                "pinned": m.pinned,
            }
        )
    return view


def _file_view(bot: BotState, file_id: str, content: bool) -> dict[str, Any]:
    f = bot.files[file_id]
    o: dict[str, Any] = {
        "file_id": f.file_id,
        "file_name": f.file_name,
        "mime_type": f.mime_type,
        "size": len(f.data),
    }
    if f.width:
        o.update(width=f.width, height=f.height)
    if content:
        o["content_b64"] = base64.b64encode(f.data).decode()
    return o


def required_int(body: dict[str, Any], key: str) -> int:
    value = int_field(body, key)
    if value is None:
        raise ApiError(400, f"{key} is required")
    return value


def int_field(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ApiError(400, f"{key} must be an integer, not {value!r}") from None


def enabled_previews(bot: BotState, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The bot's messages (in one chat, or all) that show a link preview: a URL in the text (or
    an explicit ``link_preview_options.url``) and no ``is_disabled`` / disable_web_page_preview."""
    chat_id = int_field(body, "chat_id")
    found = []
    for chat in bot.chats.values():
        if chat_id is not None and chat.id != chat_id:
            continue
        for m in chat.messages.values():
            options = m.link_preview or {}
            if not m.from_bot or m.text is None or options.get("is_disabled"):
                continue
            links = [e for e in m.entities if e["type"] in ("url", "text_link")]
            if (
                options.get("url")
                or links
                or any(e["type"] == "url" for e in auto_entities(m.text))
            ):
                found.append({
                    "chat_id": chat.id, "message_id": m.message_id, "text": m.text,
                    "link_preview_options": m.link_preview,
                })  # fmt: skip
    return found
