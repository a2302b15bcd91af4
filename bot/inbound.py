"""What the owner writes to a session: plain text and files become hand-offs in bot.db.

bot.handoff delivers them to the worker, so a handler here never waits on a worker. A file is
saved under the session's work folder first and Claude is told where it is. Never writes
outside `<state_dir>/sessions/<name>/work/uploads`.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from telegram import Document, Message, PhotoSize, Update
from telegram.ext import ContextTypes

from bot.handoff import Couriers
from bot.journal import Handoff, Journal
from bot.reply import NO_SESSION, chat_of, say
from bot.telegram_out import TelegramOut, reliably
from wire.settings import BotSettings

Ctx = ContextTypes.DEFAULT_TYPE
UPLOADS = "uploads"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class Inbound:
    settings: BotSettings
    journal: Journal
    couriers: Couriers
    out: TelegramOut

    def _hand_off(self, chat: int, session: str, message_id: int, text: str,
                  attachments: list[str] | None = None) -> None:
        key = f"tg:{chat}:{message_id}"
        self.journal.add_handoff(Handoff(key, session, chat, text, message_id,
                                         attachments or [], time.time()))
        self.couriers.kick(session)

    async def _addressed(self, update: Update) -> tuple[int, Message, str] | None:
        """The chat, the message and the chat's active session; None (and a sentence) if none."""
        chat = chat_of(update)
        msg = update.effective_message
        assert msg is not None
        session = self.journal.active(chat)
        if session is None:
            await say(self.out, chat, NO_SESSION)
            return None
        return chat, msg, session

    async def text(self, update: Update, ctx: Ctx) -> None:
        target = await self._addressed(update)
        if target is not None:
            chat, msg, session = target
            self._hand_off(chat, session, msg.message_id, msg.text or "")

    async def attachment(self, update: Update, ctx: Ctx) -> None:
        """Save a photo or document into the session's work folder; tell Claude where it is."""
        target = await self._addressed(update)
        if target is None:
            return
        chat, msg, session = target
        session_dir = Path(self.settings.state_dir) / "sessions" / session
        if not session_dir.is_dir():
            await say(self.out, chat, f"Session {session} has no folder yet: send a text first,"
                      f" or /restart {session}.")
            return
        media: Document | PhotoSize
        if msg.document is not None:
            media, original = msg.document, msg.document.file_name or "file"
        elif msg.photo:
            media, original = msg.photo[-1], "photo.jpg"
        else:
            return
        name = f"{msg.message_id}-{_UNSAFE.sub('_', original).strip('._') or 'file'}"[:120]
        folder = session_dir / "work" / UPLOADS
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        # Network trouble is retried (the file is not lost); a refusal is said in one sentence.
        tg_file = await reliably(media.get_file, "get_file")
        saved: Path | None = None
        if tg_file is not None:
            saved = await reliably(partial(tg_file.download_to_drive, path), "download")
        if saved is None:
            await say(self.out, chat, f"Telegram would not hand over {original} (bots can"
                      " download files up to 20 MB): send a smaller file, or put it in the"
                      " session's work folder another way.")
            return
        caption = msg.caption or ""
        text = (f"{caption}\n\n" if caption else "") + (
            f"[The user sent a file; it is saved at {path} ({UPLOADS}/{name} in the working"
            " directory).]")
        self._hand_off(chat, session, msg.message_id, text, [str(path)])
