"""A Telegram that is not there yet, then answers 502 for a while, then comes back: the
sandbox's outage mode, and the bot's own start-up calls and getUpdates loop riding it out
(through the real python-telegram-bot)."""
from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from telegram import Bot, Update
from telegram.error import NetworkError

from bot import startup
from bot.gate import Gate
from bot.journal import Journal
from bot.poller import Poller
from sandbox.telegram_api import TelegramSandbox
from tests.support.net import free_port

pytestmark = [pytest.mark.timeout(60),
              pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")]

USER = 4242




async def test_a_timed_fault_answers_502_then_lets_calls_through() -> None:
    with TelegramSandbox() as tg:
        bot = Bot(**tg.bot_kwargs)
        tg.fault("5xx", seconds=1.0)
        t0 = time.monotonic()
        for _ in range(3):  # every call, not a count
            with pytest.raises(NetworkError, match="Bad Gateway"):
                await bot.get_me()
        while time.monotonic() - t0 < 1.2:
            await asyncio.sleep(0.05)
        assert (await bot.get_me()).username
        assert [c["status"] for c in tg.calls("getMe")] == [502, 502, 502, 200]


async def test_startup_rides_out_refused_then_502_then_gets_through() -> None:
    """Nothing listens on the port, then a sandbox there answers 502 for a while, then works."""
    port = free_port()
    token = "123456:" + "S" * 30
    bot = Bot(token, base_url=f"http://127.0.0.1:{port}/bot",
              base_file_url=f"http://127.0.0.1:{port}/file/bot")
    fast = startup.Delays(initial=0.1, cap=0.5)
    call = asyncio.ensure_future(startup.call("getMe", bot.initialize, delays=fast))
    await asyncio.sleep(1.0)  # connection refused meanwhile, retried
    assert not call.done()
    with TelegramSandbox(token=token, port=port, unavailable_seconds=1.5) as tg:
        async with asyncio.timeout(20):
            await call
        assert bot.username == "sandbox_bot"
        statuses = [c["status"] for c in tg.calls("getMe")]
        assert statuses[-1] == 200 and 502 in statuses
        await bot.shutdown()


async def test_the_poller_survives_refused_and_502_from_get_updates(tmp_path: Path) -> None:
    port = free_port()
    token = "123456:" + "P" * 30
    seen: list[str] = []

    class App:
        """Just what the poller uses of an Application: the real Bot, and where updates go."""

        bot = Bot(token, base_url=f"http://127.0.0.1:{port}/bot")

        async def process_update(self, update: Update) -> None:
            seen.append(update.message.text if update.message and update.message.text else "")

    app: Any = App()
    journal = Journal(tmp_path / "bot.db")
    poller = Poller(app, journal, Gate([USER]), timeout=1)
    task = asyncio.ensure_future(poller.run())
    try:
        await asyncio.sleep(1.5)  # connection refused: backs off, does not crash
        assert not task.done()
        with TelegramSandbox(token=token, port=port, unavailable_seconds=2.0) as tg:
            tg.send(USER, "sent while Telegram answered 502")
            async with asyncio.timeout(40):
                while not seen:
                    assert not task.done(), task
                    await asyncio.sleep(0.05)
            assert seen == ["sent while Telegram answered 502"]
            assert 502 in [c["status"] for c in tg.calls("getUpdates")]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        journal.close()
