"""bot.ratelimit: a flood wait in one chat never stalls another."""
from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from telegram.error import RetryAfter

from bot.ratelimit import DROPPABLE, ChatRateLimiter


async def test_retry_after_pauses_only_that_chat() -> None:
    rl = ChatRateLimiter()
    await rl.initialize()
    calls: list[tuple[int, float]] = []
    floods = {1: 1}

    async def call(chat: int) -> Any:
        calls.append((chat, time.monotonic()))
        if floods.get(chat):
            floods[chat] -= 1
            raise RetryAfter(1)
        return {"ok": chat}

    async def request(chat: int, rl_args: Any = None) -> Any:
        return await rl.process_request(call, (chat,), {}, "sendMessage", {"chat_id": chat},
                                        rl_args)

    t0 = time.monotonic()
    slow = asyncio.create_task(request(1))
    await asyncio.sleep(0.05)
    assert await request(2) == {"ok": 2}
    assert time.monotonic() - t0 < 0.5  # chat 2 did not wait for chat 1's penalty
    with pytest.raises(RetryAfter):  # a droppable call for the blocked chat is refused at once
        await request(1, DROPPABLE)
    assert await slow == {"ok": 1}
    assert time.monotonic() - t0 >= 0.95
    assert [c for c, _ in calls] == [1, 2, 1]
