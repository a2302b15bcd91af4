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
    first_call = asyncio.Event()

    async def call(chat: int) -> Any:
        calls.append((chat, time.monotonic()))
        first_call.set()
        if floods.get(chat):
            floods[chat] -= 1
            raise RetryAfter(1)
        return {"ok": chat}

    async def request(chat: int, rl_args: Any = None) -> Any:
        return await rl.process_request(call, (chat,), {}, "sendMessage", {"chat_id": chat},
                                        rl_args)

    slow = asyncio.create_task(request(1))
    await asyncio.wait_for(first_call.wait(), 5)  # chat 1 got its RetryAfter
    assert await request(2) == {"ok": 2}  # chat 2 did not wait for chat 1's penalty...
    assert not slow.done()
    with pytest.raises(RetryAfter):  # ...which still holds: a droppable call is refused at once
        await request(1, DROPPABLE)
    assert await slow == {"ok": 1}
    assert [c for c, _ in calls] == [1, 2, 1]
    assert calls[2][1] - calls[0][1] >= 0.95  # chat 1's retry honoured its retry_after
