"""What a tap on an inline button does: answer a permission prompt, revoke a grant, switch,
confirm a removal, send again a message a user's stop cut short (a new hand-off, exactly as if
the user wrote it).

bot.app routes each tap here by the kind of its callback data (bot.callbacks); data that does
not parse is answered and ignored. Every tap is answered (an unanswered one spins in the user's
client), and a permission answer shows what the worker said: applied, or why not.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import partial

from telegram import CallbackQuery, Update
from telegram.ext import ContextTypes

from bot import callbacks, place, prompt_render, render, session_commands
from bot.chat import ChatServer
from bot.control import Refused, SupervisorClient
from bot.delivery import Delivery
from bot.handoff import Couriers
from bot.journal import Handoff, Journal
from bot.render import Chunk
from bot.reply import say
from bot.telegram_out import TelegramOut, reliably
from bot.topics import Topics
from wire import messages as m

log = logging.getLogger(__name__)

Ctx = ContextTypes.DEFAULT_TYPE


def _query(update: Update) -> tuple[CallbackQuery, int, int]:
    """The tap, its chat and the message its button is on."""
    query = update.callback_query
    assert query is not None and query.message is not None
    return query, query.message.chat.id, query.message.message_id


@dataclass
class Taps:
    journal: Journal
    supervisor: SupervisorClient
    chat: ChatServer
    delivery: Delivery
    couriers: Couriers
    out: TelegramOut
    answer_timeout: float  # how long a worker may take to confirm a permission answer
    topics: Topics | None = None  # bot.topics: a removed session's topic is deleted

    async def _edit(self, chat: int, message_id: int, text: str, what: str) -> None:
        await reliably(partial(self.out.put, chat, message_id, Chunk(text)), what)

    async def permission(self, update: Update, ctx: Ctx) -> None:
        query, chat, mid = _query(update)
        tap = callbacks.parse_permission(query.data or "")
        prompt = self.journal.prompt(tap.n) if tap else None
        if tap is None or prompt is None or prompt.state != "open":
            await query.answer("This request was already answered.")
            await reliably(partial(self.out.remove_buttons, chat, mid), "buttons")
            return
        allow, always = tap.allow, tap.always
        answer = m.PermissionAnswer(id=m.new_id(), prompt_id=prompt.prompt_id, allow=allow,
                                    always=always, message="" if allow else "Denied by the user.")
        # Closed before the answer goes out: the worker's PermissionResolved for it then finds
        # the prompt closed and leaves this message to the words below.
        self.journal.close_prompt(prompt.n, "answered")
        reply = await self.chat.request(prompt.session, answer, self.answer_timeout)
        log.info("event=permission_answered session=%s n=%d allow=%s always=%s reply=%s",
                 prompt.session, prompt.n, allow, always,
                 "none" if reply is None else getattr(reply, "code", "ok"))
        if isinstance(reply, m.Ok):
            await query.answer("Allowed" if allow else "Denied")
            outcome = render.permission_outcome(allow, always=always)
        elif reply is None:
            await query.answer(f"Session {prompt.session} did not confirm the answer.")
            outcome = (f"⌛ Session {prompt.session} did not confirm the answer"
                       f" within {self.answer_timeout:.0f} s: it may not have been applied.")
        elif reply.code == m.E_UNAVAILABLE:
            await query.answer(f"Session {prompt.session} is not running any more.")
            outcome = "⌛ The session stopped before the answer: nothing was run."
        else:
            await query.answer("Not applied.")
            outcome = f"⚠️ Not applied: {reply.message}"
        shown = prompt_render.chunk(prompt.text, outcome)
        await reliably(partial(self.out.put, chat, prompt.message_id or mid, shown), "permission")

    async def grant(self, update: Update, ctx: Ctx) -> None:
        """A "Revoke" button of /permissions: the worker withdraws that grant."""
        query, chat, mid = _query(update)
        tap = callbacks.parse_grant(query.data or "")
        if tap is None:
            await query.answer()
            return
        reply = await self.chat.request(tap.session, m.RevokeGrant(id=m.new_id(),
                                        grant_id=tap.grant_id), self.answer_timeout)
        if isinstance(reply, m.Ok):
            await query.answer("Revoked.")
            text = f"Grant revoked: session {tap.session} asks again next time."
        elif reply is None:
            await query.answer("No answer.")
            text = (f"Session {tap.session} did not answer within {self.answer_timeout:.0f} s:"
                    " tap Revoke again.")
        elif reply.code == m.E_UNAVAILABLE:
            await query.answer("Not running.")
            text = (f"Session {tap.session} is not running: send it a message to start it,"
                    " then /permissions again.")
        else:
            await query.answer("Not revoked.")
            text = reply.message
        await say(self.out, chat, text)

    async def switch(self, update: Update, ctx: Ctx) -> None:
        query, chat, _ = _query(update)
        session = callbacks.parse_switch(query.data or "")
        if session is None:
            await query.answer()
            return
        self.journal.set_active(chat, session)
        self.delivery.on_change()  # the live status marks the new active session
        await query.answer(f"Active session: {session}")
        await say(self.out, chat, f"Active session: {session}.")

    async def topic(self, update: Update, ctx: Ctx) -> None:
        """The live status's "Open NAME" in a private chat with topics: a line in NAME's topic,
        which Telegram then shows with a badge (no link leads into a private chat's topic)."""
        query, chat, _ = _query(update)
        session = callbacks.parse_topic(query.data or "")
        thread = None
        if session is not None and self.topics is not None:
            thread = self.topics.map.thread(chat, session)
        if session is None or thread is None:
            await query.answer("That session has no topic here any more: see /sessions.")
            return
        await query.answer(f"{session}: its topic has a new line; open it to write there.")
        with place.in_thread(thread):
            mid = await reliably(partial(self.out.send, chat, Chunk(
                f"📍 {session} is here: write in this topic to talk to it.")), "topic_pointer")
        if mid is not None:
            self.journal.remember_sent(chat, mid, session)

    async def remove(self, update: Update, ctx: Ctx) -> None:
        query, chat, mid = _query(update)
        tap = callbacks.parse_remove(query.data or "")
        if tap is None:
            await query.answer()
            return
        name = tap.name
        if not tap.confirmed:
            await query.answer("Kept.")
            await self._edit(chat, mid, f"Kept session {name}.", "remove")
            return
        await query.answer(f"Removing {name}…")
        try:
            result = await self.supervisor.call(m.RemoveSession(id=m.new_id(), name=name),
                                                timeout=60.0)
        except Refused as exc:
            await self._edit(chat, mid, str(exc), "remove")
            return
        await self.couriers.forget(name)
        await self.delivery.forget(name)
        here = place.thread()
        in_topic = (self.topics is not None and here is not None
                    and self.topics.map.session_at(chat, here) == name)
        if self.topics is not None:
            await self.topics.delete(name)
        self.journal.forget_session(name)
        # The supervisor's lines past "removed": what became of a project worktree.
        said = [line for r in getattr(result, "results", []) for line in
                r.message.splitlines()[1:]]
        with place.in_thread(None if in_topic else place.thread()):  # its topic is gone
            await self._edit(chat, mid, " ".join([
                f"Session {name} removed: its history, work folder and the bot's records of it"
                " are deleted.", *said]), "remove")

    async def retry(self, update: Update, ctx: Ctx) -> None:
        query, chat, mid = _query(update)
        n = callbacks.parse_retry(query.data or "")
        found = self.journal.take_retry(n) if n is not None else None
        await reliably(partial(self.out.remove_buttons, chat, mid), "buttons")
        if found is None:
            await query.answer("This message was already sent again.")
            return
        session, chat_id, text = found
        # A key of its own: the stopped turn's key is done in the worker's inbox.
        key = f"tg:{chat_id}:retry-{n}"
        self.journal.add_handoff(Handoff(key, session, chat_id, text, None, [], time.time()))
        self.couriers.kick(session)
        log.info("event=retry session=%s n=%d", session, n)
        await query.answer("Sent again.")

    async def budget(self, update: Update, ctx: Ctx) -> None:
        """The button of a budget hold: the worker raises that budget for today and runs the
        waiting message."""
        query, chat, mid = _query(update)
        tap = callbacks.parse_budget(query.data or "")
        if tap is None:
            await query.answer()
            return
        session, kind = tap
        text = await session_commands.ask(self.chat, session, "raise_budget", kind, chat)
        await query.answer("Raised." if text.startswith("Raised") else "Not raised.")
        await reliably(partial(self.out.remove_buttons, chat, mid), "buttons")
        await say(self.out, chat, text)

    async def unknown(self, update: Update, ctx: Ctx) -> None:
        query, _, _ = _query(update)
        await query.answer("This button is no longer valid.")
