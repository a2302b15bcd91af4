"""How the sandbox Telegram reads a Bot API request: :class:`Params` (form values are strings,
other values JSON-encoded), :class:`Upload` (a multipart file), and :func:`send_chat` (the chat a
send method targets, with Telegram's "chat not found" and "blocked" answers).

Shared by every module of Bot API methods (:mod:`sandbox.telegram_methods`,
:mod:`sandbox.telegram_topics`, :mod:`sandbox.telegram_drafts`); it must never act on the world.
"""

from __future__ import annotations

import json
from typing import Any

from sandbox.telegram_state import ApiError, BotState, Chat, bad


class Upload:
    """A file sent in a multipart body."""

    def __init__(self, filename: str | None, data: bytes, content_type: str | None) -> None:
        self.filename, self.data, self.content_type = filename, data, content_type


class Params:
    """A request's parameters, typed the way Telegram reads them: form values are strings, and
    non-string values (reply_markup, entities...) arrive JSON-encoded."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    def raw(self, name: str) -> Any:
        value = self.values.get(name)
        return None if value == "" else value

    def string(self, name: str) -> str | None:
        value = self.raw(name)
        return None if value is None else str(value)

    def integer(self, name: str, missing: str | None = None) -> int | None:
        value = self.raw(name)
        if value is None:
            if missing:
                raise bad(missing)
            return None
        try:
            return int(value)
        except (TypeError, ValueError):
            raise bad(f"invalid {name} specified") from None

    def number(self, name: str) -> float | None:
        value = self.raw(name)
        try:
            return None if value is None else float(value)
        except (TypeError, ValueError):
            raise bad(f"invalid {name} specified") from None

    def flag(self, name: str) -> bool:
        value = self.raw(name)
        if isinstance(value, str):
            return value.lower() in ("true", "1")
        return bool(value)

    def json(self, name: str, what: str) -> Any:
        value = self.raw(name)
        if isinstance(value, str | bytes):
            try:
                return json.loads(value)
            except ValueError:
                raise bad(f"can't parse {what} JSON object") from None
        return value

    def loggable(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in self.values.items():
            if isinstance(v, Upload):
                out[k] = {"file_name": v.filename, "size": len(v.data)}
            elif isinstance(v, str) and k in (
                "reply_markup",
                "entities",
                "caption_entities",
                "allowed_updates",
                "commands",
                "scope",
                "reply_parameters",
                "link_preview_options",
            ):
                try:
                    out[k] = json.loads(v)
                except ValueError:
                    out[k] = v
            else:
                out[k] = v
        return out


def find_chat(bot: BotState, p: Params) -> Chat:
    """The chat a request's chat_id names (an id, or @username); 400 when there is none."""
    raw = p.raw("chat_id")
    if raw is None:
        raise bad("chat_id is empty")
    chat: Chat | None
    if isinstance(raw, str) and raw.startswith("@"):
        chat = next((c for c in bot.chats.values() if c.username and "@" + c.username == raw), None)
    else:
        try:
            cid = int(raw)
        except (TypeError, ValueError):
            raise bad("chat not found") from None
        # a positive id is a user who has started the bot; groups must be known
        chat = bot.chat_for(cid, create=cid > 0)
    if chat is None:
        raise bad("chat not found")
    return chat


def send_chat(bot: BotState, p: Params) -> Chat:
    """The chat a send goes to: found, and one the bot may still write to."""
    chat = find_chat(bot, p)
    if chat.type == "private" and chat.id in bot.blocked:
        raise ApiError(403, "Forbidden: bot was blocked by the user")
    if chat.left:
        raise ApiError(403, f"Forbidden: bot is not a member of the {chat.type} chat")
    return chat
