"""A live draft: the task that shows one streamed answer in one chat, edited in place.

bot.draft decides what to send or edit next (pure); this is the shell that does it: deltas are
fed in as they arrive, and one task per draft makes the Telegram calls, spaced by the chat's
`Throttle`. Every call here is droppable: a lost edit only means the draft lags, because the
final `AssistantText` replaces the draft anyway. The ids of the draft's messages are reported
as they appear (`on_ids`), so bot.db can remember them and a restarted bot reuses or replaces
them instead of leaving a half-streamed message behind.

It must never write bot.db itself or decide what the final answer looks like (bot.delivery).
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from telegram import InlineKeyboardMarkup
from telegram.error import BadRequest, NetworkError, RetryAfter

from bot.draft import Draft, Send, Throttle
from bot.ratelimit import retry_seconds
from bot.render import Chunk
from bot.telegram_out import Gone, TelegramOut
from wire.aio import wait_event

log = logging.getLogger(__name__)


class DraftStreamer:
    """One streamed answer in one chat: deltas in, throttled sends/edits out (all droppable)."""

    def __init__(self, out: TelegramOut, chat_id: int, throttle: Throttle,
                 on_ids: Callable[[list[int]], None], earlier: list[int] | None = None,
                 markup: InlineKeyboardMarkup | None = None) -> None:
        """`earlier`: the draft messages a previous bot process left (the last one is reused);
        `markup`: the buttons every streamed message carries while it streams (the ⏹)."""
        self.out = out
        self.markup = markup
        self.chat_id = chat_id
        self.throttle = throttle
        self.prefix = list(earlier or [])[:-1]
        self._on_ids = on_ids
        self.draft = Draft()
        if earlier:
            self.draft.current.message_id = earlier[-1]
        self._changed = asyncio.Event()
        self._stop = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"draft-{chat_id}")

    def feed(self, text: str) -> None:
        self.draft.append(text)
        self._changed.set()

    async def _pause(self, seconds: float) -> None:
        if seconds > 0:
            await wait_event(self._stop, seconds)

    async def _run(self) -> None:
        while not self._stop.is_set():
            await self._changed.wait()
            self._changed.clear()
            while not self._stop.is_set():
                await self._pause(self.throttle.delay(time.monotonic()))
                if self._stop.is_set():
                    return
                action = self.draft.next_action()
                if action is None:
                    break
                try:
                    if isinstance(action, Send):
                        mid = await self.out.send(self.chat_id, Chunk(action.text), self.markup,
                                                droppable=True)
                        self.draft.done(action, mid)
                        self._on_ids(self.prefix + self.draft.message_ids())
                    else:
                        await self.out.edit(self.chat_id, action.message_id, Chunk(action.text),
                                            self.markup, droppable=True)
                        self.draft.done(action)
                except Gone:
                    self.draft.lost()
                except RetryAfter as exc:
                    await self._pause(min(retry_seconds(exc), 60.0))
                except (NetworkError, BadRequest) as exc:
                    log.info("event=draft_skipped chat_id=%s error=%r", self.chat_id, str(exc))
                    await self._pause(self.throttle.interval)
                self.throttle.mark(time.monotonic())

    async def finish(self) -> list[tuple[int, str]]:
        """Stop streaming; the draft's messages as (message_id, text shown)."""
        self._stop.set()
        self._changed.set()
        try:
            await self._task
        except Exception:
            log.exception("event=draft_failed chat_id=%s", self.chat_id)
        shown = [(s.message_id, s.shown) for s in self.draft.messages if s.message_id is not None]
        return [(mid, "") for mid in self.prefix] + shown

    async def cancel(self) -> None:
        self._task.cancel()
        try:
            await self._task
        except (asyncio.CancelledError, Exception):  # noqa: BLE001, S110 - ending anyway
            pass
