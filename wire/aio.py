"""Small asyncio helpers that every role needs and that Python 3.11 gets subtly wrong.

`asyncio.wait_for` in 3.11 can swallow a cancellation when the awaited thing finishes at the
same moment (fixed in 3.12): a `while True: wait_for(event.wait(), t)` loop then never ends and
a TaskGroup waits for it forever. `wait_event` uses `asyncio.timeout`, which does not.
"""
from __future__ import annotations

import asyncio


async def wait_event(event: asyncio.Event, timeout: float) -> bool:
    """Wait until `event` is set or `timeout` passes; True if it was set. Never eats a cancel."""
    if event.is_set():
        return True
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return event.is_set()
    return True
