"""A native draft: one streamed answer shown with Telegram's sendMessageDraft (Bot API 9.3+).

In a private chat the answer streams into a draft instead of a message edited in place: the
empty draft ("Thinking…", Bot API 10.0) appears when the turn has written nothing for
`THINKING_AFTER` seconds, in place of the typing indicator; deltas change it at most every
`interval` seconds (drafts spend no message budget, so this is far below the edit throttle),
and it carries `can_stop` (Bot API 10.3), so Telegram
shows its own Stop button. The draft is an ephemeral preview: the final text is still sent as a
normal message by bot.delivery, and that message replaces the draft on the user's screen. While
nothing changes the draft is sent again before Telegram's ~30 s expiry, so a long tool run keeps
its "Thinking…".

PTB 22.8 knows Bot API 10.0: `send_message_draft` takes `can_stop` (10.3) through its
`api_kwargs`, which is the same request `do_api_request` would make, without its warning.
A refusal (400: drafts not allowed in this chat, or not at all) ends the draft and is reported
through `refused`, so bot.delivery falls back to edits for that chat; a flood wait or a network
error only skips a change (droppable, like an edit of a draft). After the user tapped Stop
(`stopped()`), nothing is sent any more.

It must never send a message, write bot.db, or decide what the final answer looks like.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

from telegram.error import BadRequest, NetworkError, RetryAfter

from bot.ratelimit import DROPPABLE, retry_seconds
from wire.aio import wait_event

log = logging.getLogger(__name__)

DRAFT_LIMIT = 4096
SHOW_CHARS = 4000  # a longer stream shows its tail: the newest words are what is being written
KEEPALIVE_SECONDS = 20.0  # Telegram drops a draft ~30 s after its last change
# "Thinking…" waits this long for the first words: when they come sooner (a warm turn's first
# delta), they are the draft's first call, and no call for an empty draft stands in their way
# (at 0.1 s the empty draft was often still in flight when the words came: a few ms later).
THINKING_AFTER = 0.5
# From a random start: a restarted bot never reuses the id of a draft the last one left on screen
# (a Stop on that one must not stop this process's answer of the same number).
_ids = itertools.count(secrets.randbelow(2**30) + 1)


def draft_text(text: str, limit: int = SHOW_CHARS) -> str:
    """What the draft shows of the text streamed so far (pure): all of it, or its tail."""
    if len(text) <= limit:
        return text
    tail = text[-(limit - 2):]
    cut = tail.find(" ")
    if 0 <= cut < 200:
        tail = tail[cut + 1:]
    return "… " + tail


def new_draft_id() -> int:
    """A draft id unique within this bot process (positive, as Telegram requires non-zero)."""
    return next(_ids)


class NativeDraft:
    """One answer in one private chat (or one topic of it) as a sendMessageDraft stream."""

    def __init__(self, bot: Any, chat_id: int, interval: float, *,
                 thread_id: int | None = None, can_stop: bool = True,
                 on_refused: Callable[[NativeDraft], None] | None = None) -> None:
        self.bot = bot
        self._on_refused = on_refused
        self.chat_id = chat_id
        self.thread_id = thread_id
        self.draft_id = new_draft_id()
        self.interval = interval
        self.can_stop = can_stop
        self.text = ""
        self.refused: str | None = None  # Telegram's sentence when it refused drafts here
        self.first_shown: float | None = None  # monotonic time of the first text on screen
        self._shown: str | None = None
        self._stopped = False
        self._changed = asyncio.Event()
        self._end = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"native-draft-{chat_id}-{self.draft_id}")

    @property
    def key(self) -> tuple[int, int | None, int]:
        """What a stopped_message_generation update names: (chat, topic, draft id)."""
        return (self.chat_id, self.thread_id, self.draft_id)

    def feed(self, text: str) -> None:
        self.text += text
        self._changed.set()

    def stopped(self) -> None:
        """The user tapped Stop: Telegram takes no more changes of this draft."""
        self._stopped = True
        self._end.set()

    async def _send(self, text: str) -> bool:
        """One change of the draft; False when the draft must end (refused)."""
        newer = {"can_stop": True} if self.can_stop else None
        try:
            await self.bot.send_message_draft(self.chat_id, self.draft_id, text,
                                              message_thread_id=self.thread_id,
                                              api_kwargs=newer, rate_limit_args=DROPPABLE)
        except RetryAfter as exc:
            await wait_event(self._end, min(retry_seconds(exc), 60.0))
            return True
        except BadRequest as exc:
            if "too long" in str(exc).lower():
                return True
            self.refused = str(exc)
            log.info("event=draft_refused chat_id=%s error=%r", self.chat_id, str(exc))
            return False
        except NetworkError as exc:
            log.info("event=draft_skipped chat_id=%s error=%r", self.chat_id, str(exc))
            return True
        if text and self.first_shown is None:
            self.first_shown = time.monotonic()
        self._shown = text
        return True

    async def _run(self) -> None:
        last = 0.0
        first = True
        while not self._end.is_set():
            # The first pass sends "Thinking…" unless the first words come within THINKING_AFTER.
            await wait_event(self._changed, THINKING_AFTER if first else KEEPALIVE_SECONDS)
            first = False
            if self._end.is_set():
                return
            self._changed.clear()
            text = draft_text(self.text)
            if text == self._shown and time.monotonic() - last < KEEPALIVE_SECONDS - 1:
                continue
            if not await self._send(text):
                self._end.set()
                if self._on_refused is not None:
                    self._on_refused(self)
                return
            last = time.monotonic()
            if text:  # the first words follow the "Thinking…" at once; then the throttle
                await wait_event(self._end, self.interval)

    async def finish(self) -> list[tuple[int, str]]:
        """Stop streaming. A draft leaves no message behind: always []."""
        self._end.set()
        await self.cancel()
        return []

    async def cancel(self) -> None:
        self._end.set()
        self._task.cancel()
        try:
            await self._task
        except (asyncio.CancelledError, Exception):  # noqa: BLE001, S110 - ending anyway
            pass
