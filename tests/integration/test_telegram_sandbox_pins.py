"""The sandbox Telegram's pinned messages through the real python-telegram-bot: pin (with its
service message), unpin one or the newest, unpin all, and Telegram's error answers."""

from __future__ import annotations

import pytest
from telegram import Bot
from telegram.error import BadRequest

from sandbox.telegram_api import TelegramSandbox

pytestmark = pytest.mark.timeout(30)

USER = 4343
GROUP = -100778


@pytest.fixture(scope="module")
def server():
    with TelegramSandbox() as tg:
        yield tg
    assert tg.returncode == 0


@pytest.fixture
def tg(server):
    server.reset()
    return server


def _pinned(tg, chat_id: int) -> list[int]:
    return [m["message_id"] for m in tg.chat(chat_id) if m["pinned"]]


async def test_pin_unpin_and_their_errors(tg):
    tg.send(USER, "hi")
    async with Bot(**tg.bot_kwargs) as bot:
        a = await bot.send_message(USER, "status one")
        b = await bot.send_message(USER, "status two")
        assert await bot.pin_chat_message(USER, a.message_id, disable_notification=True)
        assert await bot.pin_chat_message(USER, b.message_id)
        assert _pinned(tg, USER) == [a.message_id, b.message_id]
        # Telegram shows each pin as a service message from the bot, which cannot be pinned.
        service = [m for m in tg.chat(USER) if m["service"]]
        assert [s["service"]["pinned_message"]["text"] for s in service] == [
            "status one", "status two"]
        with pytest.raises(BadRequest, match="(?i)can't be pinned"):
            await bot.pin_chat_message(USER, service[0]["message_id"])
        with pytest.raises(BadRequest, match="(?i)message to pin not found"):
            await bot.pin_chat_message(USER, 9999)
        # Without an id the newest pin goes; with one, that one; a second unpin is still True.
        assert await bot.unpin_chat_message(USER)
        assert _pinned(tg, USER) == [a.message_id]
        assert await bot.unpin_chat_message(USER, b.message_id)
        with pytest.raises(BadRequest, match="(?i)message to unpin not found"):
            await bot.unpin_chat_message(USER, 9999)
        await bot.pin_chat_message(USER, b.message_id)
        assert await bot.unpin_all_chat_messages(USER)
        assert _pinned(tg, USER) == []
        # A deleted message is no longer pinned anywhere the user looks.
        await bot.pin_chat_message(USER, a.message_id)
        await bot.delete_message(USER, a.message_id)
        assert _pinned(tg, USER) == []
        with pytest.raises(BadRequest, match="(?i)not enough rights"):
            tg.add_bot(USER, GROUP)
            await bot.pin_chat_message(GROUP, 1)
