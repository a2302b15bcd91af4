"""The bot's first calls to Telegram (getMe, deleteWebhook, setMyCommands), retried until they work.

After a reboot the network or Telegram can be out of reach for a minute; the bot is the user's
only way in, so it waits instead of dying: network errors, timeouts and 5xx (PTB raises all of
them as NetworkError) and 429 (RetryAfter, whose wait is honoured) are retried with capped
exponential backoff and jitter, forever. Each failure is logged once, and said in one sentence
on stderr, where the supervisor reads why the bot is not through yet.

A refused token (InvalidToken: 401/404 on getMe) is never retried here: retrying cannot fix it.
It is a one-sentence stop, and the supervisor's own retries (never giving the bot up) take over.

`delay` is pure; `call` is the thin async wrapper. Never puts the token in a sentence or a log
line (PTB's InvalidToken message carries it; it is never printed).
"""
from __future__ import annotations

import asyncio
import datetime
import logging
import random
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from telegram.error import BadRequest, InvalidToken, NetworkError, RetryAfter

from wire.logs import redact

log = logging.getLogger(__name__)

T = TypeVar("T")

class TokenRefused(Exception):
    """Telegram refused the token: str() is the one sentence to stop with."""


TOKEN_REFUSED = ("Telegram refused the bot token: check the token in the config (telegram.token"
                 " or its environment variable), then restart.")


@dataclass(frozen=True)
class Delays:
    """Seconds before try n+1: `initial * 2**(n-1)` capped at `cap`, times a jitter in
    [0.5, 1.0]; a 429's retry_after is waited in full (Telegram asked for exactly that)."""

    initial: float = 0.5
    cap: float = 10.0  # Telegram back -> the bot through within seconds, not minutes

    def delay(self, failures: int, jitter: float, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return max(0.0, retry_after)
        base = min(self.cap, self.initial * (2 ** max(0, failures - 1)))
        return float(base * (0.5 + 0.5 * jitter))


def retry_after_seconds(exc: RetryAfter) -> float:
    value = exc.retry_after  # an int, or a timedelta in newer PTB
    return value.total_seconds() if isinstance(value, datetime.timedelta) else float(value)


def reason(exc: Exception) -> str:
    """What went wrong, in a few words, without the token."""
    text = str(exc).strip() or type(exc).__name__
    return redact(text)[:200]


async def call(what: str, fn: Callable[[], Awaitable[T]], *, delays: Delays = Delays(),
               rng: Callable[[], float] = random.random,
               sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> T:
    """`await fn()` until it works; raise TokenRefused for a refused token.

    Any other Telegram error (BadRequest, Forbidden) is raised: it is not a matter of waiting."""
    failures = 0
    while True:
        retry_after: float | None = None
        try:
            return await fn()
        except InvalidToken:
            log.error("event=token_refused call=%s", what)
            raise TokenRefused(TOKEN_REFUSED) from None
        except BadRequest:
            raise  # a NetworkError in PTB's tree, but a wrong call, not a wait
        except RetryAfter as exc:
            retry_after = retry_after_seconds(exc)
            why = f"flood control, retry after {retry_after:g}s"
        except NetworkError as exc:  # connection refused, timeouts, 5xx: all wait the same
            why = reason(exc)
        failures += 1
        wait = delays.delay(failures, rng(), retry_after)
        log.warning("event=telegram_unreachable call=%s error=%r failures=%d retry_in=%.1f",
                    what, why, failures, wait)
        print(f"Telegram is not answering {what} ({why}): trying again in {wait:.1f}s.",
              file=sys.stderr, flush=True)
        await sleep(wait)


class Stopped(Exception):
    """Asked to stop (SIGTERM) while still waiting for Telegram: end at once, cleanly."""


async def unless_stopped(stop: asyncio.Event, work: Awaitable[T]) -> T:
    """`await work`, unless `stop` is set first (then Stopped): a bot that waits for Telegram
    forever must still stop within moments when the supervisor asks."""
    task = asyncio.ensure_future(work)
    waiter = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in (task, waiter):
            if not t.done():
                t.cancel()
        await asyncio.gather(task, waiter, return_exceptions=True)
    if task.done() and not task.cancelled():
        return task.result()  # its value, or its own error (TokenRefused)
    raise Stopped
