"""The user sends a voice note or an audio file in the sandbox Telegram, shaped like Telegram's
Voice and Audio objects and stored so that getFile and the file download hand it to the bot.

Each checks its input like a Telegram client would and raises :class:`ApiError` with one
sentence for the test: the recording must not be empty, its duration is whole seconds.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
from typing import Any

from sandbox.telegram_rules import MAX_CAPTION, auto_entities, u16len
from sandbox.telegram_state import ApiError, BotState
from sandbox.telegram_users import _user_message, int_field


def _recording(body: dict[str, Any]) -> bytes:
    try:
        data = base64.b64decode(str(body.get("content_b64", "")), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ApiError(400, f"content_b64 is not base64: {exc}") from exc
    if not data:
        raise ApiError(400, "content_b64 must not be empty: a recording has sound in it")
    return data


def _caption(body: dict[str, Any]) -> dict[str, Any]:
    caption = body.get("caption") or None
    if caption is None:
        return {}
    if u16len(str(caption)) > MAX_CAPTION:
        raise ApiError(400, f"a caption holds at most {MAX_CAPTION} characters")
    return {"caption": str(caption), "caption_entities": auto_entities(str(caption))}


def _duration(body: dict[str, Any]) -> int:
    seconds = int_field(body, "duration")
    if seconds is not None and seconds < 0:
        raise ApiError(400, "duration must be 0 or more seconds")
    return 1 if seconds is None else seconds


def send_voice(bot: BotState, body: dict[str, Any]) -> dict[str, Any]:
    """A voice note (``content_b64``, ``duration``, ``mime_type`` audio/ogg by default)."""
    data = _recording(body)
    f = bot.store_file(data, "voice", None, str(body.get("mime_type") or "audio/ogg"))
    f.duration = _duration(body)
    return _user_message(bot, body, voice=f.file_id, **_caption(body))


def send_audio(bot: BotState, body: dict[str, Any]) -> dict[str, Any]:
    """An audio file (``content_b64``, ``filename``, ``mime_type``, ``duration``, ``title``,
    ``performer``); the MIME type is guessed from the name, else audio/mpeg."""
    data = _recording(body)
    name = body.get("filename") or None
    mime = body.get("mime_type") or (mimetypes.guess_type(name)[0] if name else None)
    f = bot.store_file(data, "music", name, mime or "audio/mpeg")
    f.duration = _duration(body)
    f.title, f.performer = body.get("title") or None, body.get("performer") or None
    return _user_message(bot, body, audio=f.file_id, **_caption(body))
