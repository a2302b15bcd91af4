"""The bot's HTTP to Telegram (bot.transport): real python-telegram-bot over aiohttp against the
sandbox Bot API. Calls, long polls, file uploads and downloads go through; a Telegram that is not
there, drops the connection or answers too slowly becomes PTB's own NetworkError or TimedOut, and
no sentence carries the token."""
from __future__ import annotations

import pytest
from telegram import Bot
from telegram.error import BadRequest, NetworkError, TimedOut

from bot.transport import AiohttpRequest
from sandbox.telegram_api import TelegramSandbox
from tests.support.net import free_port

pytestmark = pytest.mark.timeout(60)

USER = 4242


def aio_bot(**kwargs: str) -> Bot:
    return Bot(**kwargs, request=AiohttpRequest(), get_updates_request=AiohttpRequest(1))


async def test_calls_long_polls_and_files_go_through() -> None:
    with TelegramSandbox() as tg:
        async with aio_bot(**tg.bot_kwargs) as bot:
            assert (await bot.get_me()).username
            sent = tg.send(USER, "hello")
            updates = await bot.get_updates(timeout=5)
            assert [u.message.text for u in updates if u.message] == ["hello"]
            assert updates[-1].update_id == sent["update"]["update_id"]
            msg = await bot.send_message(USER, "a *reply*", parse_mode="Markdown")
            assert msg.text == "a reply"
            doc = await bot.send_document(USER, document=b"x" * 70_000, filename="log.txt",
                                          caption="the log")
            assert doc.document is not None and doc.document.file_name == "log.txt"
            got = await (await bot.get_file(doc.document.file_id)).download_as_bytearray()
            assert bytes(got) == b"x" * 70_000
            with pytest.raises(BadRequest, match="(?i)message is too long"):
                await bot.send_message(USER, "y" * 5000)
        shown = [m for m in tg.chat(USER) if m.get("from_bot")]
        assert [m.get("text") or m.get("caption") for m in shown] == ["a reply", "the log"]


async def test_no_telegram_is_a_network_error_without_the_token() -> None:
    token = "123456:" + "S" * 30
    port = free_port()
    bot = aio_bot(token=token, base_url=f"http://127.0.0.1:{port}/bot",
                  base_file_url=f"http://127.0.0.1:{port}/file/bot")
    await bot.request.initialize()  # type: ignore[attr-defined]
    try:
        with pytest.raises(NetworkError) as refused:
            await bot.get_me()
        assert not isinstance(refused.value, TimedOut)
        assert token not in str(refused.value) and "S" * 30 not in str(refused.value)
    finally:
        await bot.request.shutdown()  # type: ignore[attr-defined]


async def test_a_dropped_connection_and_a_slow_answer_are_ptb_errors() -> None:
    with TelegramSandbox() as tg:
        async with aio_bot(**tg.bot_kwargs) as bot:
            tg.send(USER, "hi")
            tg.fault("drop_before", method="sendMessage")
            with pytest.raises(NetworkError) as dropped:
                await bot.send_message(USER, "lost")
            assert tg.token not in str(dropped.value)
            tg.fault("slow", method="sendMessage", delay=3.0)
            with pytest.raises(TimedOut):
                await bot.send_message(USER, "late", read_timeout=0.5)
            assert (await bot.send_message(USER, "fine")).text == "fine"
