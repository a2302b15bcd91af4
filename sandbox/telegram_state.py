"""The sandbox Telegram's world: bots, users, chats, topics, drafts, messages, updates and files,
plus what the test's users do in it (send, upload, tap) and what they see
(:meth:`BotState.chat_view`).

The Bot API methods acting on it are in :mod:`sandbox.telegram_methods`; HTTP is in
:mod:`sandbox.telegram_server`. Everything here runs on one event loop, so there are no locks.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from sandbox.telegram_rules import image_size

DEFAULT_TOKEN = "123456:SANDBOX-TOKEN"
DEFAULT_ALLOWED = {
    "message", "edited_message", "callback_query", "channel_post", "inline_query",
    "stopped_message_generation", "my_chat_member",  # Telegram holds back only chat_member & co.
}  # fmt: skip


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
    duration: int = 0  # seconds, for a voice note or an audio file
    title: str | None = None  # an audio file's
    performer: str | None = None


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
    voice: str | None = None  # file_id
    audio: str | None = None  # file_id
    reply_to: int | None = None
    edits: int = 0
    edit_date: int | None = None
    deleted: bool = False
    thread_id: int | None = None  # the topic (its forum_topic_created message's id)
    service: dict[str, Any] | None = None  # e.g. {"forum_topic_created": {...}}
    # what the sender asked for: {"is_disabled": bool, ...link_preview_options} (None: nothing)
    link_preview: dict[str, Any] | None = None
    media_group_id: str | None = None  # the album this message is a part of
    pinned: bool = False  # pinChatMessage (until unpinChatMessage or unpinAllChatMessages)


@dataclass
class Topic:
    """A forum topic, in a forum supergroup or (Bot API 9.3) a private chat with the bot."""

    thread_id: int
    name: str
    icon_color: int
    icon_custom_emoji_id: str | None = None
    closed: bool = False
    deleted: bool = False

    def obj(self) -> dict[str, Any]:
        o: dict[str, Any] = {
            "message_thread_id": self.thread_id, "name": self.name, "icon_color": self.icon_color,
        }  # fmt: skip
        if self.icon_custom_emoji_id:
            o["icon_custom_emoji_id"] = self.icon_custom_emoji_id
        return o


@dataclass
class Draft:
    """One sendMessageDraft stream, keyed by (chat, topic, draft_id); ``history`` holds every
    change (``{"text", "entities", "time"}``), ``ended`` why it left the screen."""

    chat_id: int
    thread_id: int | None
    draft_id: int
    text: str = ""
    entities: list[dict[str, Any]] = field(default_factory=list)
    can_stop: bool = False
    keep_on_stop: bool = False
    changed: float = 0.0  # on the bot's draft clock
    history: list[dict[str, Any]] = field(default_factory=list)
    stopped: bool = False
    ended: str | None = None  # "message", "expired", "stopped" or "topic_deleted"


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
    is_forum: bool = False  # a forum supergroup
    topics: dict[int, Topic] = field(default_factory=dict)
    left: bool = False  # the bot left this group (leaveChat) and was not added again

    def obj(self) -> dict[str, Any]:
        o: dict[str, Any] = {"id": self.id, "type": self.type}
        if self.type == "private":
            o["first_name"] = self.first_name or f"User {self.id}"
            if self.username:
                o["username"] = self.username
        else:
            o["title"] = self.title or f"Group {self.id}"
            if self.is_forum:
                o["is_forum"] = True
        return o


class BotState:
    """One bot (one token) and everything it can see."""

    _ids = itertools.count(1)

    def __init__(
        self,
        token: str,
        username: str,
        *,
        has_topics_enabled: bool = False,
        allows_users_to_create_topics: bool = False,
    ) -> None:
        self.token = token
        # BotFather's topic mode for private chats (Bot API 9.3) and users' right to make and
        # delete topics there (9.4): fixed per sandbox, like a bot's settings
        self.has_topics_enabled = has_topics_enabled
        self.allows_users_to_create_topics = allows_users_to_create_topics
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
        self.drafts: list[Draft] = []
        self.clock_offset = 0.0  # the test moves the draft clock instead of sleeping
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

    def clock(self) -> float:
        """The draft clock: monotonic seconds, plus what the test advanced it by."""
        return time.monotonic() + self.clock_offset

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
        # a message in a chat or topic replaces the drafts shown there (Bot API 9.3)
        for d in self.drafts:
            if d.ended is None and (d.chat_id, d.thread_id) == (chat.id, msg.thread_id):
                d.ended = "message"
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
        if kind == "voice" and not ext:
            ext = ".oga"  # what Telegram names a voice note's file
        prefix = {"photos": "AgAC", "voice": "AwAC", "music": "CQAC"}.get(kind, "BQAC")
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

    def member_update(self, chat: Chat, by: dict[str, Any], old: str, new: str) -> dict[str, Any]:
        """A ``my_chat_member`` update: the bot's status in ``chat`` went from ``old`` to
        ``new`` (``left``, ``member``), changed by the user ``by`` (the bot itself for a leave)."""
        return self.push_update("my_chat_member", {
            "chat": chat.obj(), "from": by, "date": now(),
            "old_chat_member": {"status": old, "user": self.me()},
            "new_chat_member": {"status": new, "user": self.me()},
        })  # fmt: skip

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

    def media_obj(self, file_id: str, *, audio: bool) -> dict[str, Any]:
        """A Voice (file_id, file_unique_id, duration, mime_type, file_size) or an Audio object
        (those, and file_name, title, performer when known)."""
        f = self.files[file_id]
        o: dict[str, Any] = {
            "file_id": f.file_id, "file_unique_id": f.file_unique_id, "duration": f.duration,
            "file_size": len(f.data),
        }  # fmt: skip
        if f.mime_type:
            o["mime_type"] = f.mime_type
        if audio:
            o.update({k: v for k, v in (("file_name", f.file_name), ("title", f.title),
                                         ("performer", f.performer)) if v})
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
        for kind, file_id in (("voice", msg.voice), ("audio", msg.audio)):
            if file_id:
                o[kind] = self.media_obj(file_id, audio=kind == "audio")
        if msg.media_group_id:
            o["media_group_id"] = msg.media_group_id
        if msg.reply_markup:
            o["reply_markup"] = msg.reply_markup
        if msg.edit_date:
            o["edit_date"] = msg.edit_date
        if msg.service:
            o.update(msg.service)
        reply_to = msg.reply_to
        if msg.thread_id is not None:
            o["message_thread_id"], o["is_topic_message"] = msg.thread_id, True
            # in a forum supergroup a topic message with no reply replies to the topic's start
            if reply_to is None and chat.type == "supergroup" and msg.message_id != msg.thread_id:
                reply_to = msg.thread_id
        if reply_to is not None and not nested and reply_to in chat.messages:
            o["reply_to_message"] = self.message_obj(chat.messages[reply_to], nested=True)
        return o


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
