"""Flood control per chat: a RetryAfter pauses that chat only, never the others.

PTB's AIORateLimiter pauses every request after any RetryAfter, so a 429 storm in one chat would
stall all of them. `ChatRateLimiter` keeps a "blocked until" time per chat: a request for a
blocked chat waits (or, if the caller marked it droppable — a draft edit, a typing action — is
refused at once with the RetryAfter, so ephemeral traffic never queues up behind a flood
penalty). All requests share one overall budget of about 30 per second, and groups get Telegram's
20 per minute.
"""
from __future__ import annotations

import asyncio
import datetime as dtm
import logging
import time
import warnings
from collections.abc import Callable, Coroutine
from typing import Any

from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter

log = logging.getLogger(__name__)

JSONDict = dict[str, Any]
DROPPABLE = {"droppable": True}


def retry_seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = exc.retry_after
    if isinstance(value, dtm.timedelta):
        return value.total_seconds()
    return float(value)


class Bucket:
    """A token bucket: `rate` tokens per `per` seconds."""

    def __init__(self, rate: float, per: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = rate
        self.fill = rate / per
        self.tokens = rate
        self.clock = clock
        self.stamp = clock()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.fill)
        self.stamp = now

    async def take(self) -> None:
        async with self._lock:
            while True:
                self._refill()
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                await asyncio.sleep((1 - self.tokens) / self.fill)


class ChatRateLimiter(BaseRateLimiter[dict[str, Any]]):
    def __init__(self, *, overall_per_second: float = 30.0, group_per_minute: float = 20.0,
                 max_retries: int = 50) -> None:
        self.overall_per_second = overall_per_second
        self.group_per_minute = group_per_minute
        self.max_retries = max_retries
        self._overall: Bucket | None = None
        self._groups: dict[int, Bucket] = {}
        self._blocked_until: dict[object, float] = {}

    async def initialize(self) -> None:
        self._overall = Bucket(self.overall_per_second, 1.0)

    async def shutdown(self) -> None:
        self._groups.clear()

    def blocked_for(self, chat_id: object) -> float:
        """Seconds left of this chat's flood penalty (0 when none)."""
        until = self._blocked_until.get(chat_id)
        if until is None:
            return 0.0
        left = until - time.monotonic()
        if left <= 0:
            self._blocked_until.pop(chat_id, None)
            return 0.0
        return left

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | JSONDict | list[JSONDict]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: dict[str, Any] | None,
    ) -> bool | JSONDict | list[JSONDict]:
        chat_id = data.get("chat_id")
        droppable = bool(rate_limit_args and rate_limit_args.get("droppable"))
        tries = 0
        while True:
            left = self.blocked_for(chat_id)
            if left > 0:
                if droppable:
                    raise RetryAfter(max(1, int(left + 0.999)))
                await asyncio.sleep(left)
                continue
            if self._overall is None:
                await self.initialize()
            assert self._overall is not None
            await self._overall.take()
            if isinstance(chat_id, int) and chat_id < 0:
                bucket = self._groups.setdefault(chat_id, Bucket(self.group_per_minute, 60.0))
                await bucket.take()
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as exc:
                wait = retry_seconds(exc)
                until = time.monotonic() + wait
                self._blocked_until[chat_id] = max(self._blocked_until.get(chat_id, 0.0), until)
                tries += 1
                log.warning(
                    "event=flood_wait chat_id=%s method=%s retry_after=%.1f try=%d",
                    chat_id, endpoint, wait, tries,
                )
                if droppable or tries > self.max_retries:
                    raise
