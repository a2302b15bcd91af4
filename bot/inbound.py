"""What the owner writes to a session: plain text and files become hand-offs in bot.db.

Which session: the topic's where the chat has topics, else the one whose message it replies
to, else the chat's active one (bot.routing, through bot.topics).

bot.handoff delivers them to the worker, so a handler here never waits on a worker (but for an
edit, below). A file is saved under the session's work folder first and Claude is told where it
is. Never writes outside `<state_dir>/sessions/<name>/work/uploads`, and never through a link
planted there (bot.uploads).

Every message gets an answer. An edited text replaces the original while its turn has not
started: the hand-off still in bot.db, else the worker's queued inbox row (`EditTurn`); otherwise
one sentence says the edit was not applied. An edited command is never run again. The kinds of
message a session cannot take (`UNSUPPORTED`: video, stickers, locations, ...) get one
sentence each. A voice note or audio file is saved like a file, transcribed (bot.voice), shown
as "🎤 <transcript>" and handed off as the message's text.
"""
from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path

from telegram import Audio, Document, Message, PhotoSize, Update, Voice
from telegram.ext import ContextTypes

from bot import joiner
from bot import voice as voice_mod
from bot.chat import ChatServer
from bot.handoff import Couriers
from bot.journal import Handoff, Journal
from bot.reply import chat_of, say
from bot.telegram_out import TelegramOut, reliably
from bot.topics import Topics
from bot.uploads import LinkRefused, save_upload
from wire import messages as m
from wire.settings import BotSettings

log = logging.getLogger(__name__)
Ctx = ContextTypes.DEFAULT_TYPE
UPLOADS = "uploads"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
EDIT_TIMEOUT = 5.0

# (the Message attribute that holds it, the sentence): the first one a message has is said.
# A venue carries a location too, so it comes first; bot.app makes the filter from the same table.
UNSUPPORTED: tuple[tuple[str, str], ...] = (
    ("video_note", "Video notes are not supported yet: send text."),
    ("video", "Videos are not supported yet: send text, or the file as a document."),
    ("sticker", "Stickers are not supported: send text."),
    ("venue", "Venues are not supported: send the address as text."),
    ("location", "Locations are not supported: send the place as text."),
    ("contact", "Contacts are not supported: send the details as text."),
    ("poll", "Polls are not supported: send the question as text."),
    ("dice", "Dice are not supported: send text."),
)
EDITED_COMMAND = "Edited commands are not run again: send the command as a new message."
EDIT_APPLIED = "Your edit replaced the message: Claude reads the new text."


def unsupported_sentence(msg: Message) -> str | None:
    """The sentence for a kind of message no session takes; None for one that goes through."""
    return next((s for attr, s in UNSUPPORTED if getattr(msg, attr, None)), None)


def edit_not_applied(why: str) -> str:
    return f"Your edit was not applied: {why}; send the new text as a new message."


@dataclass
class Inbound:
    settings: BotSettings
    journal: Journal
    couriers: Couriers
    out: TelegramOut
    chat: ChatServer
    topics: Topics
    transcriber: voice_mod.Transcriber | None = None  # voice notes and audio (bot.voice)

    def _hand_off(self, chat: int, session: str, message_id: int, text: str,
                  attachments: list[str] | None = None, *, images: list[str] | None = None,
                  joins: str = "") -> None:
        key = f"tg:{chat}:{message_id}"
        self.journal.add_handoff(Handoff(key, session, chat, text, message_id,
                                         attachments or [], time.time(), images or [], joins))
        self.couriers.kick(session)

    async def _addressed(self, update: Update) -> tuple[int, Message, str] | None:
        """The chat, the message and its session (bot.routing: its topic's, the one it replies
        to, else the chat's active one); None (and a sentence) if none."""
        chat = chat_of(update)
        msg = update.effective_message
        assert msg is not None
        where = self.topics.where(update)
        if where.session is None:
            await say(self.out, chat, where.why)
            return None
        await self.topics.reopen_for_message(update, where.session)
        return chat, msg, where.session

    async def _with_folder(self, update: Update) -> tuple[int, Message, str, Path] | None:
        """Like _addressed, plus the session's folder that a file from the chat is saved in;
        None (and a sentence) when there is none yet."""
        target = await self._addressed(update)
        if target is None:
            return None
        chat, msg, session = target
        session_dir = Path(self.settings.state_dir) / "sessions" / session
        if not session_dir.is_dir():
            await say(self.out, chat, f"Session {session} has no folder yet: send a text first,"
                      f" or /restart {session}.")
            return None
        return chat, msg, session, session_dir

    async def text(self, update: Update, ctx: Ctx) -> None:
        target = await self._addressed(update)
        if target is not None:
            chat, msg, session = target
            # A long text may be the first part of a paste Telegram split (bot.joiner).
            self._hand_off(chat, session, msg.message_id, msg.text or "",
                           joins=joiner.tag(msg.text or "", None))

    async def attachment(self, update: Update, ctx: Ctx) -> None:
        """Save a photo or document into the session's work folder; tell Claude where it is."""
        found = await self._with_folder(update)
        if found is None:
            return
        chat, msg, session, session_dir = found
        media: Document | PhotoSize
        if msg.document is not None:
            media, original = msg.document, msg.document.file_name or "file"
        elif msg.photo:
            media, original = msg.photo[-1], "photo.jpg"
        else:
            return
        name = f"{msg.message_id}-{_UNSAFE.sub('_', original).strip('._') or 'file'}"[:120]
        saved = await self._save(chat, session, session_dir, media, original, name)
        if saved is None:
            return
        path, _data = saved
        caption = msg.caption or ""
        photo = msg.document is None
        text = (f"{caption}\n\n" if caption else "") + (
            f"[The user sent a {'photo' if photo else 'file'}; it is saved at {path}"
            f" ({UPLOADS}/{name} in the working directory).]")
        # A photo also goes to Claude as image content; the parts of an album become one turn.
        self._hand_off(chat, session, msg.message_id, text, [str(path)],
                       images=[str(path)] if photo else [],
                       joins=joiner.tag(None, msg.media_group_id))

    async def _save(self, chat: int, session: str, session_dir: Path,
                    media: Document | PhotoSize | Voice | Audio, original: str,
                    name: str) -> tuple[Path, bytes] | None:
        """Download a file from the chat into the session's uploads: its path and bytes, or None
        after one sentence that says why not."""
        # Network trouble is retried (the file is not lost); a refusal is said in one sentence.
        tg_file = await reliably(media.get_file, "get_file")
        data: bytearray | None = None
        if tg_file is not None:
            data = await reliably(tg_file.download_as_bytearray, "download")
        if data is None:
            await say(self.out, chat, f"Telegram would not hand over {original} (bots can"
                      " download files up to 20 MB): send a smaller file, or put it in the"
                      " session's work folder another way.")
            return None
        try:  # never through a link the session's tools planted (bot.uploads)
            path = await asyncio.to_thread(save_upload, session_dir, name, bytes(data))
        except LinkRefused as where:
            log.warning("event=upload_refused session=%s reason=symlink path=%s", session, where)
            await say(self.out, chat, f"{original} was not saved: {where} in session {session}'s"
                      " folder is a link, which could point outside it; remove the link and"
                      " send the file again.")
            return None
        return path, bytes(data)

    async def voice(self, update: Update, ctx: Ctx) -> None:
        """A voice note or audio file: saved, transcribed (bot.voice), shown, and the turn."""
        transcriber = self.transcriber
        if transcriber is None or not transcriber.enabled:
            await say(self.out, chat_of(update), voice_mod.NOT_CONFIGURED)
            return
        found = await self._with_folder(update)
        if found is None:
            return
        chat, msg, session, session_dir = found
        media: Voice | Audio
        if msg.voice is not None:
            media, kind, original = msg.voice, "voice", None
        elif msg.audio is not None:
            media, kind, original = msg.audio, "audio", msg.audio.file_name
        else:
            return
        name = voice_mod.file_name(msg.message_id, kind, _UNSAFE.sub("_", original or "")
                                   .strip("._") or None, media.mime_type)[:120]
        saved = await self._save(chat, session, session_dir, media, original or "the voice note",
                                 name)
        if saved is None:
            return
        path, data = saved
        where = f"{UPLOADS}/{name}"
        try:
            text = await transcriber.transcribe(name, data, media.mime_type)
        except voice_mod.TranscriptionFailed as why:
            log.warning("event=transcription_failed session=%s reason=%r", session, str(why))
            await say(self.out, chat, voice_mod.failed_sentence(str(why), where, session))
            return
        if not text:
            await say(self.out, chat, voice_mod.empty_sentence(where, session))
            return
        await say(self.out, chat, voice_mod.shown(text))
        caption = msg.caption or ""
        self._hand_off(chat, session, msg.message_id, f"{caption}\n\n{text}" if caption else text)
        log.info("event=voice_turn session=%s path=%s", session, path)

    async def unsupported(self, update: Update, ctx: Ctx) -> None:
        msg = update.effective_message
        sentence = unsupported_sentence(msg) if msg is not None else None
        await say(self.out, chat_of(update), sentence or "That kind of message is not supported:"
                  " send text, a photo or a file.")

    async def edited(self, update: Update, ctx: Ctx) -> None:
        """An edited message: replace the original while its turn has not started."""
        chat = chat_of(update)
        msg = update.edited_message
        assert msg is not None
        if msg.text is None:
            await say(self.out, chat, edit_not_applied("only the text of a message can be"
                                                       " edited"))
            return
        if msg.text.startswith("/"):
            await say(self.out, chat, EDITED_COMMAND)
            return
        key = f"tg:{chat}:{msg.message_id}"
        waiting = self.journal.replace_handoff_text(key, msg.text)
        session = waiting or self.topics.where(update).session
        if session is None:
            await say(self.out, chat, edit_not_applied("that message went to no session"))
            return
        if waiting:
            # Its courier may already be carrying the old text: once the worker acknowledged
            # it, the edit goes to the worker's row. A worker that does not take it in time gets
            # the new text with the courier's next try.
            await self._until_handed_over(session, key)
        reply = await self.chat.request(session, m.EditTurn(id=m.new_id(), key=key,
                                                           text=msg.text), EDIT_TIMEOUT)
        if isinstance(reply, m.Ok) or (waiting and not _started(reply)):
            await say(self.out, chat, EDIT_APPLIED)
        elif _started(reply):
            await say(self.out, chat, edit_not_applied("Claude had already started on that"
                                                       " message"))
        elif reply is None or reply.code == m.E_UNAVAILABLE:
            await say(self.out, chat, edit_not_applied(f"session {session} is not answering"))
        else:
            await say(self.out, chat, edit_not_applied(f"session {session} does not have that"
                                                       " message waiting"))


    async def _until_handed_over(self, session: str, key: str) -> None:
        deadline = time.monotonic() + self.settings.worker_timeout_seconds
        while time.monotonic() < deadline and any(
                h.key == key for h in self.journal.pending_handoffs(session)):
            await asyncio.sleep(0.05)


def _started(reply: m.Ok | m.Error | None) -> bool:
    return isinstance(reply, m.Error) and reply.code == m.E_STATE
