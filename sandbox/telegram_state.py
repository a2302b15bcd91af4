"""The sandbox Telegram's world: bots, users, chats, messages, updates and files, plus what the
test's users do in it (send, upload, tap) and what they see (:meth:`BotState.chat_view`).

The Bot API methods acting on it are in :mod:`sandbox.telegram_methods`; HTTP is in
:mod:`sandbox.telegram_server`. Everything here runs on one event loop, so there are no locks.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import itertools
import json
import mimetypes
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from sandbox.telegram_rules import MAX_CAPTION, MAX_TEXT, auto_entities, u16len

DEFAULT_TOKEN = "123456:SANDBOX-TOKEN"
DEFAULT_ALLOWED = {"message", "edited_message", "callback_query", "channel_post", "inline_query"}


class ApiError(Exception):
    """A Bot API error answer: HTTP status = error_code, Telegram's description."""

    def __init__(self, code: int, description: str, parameters: dict[str, Any] | None = None):
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters


def bad(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")


def now() -> int:
    return int(time.time())


@dataclass
class StoredFile:
    file_id: str
    file_unique_id: str
    data: bytes
    file_path: str
    file_name: str | None = None
    mime_type: str | None = None
    width: int = 0
    height: int = 0


@dataclass
class Message:
    message_id: int
    chat_id: int
    sender: dict[str, Any]
    from_bot: bool
    date: int = field(default_factory=now)
    text: str | None = None
    entities: list[dict[str, Any]] = field(default_factory=list)
    caption: str | None = None
    caption_entities: list[dict[str, Any]] = field(default_factory=list)
    reply_markup: dict[str, Any] | None = None
    document: str | None = None  # file_id
    photo: str | None = None  # file_id
    reply_to: int | None = None
    edits: int = 0
    edit_date: int | None = None
    deleted: bool = False


@dataclass
class Chat:
    id: int
    type: str
    title: str | None = None
    first_name: str | None = None
    username: str | None = None
    messages: dict[int, Message] = field(default_factory=dict)
    next_message_id: int = 1
    last_action: tuple[str, float] | None = None

    def obj(self) -> dict[str, Any]:
        o: dict[str, Any] = {"id": self.id, "type": self.type}
        if self.type == "private":
            o["first_name"] = self.first_name or f"User {self.id}"
            if self.username:
                o["username"] = self.username
        else:
            o["title"] = self.title or f"Group {self.id}"
        return o


class BotState:
    """One bot (one token) and everything it can see."""

    _ids = itertools.count(1)

    def __init__(self, token: str, username: str) -> None:
        self.token = token
        head = token.split(":", 1)[0]
        self.id = int(head) if head.isdigit() else 100000 + next(self._ids)
        self.username = username
        self.first_name = "Sandbox Bot"
        self.next_update_id = 1  # never reset: a poller's offset stays meaningful
        self.epoch = 0
        self.poll_seq = 0
        self._wake = asyncio.Event()
        self.reset()

    def reset(self) -> None:
        self.chats: dict[int, Chat] = {}
        self.users: dict[int, dict[str, Any]] = {}
        self.blocked: set[int] = set()
        self.files: dict[str, StoredFile] = {}
        self.files_by_path: dict[str, StoredFile] = {}
        self.updates: list[dict[str, Any]] = []
        self.allowed_updates: set[str] | None = None
        self.commands: dict[tuple[str, str], list[dict[str, str]]] = {}
        self.callbacks: dict[str, dict[str, Any]] = {}
        self.current_poller: int | None = None
        self.epoch += 1
        self.notify()

    # ------------------------------------------------------------------------ plumbing

    def notify(self) -> None:
        """Wake every waiting getUpdates."""
        self._wake.set()
        self._wake = asyncio.Event()

    async def wait_change(self, timeout: float) -> None:
        event = self._wake
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass

    def me(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "is_bot": True,
            "first_name": self.first_name,
            "username": self.username,
        }

    def user(
        self, user_id: int, first_name: str | None = None, username: str | None = None
    ) -> dict[str, Any]:
        u = self.users.setdefault(
            user_id,
            {
                "id": user_id,
                "is_bot": False,
                "first_name": f"User {user_id}",
                "language_code": "en",
            },
        )
        if first_name:
            u["first_name"] = first_name
        if username:
            u["username"] = username
        return u

    def chat_for(
        self, chat_id: int, *, chat_type: str = "private", create: bool = True
    ) -> Chat | None:
        chat = self.chats.get(chat_id)
        if chat is None and create:
            chat = Chat(id=chat_id, type=chat_type)
            if chat_type == "private":
                u = self.user(chat_id)
                chat.first_name, chat.username = u["first_name"], u.get("username")
            self.chats[chat_id] = chat
        return chat

    def add_message(self, chat: Chat, **fields: Any) -> Message:
        msg = Message(message_id=chat.next_message_id, chat_id=chat.id, **fields)
        chat.next_message_id += 1
        chat.messages[msg.message_id] = msg
        return msg

    def store_file(
        self, data: bytes, kind: str, file_name: str | None, mime_type: str | None
    ) -> StoredFile:
        n = len(self.files) + 1
        ext = ""
        if file_name and "." in file_name:
            ext = "." + file_name.rsplit(".", 1)[1][:10]
        elif kind == "photos":
            ext = ".jpg"
        prefix = "AgAC" if kind == "photos" else "BQAC"
        f = StoredFile(
            file_id=f"{prefix}{secrets.token_urlsafe(24)}",
            file_unique_id=f"AQAD{secrets.token_urlsafe(8)}",
            data=data,
            file_path=f"{kind}/file_{n}{ext}",
            file_name=file_name,
            mime_type=mime_type,
        )
        if kind == "photos":
            f.width, f.height = image_size(data)
        self.files[f.file_id] = f
        self.files_by_path[f.file_path] = f
        return f

    def push_update(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        update = {"update_id": self.next_update_id, kind: obj}
        self.next_update_id += 1
        if self.allowed(update):
            self.updates.append(update)
            self.notify()
        return update

    def allowed(self, update: dict[str, Any]) -> bool:
        kinds = self.allowed_updates or DEFAULT_ALLOWED
        return any(k in kinds for k in update if k != "update_id")

    # ------------------------------------------------------------------------ Telegram objects

    def file_obj(self, file_id: str, *, photo: bool = False) -> dict[str, Any]:
        f = self.files[file_id]
        o: dict[str, Any] = {
            "file_id": f.file_id,
            "file_unique_id": f.file_unique_id,
            "file_size": len(f.data),
        }
        if photo:
            o.update(width=f.width, height=f.height)
        else:
            if f.file_name:
                o["file_name"] = f.file_name
            if f.mime_type:
                o["mime_type"] = f.mime_type
        return o

    def message_obj(self, msg: Message, *, nested: bool = False) -> dict[str, Any]:
        chat = self.chats[msg.chat_id]
        o: dict[str, Any] = {
            "message_id": msg.message_id,
            "from": msg.sender,
            "date": msg.date,
            "chat": chat.obj(),
        }
        if msg.text is not None:
            o["text"] = msg.text
            if msg.entities:
                o["entities"] = msg.entities
        if msg.caption:
            o["caption"] = msg.caption
            if msg.caption_entities:
                o["caption_entities"] = msg.caption_entities
        if msg.document:
            o["document"] = self.file_obj(msg.document)
        if msg.photo:
            o["photo"] = [self.file_obj(msg.photo, photo=True)]
        if msg.reply_markup:
            o["reply_markup"] = msg.reply_markup
        if msg.edit_date:
            o["edit_date"] = msg.edit_date
        if msg.reply_to is not None and not nested and msg.reply_to in chat.messages:
            o["reply_to_message"] = self.message_obj(chat.messages[msg.reply_to], nested=True)
        return o

    # ------------------------------------------------------------------------ the test's users

    def _user_chat(self, body: dict[str, Any]) -> tuple[dict[str, Any], Chat]:
        user_id = _required_int(body, "user_id")
        chat_id = _int(body, "chat_id")
        known = self.chats.get(chat_id) if chat_id is not None else None
        # like Telegram ids: a negative chat_id is a group (of the type it already has)
        default_type = (
            known.type if known else ("group" if chat_id is not None and chat_id < 0 else "private")
        )
        chat_type = str(body.get("chat_type") or default_type)
        if chat_type not in ("private", "group", "supergroup"):
            raise ApiError(
                400, f"chat_type must be private, group or supergroup, not {chat_type!r}"
            )
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
        user = self.user(user_id, body.get("first_name"), body.get("username"))
        chat = self.chat_for(chat_id, chat_type=chat_type if known is None else known.type)
        assert chat is not None
        if chat.type == "private":
            chat.first_name, chat.username = user["first_name"], user.get("username")
        elif body.get("title"):
            chat.title = str(body["title"])
        return user, chat

    def _user_message(self, body: dict[str, Any], **fields: Any) -> dict[str, Any]:
        user, chat = self._user_chat(body)
        reply_to = _int(body, "reply_to_message_id")
        if reply_to is not None and reply_to not in chat.messages:
            raise ApiError(400, f"no message {reply_to} in chat {chat.id} to reply to")
        msg = self.add_message(chat, sender=user, from_bot=False, reply_to=reply_to, **fields)
        update = self.push_update("message", self.message_obj(msg))
        return {"update": update, "message": self.message_obj(msg)}

    def user_send(self, body: dict[str, Any]) -> dict[str, Any]:
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ApiError(400, "text must be a non-empty string")
        if u16len(text) > MAX_TEXT:
            raise ApiError(400, f"a user cannot send more than {MAX_TEXT} characters")
        return self._user_message(body, text=text, entities=auto_entities(text))

    def _user_file(self, body: dict[str, Any], kind: str) -> tuple[StoredFile, str | None]:
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
        return self.store_file(
            data, kind, name, mime or ("application/octet-stream" if name else None)
        ), caption

    def user_send_document(self, body: dict[str, Any]) -> dict[str, Any]:
        f, caption = self._user_file(body, "documents")
        ents = auto_entities(caption) if caption else []
        return self._user_message(body, document=f.file_id, caption=caption, caption_entities=ents)

    def user_send_photo(self, body: dict[str, Any]) -> dict[str, Any]:
        f, caption = self._user_file(body, "photos")
        ents = auto_entities(caption) if caption else []
        return self._user_message(body, photo=f.file_id, caption=caption, caption_entities=ents)

    def user_tap(self, body: dict[str, Any]) -> dict[str, Any]:
        user_id = _required_int(body, "user_id")
        chat_id = _int(body, "chat_id")
        chat_id = user_id if chat_id is None else chat_id
        message_id = _required_int(body, "message_id")
        data = body.get("data")
        chat = self.chats.get(chat_id)
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
            "from": self.user(user_id),
            "message": self.message_obj(msg),
            "chat_instance": str(abs(hash((self.id, chat_id))) % 10**18),
            "data": data,
        }
        self.callbacks[query_id] = {
            "id": query_id, "user_id": user_id, "chat_id": chat_id, "message_id": message_id,
            "data": data, "answered": False, "answer": None, "time": time.time(),
        }  # fmt: skip
        update = self.push_update("callback_query", query)
        return {"update": update, "callback_query_id": query_id}

    # ------------------------------------------------------------------------ what users see

    def chat_view(
        self, chat_id: int, *, include_deleted: bool = False, content: bool = True
    ) -> list[dict[str, Any]]:
        chat = self.chats.get(chat_id)
        if chat is None:
            return []
        view = []
        for m in chat.messages.values():
            if m.deleted and not include_deleted:
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
                    "document": self._file_view(m.document, content) if m.document else None,
                    "photo": self._file_view(m.photo, content) if m.photo else None,
                    "reply_to_message_id": m.reply_to,
                    "edits": m.edits,
                    "deleted": m.deleted,
                }
            )
        return view

    def _file_view(self, file_id: str, content: bool) -> dict[str, Any]:
        f = self.files[file_id]
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


def _required_int(body: dict[str, Any], key: str) -> int:
    value = _int(body, key)
    if value is None:
        raise ApiError(400, f"{key} is required")
    return value


def _int(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ApiError(400, f"{key} must be an integer, not {value!r}") from None


def image_size(data: bytes) -> tuple[int, int]:
    """Width and height of a PNG, GIF or JPEG (0, 0 if unknown): PhotoSize needs them."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                i += 1
                continue
            marker = data[i + 1]
            seg = int.from_bytes(data[i + 2 : i + 4], "big")
            if marker in (
                0xC0,
                0xC1,
                0xC2,
                0xC3,
                0xC5,
                0xC6,
                0xC7,
                0xC9,
                0xCA,
                0xCB,
                0xCD,
                0xCE,
                0xCF,
            ):
                return int.from_bytes(data[i + 7 : i + 9], "big"), int.from_bytes(
                    data[i + 5 : i + 7], "big"
                )
            i += 2 + seg
    return 0, 0


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
