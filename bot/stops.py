"""Stop: the user ends a streaming answer, from Telegram's own Stop on a native draft (the
`stopped_message_generation` update, Bot API 10.3) or from the ⏹ button on an answer streamed
by edits (callback data `st:NAME`, bot.callbacks).

Either one interrupts that session's running turn exactly as /cancel does (a `Cancel` to its
worker): the turn ends with what was written so far and is never run again. A Stop names its
draft, not its session: bot.delivery remembers which session each native draft it started
belongs to (`Delivery.stopped`), so a Stop for a draft it does not know is logged and ignored.

PTB 22.8 does not know the update type: it arrives in `Update.api_kwargs`, which `stop_of`
reads (pure). It must never run a turn or change what the chat shows; the turn's end does that.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from telegram import Update
from telegram.ext import BaseHandler, ContextTypes

from bot import callbacks
from bot.chat import ChatServer
from bot.delivery import Delivery
from bot.render import Chunk
from bot.telegram_out import TelegramOut, reliably
from wire import messages as m

log = logging.getLogger(__name__)

UPDATE_KIND = "stopped_message_generation"
CANCEL_TIMEOUT = 30.0


@dataclass(frozen=True)
class Stop:
    """One stopped_message_generation: the draft the user stopped."""

    chat_id: int
    chat_type: str
    thread_id: int | None
    draft_id: int

    @property
    def key(self) -> tuple[int, int | None, int]:
        return (self.chat_id, self.thread_id, self.draft_id)


def stop_of(update: object) -> Stop | None:
    """The Stop an update carries, or None (another kind, or not well-formed)."""
    extra = getattr(update, "api_kwargs", None) or {}
    raw = extra.get(UPDATE_KIND)
    if not isinstance(raw, dict):
        return None
    chat = raw.get("chat")
    draft_id = raw.get("draft_id")
    thread = raw.get("message_thread_id")
    if (not isinstance(chat, dict) or not isinstance(chat.get("id"), int)
            or not isinstance(draft_id, int) or isinstance(draft_id, bool)
            or not (thread is None or isinstance(thread, int))):
        return None
    return Stop(int(chat["id"]), str(chat.get("type") or ""), thread, draft_id)


def stopper_id(update: object) -> int | None:
    """Who tapped Stop: drafts exist only in private chats, whose id is the user's."""
    stop = stop_of(update)
    return stop.chat_id if stop is not None and stop.chat_type == "private" else None


class StopHandler(BaseHandler[Update, Any, None]):
    """Matches a stopped_message_generation update (PTB has no handler for it)."""

    def check_update(self, update: object) -> bool:
        return isinstance(update, Update) and stop_of(update) is not None


@dataclass
class Stops:
    delivery: Delivery
    chat: ChatServer
    out: TelegramOut

    async def cancel(self, session: str, chat_id: int) -> None:
        """Interrupt the session's turn; the chat hears only of a failure (one sentence)."""
        answer = await self.chat.request(session, m.Cancel(id=m.new_id()), CANCEL_TIMEOUT)
        if isinstance(answer, m.Ok):
            log.info("event=turn_stopped session=%s", session)
            return
        if answer is None:
            log.warning("event=stop_unanswered session=%s", session)
            text = f"Session {session} did not answer the Stop: try /cancel, or /restart {session}."
        elif answer.code in (m.E_UNAVAILABLE, m.E_STATE):
            log.info("event=stop_nothing_running session=%s", session)
            return  # the turn had ended already: what it wrote is in the chat
        else:
            text = answer.message
        await reliably(lambda: self.out.send(chat_id, Chunk(text)), "stop_failed")

    async def on_stopped(self, update: Update, ctx: ContextTypes.DEFAULT_TYPE) -> None:
        stop = stop_of(update)
        assert stop is not None
        session = self.delivery.stopped(stop.key)
        if session is None:
            log.info("event=stop_unknown_draft chat_id=%d draft_id=%d", stop.chat_id,
                     stop.draft_id)
            return
        await self.cancel(session, stop.chat_id)

    async def on_tap(self, update: Update, ctx: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        session = callbacks.parse_stop(query.data or "")
        if session is None or query.message is None:
            await query.answer("This button is not valid any more.")
            return
        await query.answer(f"Stopping {session}.")  # at once: a Cancel can take seconds
        await self.cancel(session, query.message.chat.id)
