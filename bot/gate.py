"""The allow-list: only the owner's updates reach a handler.

`Gate.check` runs as a TypeHandler(Update) in group -1 and raises ApplicationHandlerStop for any
update whose sender is not allowed (messages, commands, button taps, files; private chats and
groups alike), so no handler runs for it: no session, no file, no process, nothing forwarded. A
stranger gets at most one short refusal per interval, and the log gets one line without the
message text. The poller uses `allowed` too, so a stranger's update is never journaled.

Groups: a stranger who adds the bot to a group (a `my_chat_member` update making it a member)
gets it out again at once (`leaveChat`), without a word. With `[telegram] groups = false` the
bot takes no group at all: the owner's message, tap or adding it there gets one sentence in the
group and the bot leaves. `group_action` is the pure decision; `check` carries it out.
"""
from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import ApplicationHandlerStop, ContextTypes

from bot.stops import stopper_id

log = logging.getLogger(__name__)

REFUSAL = "This is a private bot."
GROUPS_OFF = ("This bot does not work in groups (telegram.groups is false): talk to it in a"
              " private chat, or set groups = true in the config.")
GROUP_TYPES = ("group", "supergroup")
MEMBER_STATES = ("member", "administrator", "restricted")
STAY, LEAVE, SAY_AND_LEAVE = "stay", "leave", "say_and_leave"
REFUSAL_INTERVAL = 600.0
MAX_REMEMBERED = 4096


def kind_of(update: Update) -> str:
    for name in ("callback_query", "message", "edited_message", "channel_post", "my_chat_member",
                 "chat_member", "inline_query", "chat_join_request"):
        if getattr(update, name, None) is not None:
            return name
    return "other"


def group_action(chat_type: str | None, allowed: bool, groups: bool, added: bool) -> str:
    """What the bot does about a group: STAY, LEAVE (silently) or SAY_AND_LEAVE (pure).

    `added`: the update is a my_chat_member that makes the bot a member (someone added it)."""
    if chat_type not in GROUP_TYPES:
        return STAY
    if not allowed:
        return LEAVE if added else STAY  # a stranger's words in the owner's group: just refused
    return STAY if groups else SAY_AND_LEAVE


class Gate:
    def __init__(self, allowed_user_ids: Iterable[int], *, groups: bool = True,
                 interval: float = REFUSAL_INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.allowed_ids = frozenset(allowed_user_ids)
        self.groups = groups
        self.interval = interval
        self.clock = clock
        self._last_refusal: OrderedDict[int, float] = OrderedDict()

    def allow(self, user_ids: Iterable[int]) -> None:
        """The allow-list a reload brought: it decides from the next update on."""
        self.allowed_ids = frozenset(user_ids)

    def allowed(self, update: Update) -> bool:
        user = update.effective_user
        if user is None:  # a Stop on a draft names only its private chat: the user's own id
            stopper = stopper_id(update)
            return stopper is not None and stopper in self.allowed_ids
        return user.id in self.allowed_ids

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
        await self._groups(update, context)
        if self.allowed(update):
            if update.my_chat_member is not None:
                raise ApplicationHandlerStop  # the owner added or removed the bot: nothing to run
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

    async def _groups(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Leave a group a stranger added us to, and every group when groups are off; then stop
        the update (ApplicationHandlerStop). Nothing happens for the groups we stay in."""
        chat = update.effective_chat
        member = update.my_chat_member
        if member is not None and member.new_chat_member.status not in MEMBER_STATES:
            if chat is not None and chat.type in GROUP_TYPES:
                raise ApplicationHandlerStop  # we were removed (or left): nothing to do
        action = group_action(chat.type if chat else None, self.allowed(update), self.groups,
                              member is not None)
        if action == STAY or chat is None:
            return
        user = update.effective_user
        log.warning("event=group_left chat_id=%s user_id=%s allowed=%s kind=%s", chat.id,
                    user.id if user else None, action == SAY_AND_LEAVE, kind_of(update))
        try:
            if action == SAY_AND_LEAVE:
                if update.callback_query is not None:
                    await update.callback_query.answer(GROUPS_OFF[:200])
                await context.bot.send_message(chat.id, GROUPS_OFF)
            elif update.callback_query is not None:
                await update.callback_query.answer()
            await context.bot.leave_chat(chat.id)
        except TelegramError as exc:
            log.info("event=group_leave_failed chat_id=%s error=%r", chat.id, type(exc).__name__)
        raise ApplicationHandlerStop
