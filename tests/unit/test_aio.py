"""wire.aio.wait_event: a loop waiting on an event ends when cancelled, even when the event is
set in the same instant (asyncio.wait_for in Python 3.11 can swallow that cancel; the
supervisor's sweep loop once hung its shutdown that way)."""
from __future__ import annotations

import asyncio

import pytest

from wire.aio import wait_event

pytestmark = pytest.mark.timeout(20)


async def test_set_and_timeout() -> None:
    ev = asyncio.Event()
    assert await wait_event(ev, 0.01) is False
    ev.set()
    assert await wait_event(ev, 10) is True


async def _poke_loop(ev: asyncio.Event, rounds: list[int]) -> None:
    while True:
        await wait_event(ev, 10)
        ev.clear()
        rounds.append(1)


async def test_cancel_is_never_swallowed_when_the_event_fires_at_the_same_time() -> None:
    for _ in range(200):
        ev = asyncio.Event()
        rounds: list[int] = []
        task = asyncio.create_task(_poke_loop(ev, rounds))
        await asyncio.sleep(0)  # let it start waiting
        ev.set()
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=2)
        assert task in done, "the loop ignored its cancellation"
        assert task.cancelled()
