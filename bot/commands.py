"""What the owner can do in the chat: one short handler per command, message kind and button.

Handlers only ever run for allowed users (bot.gate stops everyone else first). Each answers in
one message; anything that fails comes back as one sentence that says what to do. Plain text and
files become hand-offs in bot.db (bot.handoff delivers them), so a handler never waits on a worker.
"""
from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from telegram import (
    Document,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    PhotoSize,
    Update,
)
from telegram.ext import ContextTypes
from telegramify_markdown import MessageEntity, utf16_len

from bot import render
from bot.chat import ChatServer
from bot.control import Refused, Supervisor
from bot.delivery import Delivery
from bot.handoff import Couriers
from bot.journal import Handoff, Journal
from bot.render import Chunk
from bot.telegram_out import TelegramOut, reliably
from wire import messages as m
from wire.names import session_name_error
from wire.settings import BotSettings

log = logging.getLogger(__name__)

Ctx = ContextTypes.DEFAULT_TYPE
NO_SESSION = "No active session: create one with /new NAME, or pick one with /switch."
UPLOADS = "uploads"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class Commands:
    settings: BotSettings
    journal: Journal
    supervisor: Supervisor
    chat: ChatServer
    delivery: Delivery
    couriers: Couriers
    out: TelegramOut

    # ----------------------------------------------------------------------- helpers

    async def say(self, chat_id: int, text: str, markup: InlineKeyboardMarkup | None = None,
                  *, monospace: bool = False) -> None:
        ents = (MessageEntity("pre", 0, utf16_len(text)),) if monospace and text else ()
        for chunk in render.split(text, ents) or [Chunk("(empty)")]:
            await reliably(partial(self.out.send, chat_id, chunk, markup), "reply")

    @staticmethod
    def chat_id(update: Update) -> int:
        assert update.effective_chat is not None
        return update.effective_chat.id

    def _target(self, update: Update, ctx: Ctx) -> tuple[str | None, str | None]:
        """(session, error sentence) from the first argument, else the chat's active session."""
        if ctx.args:
            name = ctx.args[0]
            return (None, session_name_error(name)) if session_name_error(name) else (name, None)
        active = self.journal.active(self.chat_id(update))
        return (active, None) if active else (None, NO_SESSION)

    async def _rows(self, chat: int) -> list[m.ProgramStatus] | None:
        try:
            return await self.supervisor.status()
        except Refused as exc:
            await self.say(chat, str(exc))
            return None

    # ----------------------------------------------------------------------- commands

    async def help(self, update: Update, ctx: Ctx) -> None:
        await self.say(self.chat_id(update), render.HELP)

    async def new(self, update: Update, ctx: Ctx) -> None:
        chat = self.chat_id(update)
        if not ctx.args or len(ctx.args) > 2:
            await self.say(chat, "Usage: /new NAME [PERSONA], for example /new api.")
            return
        name = ctx.args[0]
        if err := session_name_error(name):
            await self.say(chat, err)
            return
        persona = ctx.args[1] if len(ctx.args) > 1 else None
        try:
            await self.supervisor.call(m.NewSession(id=m.new_id(), name=name, persona=persona),
                                       timeout=30.0)
        except Refused as exc:
            await self.say(chat, str(exc))
            return
        self.journal.set_active(chat, name)
        await self.say(chat, f"Session {name} is ready and active: write to it.")

    async def switch(self, update: Update, ctx: Ctx) -> None:
        chat = self.chat_id(update)
        rows = await self._rows(chat)
        if rows is None:
            return
        names = [render.session_name(r) for r in render.session_rows(rows)]
        if not ctx.args:
            if not names:
                await self.say(chat, "No sessions yet: create one with /new NAME.")
                return
            buttons = [InlineKeyboardButton(n, callback_data=f"sw:{n}") for n in names]
            markup = InlineKeyboardMarkup([buttons[i:i + 2] for i in range(0, len(buttons), 2)])
            active = self.journal.active(chat)
            await self.say(chat, f"Active: {active or 'none'}. Switch to:", markup)
            return
        name = ctx.args[0]
        if err := session_name_error(name):
            await self.say(chat, err)
            return
        if name not in names:
            await self.say(chat, f"There is no session {name}: /sessions lists them, /new {name}"
                           " creates it.")
            return
        self.journal.set_active(chat, name)
        await self.say(chat, f"Active session: {name}.")

    async def sessions(self, update: Update, ctx: Ctx) -> None:
        chat = self.chat_id(update)
        if (rows := await self._rows(chat)) is not None:
            await self.say(chat, render.sessions_text(rows, self.journal.active(chat)))

    async def status(self, update: Update, ctx: Ctx) -> None:
        chat = self.chat_id(update)
        if (rows := await self._rows(chat)) is not None:
            await self.say(chat, render.status_table(rows), monospace=True)

    async def cost(self, update: Update, ctx: Ctx) -> None:
        chat = self.chat_id(update)
        if (rows := await self._rows(chat)) is not None:
            await self.say(chat, render.cost_text(rows))

    async def _action(self, update: Update, ctx: Ctx, kind: type[m.Stop | m.Restart],
                      verb: str) -> None:
        chat = self.chat_id(update)
        session, err = self._target(update, ctx)
        if session is None:
            await self.say(chat, err or NO_SESSION)
            return
        try:
            result = await self.supervisor.call(kind(id=m.new_id(), names=[session]), timeout=60.0)
        except Refused as exc:
            await self.say(chat, str(exc))
            return
        if isinstance(result, m.ActionResult):
            await self.say(chat, render.results_text(verb, result.results))
        else:
            await self.say(chat, f"{session}: {verb} done.")

    async def stop(self, update: Update, ctx: Ctx) -> None:
        await self._action(update, ctx, m.Stop, "stop")

    async def restart(self, update: Update, ctx: Ctx) -> None:
        await self._action(update, ctx, m.Restart, "restart")

    async def cancel(self, update: Update, ctx: Ctx) -> None:
        chat = self.chat_id(update)
        session = self.journal.active(chat)
        if session is None:
            await self.say(chat, NO_SESSION)
            return
        if self.chat.send(session, m.Cancel(id=m.new_id())):
            await self.say(chat, f"Interrupting the running turn of {session}.")
        else:
            await self.say(chat, f"Session {session} is not running: there is nothing to cancel.")

    async def persona(self, update: Update, ctx: Ctx) -> None:
        chat = self.chat_id(update)
        session = self.journal.active(chat)
        try:
            if not ctx.args:
                result = await self.supervisor.call(m.ListPersonas(id=m.new_id()))
                names = result.personas if isinstance(result, m.PersonasResult) else []
                current = None
                if session is not None:
                    rows = await self.supervisor.status()
                    current = next((r.persona for r in rows if r.name == f"session:{session}"),
                                   None)
                lines = [f"{'▶' if p.name == current else '•'} {p.name}"
                         + (f" — {p.description}" if p.description else "") for p in names]
                lines.append("Change it with /persona NAME.")
                await self.say(chat, "\n".join(lines))
                return
            if session is None:
                await self.say(chat, NO_SESSION)
                return
            name = ctx.args[0]
            await self.supervisor.call(
                m.SetPersona(id=m.new_id(), name=session, persona=name), timeout=60.0)
        except Refused as exc:
            await self.say(chat, str(exc))
            return
        await self.say(chat, f"Session {session} now uses the persona {name}.")

    async def remove(self, update: Update, ctx: Ctx) -> None:
        chat = self.chat_id(update)
        if not ctx.args:
            await self.say(chat, "Usage: /remove NAME.")
            return
        name = ctx.args[0]
        if err := session_name_error(name):
            await self.say(chat, err)
            return
        markup = InlineKeyboardMarkup([[
            InlineKeyboardButton(f"Remove {name}", callback_data=f"rm:y:{name}"),
            InlineKeyboardButton("Keep it", callback_data=f"rm:n:{name}"),
        ]])
        await self.say(chat, f"Remove session {name} with its history and work folder? This"
                       " cannot be undone.", markup)

    async def unknown(self, update: Update, ctx: Ctx) -> None:
        msg = update.effective_message
        word = (msg.text or "").split()[0] if msg and msg.text else "that"
        await self.say(self.chat_id(update), f"Unknown command {word[:40]}: /help lists the"
                       " commands.")

    # ----------------------------------------------------------------------- messages

    def _hand_off(self, chat: int, session: str, message_id: int, text: str,
                  attachments: list[str] | None = None) -> None:
        key = f"tg:{chat}:{message_id}"
        self.journal.add_handoff(Handoff(key, session, chat, text, message_id,
                                         attachments or [], time.time()))
        self.couriers.kick(session)

    async def _addressed(self, update: Update) -> tuple[int, Message, str] | None:
        """The chat, the message and the chat's active session; None (and a sentence) if none."""
        chat = self.chat_id(update)
        msg = update.effective_message
        assert msg is not None
        session = self.journal.active(chat)
        if session is None:
            await self.say(chat, NO_SESSION)
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
            await self.say(chat, f"Session {session} has no folder yet: send a text first, or"
                           f" /restart {session}.")
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
            await self.say(chat, f"Telegram would not hand over {original} (bots can download"
                           " files up to 20 MB): send a smaller file, or put it in the session's"
                           f" work folder another way.")
            return
        caption = msg.caption or ""
        text = (f"{caption}\n\n" if caption else "") + (
            f"[The user sent a file; it is saved at {path} ({UPLOADS}/{name} in the working"
            " directory).]")
        self._hand_off(chat, session, msg.message_id, text, [str(path)])

    # ----------------------------------------------------------------------- buttons

    async def tap(self, update: Update, ctx: Ctx) -> None:
        query = update.callback_query
        assert query is not None and query.message is not None
        chat = query.message.chat.id
        data = query.data or ""
        kind, _, rest = data.partition(":")
        if kind == "p":
            await self._permission_tap(query, chat, rest)
        elif kind == "sw":
            if session_name_error(rest):
                await query.answer()
                return
            self.journal.set_active(chat, rest)
            await query.answer(f"Active session: {rest}")
            await self.say(chat, f"Active session: {rest}.")
        elif kind == "rm":
            await self._remove_tap(query, chat, rest)
        else:
            await query.answer("This button is no longer valid.")

    async def _permission_tap(self, query, chat: int, rest: str) -> None:  # type: ignore[no-untyped-def]
        n_text, _, choice = rest.partition(":")
        prompt = self.journal.prompt(int(n_text)) if n_text.isdigit() else None
        if prompt is None or prompt.state != "open":
            await query.answer("This request was already answered.")
            await reliably(lambda: self.out.remove_buttons(chat, query.message.message_id),
                           "buttons")
            return
        allow, always = choice in ("a", "s"), choice == "s"
        answer = m.PermissionAnswer(id=m.new_id(), prompt_id=prompt.prompt_id, allow=allow,
                                    always=always, message="" if allow else "Denied by the user.")
        if not self.chat.send(prompt.session, answer):
            self.journal.close_prompt(prompt.n, "expired")
            await query.answer(f"Session {prompt.session} is not running any more.")
            text = prompt.text + "\n⌛ The session stopped before the answer: nothing was run."
        else:
            self.journal.close_prompt(prompt.n, "answered")
            await query.answer("Allowed" if allow else "Denied")
            text = prompt.text + "\n" + render.permission_outcome(allow, always=always)
        log.info("event=permission_answered session=%s n=%d allow=%s always=%s", prompt.session,
                 prompt.n, allow, always)
        await reliably(lambda: self.out.put(chat, prompt.message_id, Chunk(text)), "permission")

    async def _remove_tap(self, query, chat: int, rest: str) -> None:  # type: ignore[no-untyped-def]
        choice, _, name = rest.partition(":")
        mid = query.message.message_id
        if session_name_error(name):
            await query.answer()
            return
        if choice != "y":
            await query.answer("Kept.")
            await reliably(lambda: self.out.put(chat, mid, Chunk(f"Kept session {name}.")),
                           "remove")
            return
        await query.answer(f"Removing {name}…")
        try:
            await self.supervisor.call(m.RemoveSession(id=m.new_id(), name=name), timeout=60.0)
        except Refused as exc:
            await reliably(partial(self.out.put, chat, mid, Chunk(str(exc))), "remove")
            return
        await self.couriers.forget(name)
        await self.delivery.forget(name)
        self.journal.forget_session(name)
        await reliably(lambda: self.out.put(chat, mid, Chunk(f"Session {name} removed.")),
                       "remove")
