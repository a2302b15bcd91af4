"""The allow-list: only the owner's updates reach a handler.

`Gate.check` runs as a TypeHandler(Update) in group -1 and raises ApplicationHandlerStop for any
update whose sender is not allowed (messages, commands, button taps, files; private chats and
groups alike), so no handler runs for it: no session, no file, no process, nothing forwarded. A
stranger gets at most one short refusal per interval, and the log gets one line without the
message text. The poller uses `allowed` too, so a stranger's update is never journaled.
"""
from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import ApplicationHandlerStop, ContextTypes

log = logging.getLogger(__name__)

REFUSAL = "This is a private bot."
REFUSAL_INTERVAL = 600.0
MAX_REMEMBERED = 4096


def kind_of(update: Update) -> str:
    for name in ("callback_query", "message", "edited_message", "channel_post", "my_chat_member",
                 "chat_member", "inline_query", "chat_join_request"):
        if getattr(update, name, None) is not None:
            return name
    return "other"


class Gate:
    def __init__(self, allowed_user_ids: Iterable[int], *, interval: float = REFUSAL_INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.allowed_ids = frozenset(allowed_user_ids)
        self.interval = interval
        self.clock = clock
        self._last_refusal: OrderedDict[int, float] = OrderedDict()

    def allow(self, user_ids: Iterable[int]) -> None:
        """The allow-list a reload brought: it decides from the next update on."""
        self.allowed_ids = frozenset(user_ids)

    def allowed(self, update: Update) -> bool:
        user = update.effective_user
        return user is not None and user.id in self.allowed_ids

    def should_refuse(self, user_id: int) -> bool:
        """True at most once per interval per user (memory only: strangers leave no trace)."""
        now = self.clock()
        last = self._last_refusal.get(user_id)
        if last is not None and now - last < self.interval:
            return False
        self._last_refusal[user_id] = now
        self._last_refusal.move_to_end(user_id)
        while len(self._last_refusal) > MAX_REMEMBERED:
            self._last_refusal.popitem(last=False)
        return True

    async def check(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if self.allowed(update):
            return
        user = update.effective_user
        chat = update.effective_chat
        log.warning(
            "event=stranger user_id=%s chat_id=%s kind=%s",
            user.id if user else None, chat.id if chat else None, kind_of(update),
        )
        refuse = user is not None and self.should_refuse(user.id)
        try:
            if update.callback_query is not None:
                # Always answered (or the stranger's button spins), with the text at most once.
                await update.callback_query.answer(REFUSAL if refuse else None)
            elif refuse and chat is not None and chat.type == "private":
                await context.bot.send_message(chat.id, REFUSAL)
        except TelegramError as exc:
            log.info("event=refusal_failed user_id=%s error=%r", user.id if user else None,
                     type(exc).__name__)
        raise ApplicationHandlerStop
