"""Voice notes and audio files: transcribed through an OpenAI-compatible API, then a turn.

`Transcriber.transcribe` POSTs `{api_base_url}/audio/transcriptions` (multipart: `file`,
`model`; `Authorization: Bearer <key>` when a key is configured) and returns the answer's
`text`. Every way that can fail is a `TranscriptionFailed` whose str() is the reason in a few
words, for the one sentence the chat gets (`failed_sentence`); the recording itself is saved in
the session's uploads before the call (bot.inbound), so nothing is lost. Without
`voice.api_base_url` the chat is told how to turn it on (`NOT_CONFIGURED`).

It must never log or say the key (a server's error text is cleaned of it), and never hand the
key to anything but the configured server.
"""
from __future__ import annotations

import json
import logging
import mimetypes
from dataclasses import dataclass

import httpx

from wire.settings import BotSettings

log = logging.getLogger(__name__)

MIC = "🎤"
NOT_CONFIGURED = ("Voice notes are not transcribed yet: set [voice] api_base_url in"
                  " switchboard.toml to an OpenAI-compatible transcription API (for example"
                  " https://api.openai.com/v1 with api_key_env = \"OPENAI_API_KEY\", or a local"
                  " whisper server) and reload, or send text.")
REASON_MAX = 200


class TranscriptionFailed(Exception):
    """The server did not transcribe; str() is why, in a few words."""


def shown(text: str) -> str:
    """What the chat shows of a transcript before it becomes the turn."""
    return f"{MIC} {text}"


def failed_sentence(why: str, saved: str, session: str) -> str:
    return (f"The voice note was not transcribed ({why}); it is saved as {saved} in session"
            f" {session}'s work folder: send it again later, or type the message.")


def empty_sentence(saved: str, session: str) -> str:
    return (f"The voice note had no words to transcribe; it is saved as {saved} in session"
            f" {session}'s work folder.")


def file_name(message_id: int, kind: str, original: str | None, mime: str | None) -> str:
    """The upload's name: `<message id>-<original or voice.ogg>` (the caller makes it safe)."""
    if original:
        return f"{message_id}-{original}"
    ext = (mimetypes.guess_extension(mime or "") or "") if mime else ""
    ext = {".oga": ".ogg", "": ".ogg" if kind == "voice" else ".mp3"}.get(ext, ext)
    return f"{message_id}-{kind}{ext}"


def transcript_of(status: int, body: bytes, key: str | None = None) -> str:
    """The transcript in a server's answer; TranscriptionFailed (why, without the key) else."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if status != 200:
        detail = ""
        if isinstance(data, dict):
            err = data.get("error")
            detail = str(err.get("message") if isinstance(err, dict) else err or "")
        if key:
            detail = detail.replace(key, "***")
        detail = " ".join(detail.split())[:REASON_MAX]
        raise TranscriptionFailed(f"the transcription server answered {status}"
                                  + (f": {detail}" if detail else ""))
    if not isinstance(data, dict) or not isinstance(data.get("text"), str):
        raise TranscriptionFailed("the transcription server's answer has no text")
    return str(data["text"]).strip()


@dataclass
class Transcriber:
    settings: BotSettings  # its `voice` is read at each call: a reload changes it in place
    key: str | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.settings.voice.api_base_url)

    async def transcribe(self, name: str, data: bytes, mime: str | None) -> str:
        s = self.settings.voice
        url = s.api_base_url.rstrip("/") + "/audio/transcriptions"
        headers = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        try:
            async with httpx.AsyncClient(timeout=s.timeout_seconds) as client:
                resp = await client.post(
                    url, headers=headers, data={"model": s.model},
                    files={"file": (name, data, mime or "application/octet-stream")})
        except httpx.TimeoutException:
            log.warning("event=transcription_timeout seconds=%s", s.timeout_seconds)
            raise TranscriptionFailed(f"the transcription server did not answer within"
                                      f" {s.timeout_seconds:g} s") from None
        except httpx.HTTPError as exc:
            log.warning("event=transcription_unreachable error=%s", type(exc).__name__)
            raise TranscriptionFailed(f"the transcription server at {s.api_base_url} could not"
                                      f" be reached ({type(exc).__name__})") from None
        text = transcript_of(resp.status_code, resp.content, self.key)
        log.info("event=transcribed bytes=%d chars=%d", len(data), len(text))
        return text
