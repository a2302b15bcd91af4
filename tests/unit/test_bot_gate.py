"""bot.gate: strangers stop before any handler, refused at most once per interval."""
from __future__ import annotations

from typing import Any

import pytest
from telegram import Update
from telegram.ext import ApplicationHandlerStop

from bot.gate import Gate, kind_of

OWNER, STRANGER = 111, 666


def _update(user_id: int, kind: str = "message", chat_type: str = "private") -> Update:
    user = {"id": user_id, "is_bot": False, "first_name": "u"}
    chat = {"id": user_id if chat_type == "private" else -100, "type": chat_type}
    message = {"message_id": 1, "date": 0, "chat": chat, "from": user, "text": "secret text"}
    data: dict[str, Any] = {"update_id": 1}
    if kind == "message":
        data["message"] = message
    else:
        data["callback_query"] = {"id": "q", "from": user, "chat_instance": "c", "data": "p:1:a",
                                  "message": message}
    return Update.de_json(data, None)


class FakeBot:
    def __init__(self) -> None:
        self.sent: list[tuple[int, str]] = []

    async def send_message(self, chat_id: int, text: str) -> None:
        self.sent.append((chat_id, text))


class FakeContext:
    def __init__(self) -> None:
        self.bot = FakeBot()


@pytest.mark.parametrize("kind", ["message", "callback_query"])
def test_allowed(kind: str) -> None:
    gate = Gate([OWNER])
    assert gate.allowed(_update(OWNER, kind))
    assert not gate.allowed(_update(STRANGER, kind))
    assert not gate.allowed(_update(STRANGER, kind, chat_type="group"))
    assert kind_of(_update(OWNER, kind)) == kind


def test_refusal_at_most_once_per_interval() -> None:
    now = [0.0]
    gate = Gate([OWNER], interval=60, clock=lambda: now[0])
    assert gate.should_refuse(STRANGER)
    now[0] = 59
    assert not gate.should_refuse(STRANGER)
    assert gate.should_refuse(STRANGER + 1)
    now[0] = 61
    assert gate.should_refuse(STRANGER)


async def test_check_stops_strangers_and_logs_no_text(caplog: pytest.LogCaptureFixture) -> None:
    gate = Gate([OWNER])
    ctx = FakeContext()
    await gate.check(_update(OWNER), ctx)  # type: ignore[arg-type]
    for _ in range(3):
        with pytest.raises(ApplicationHandlerStop):
            await gate.check(_update(STRANGER), ctx)  # type: ignore[arg-type]
    assert ctx.bot.sent == [(STRANGER, "This is a private bot.")]
    assert "secret" not in caplog.text
    assert "event=stranger" in caplog.text


async def test_no_refusal_in_groups() -> None:
    gate = Gate([OWNER])
    ctx = FakeContext()
    with pytest.raises(ApplicationHandlerStop):
        await gate.check(_update(STRANGER, chat_type="group"), ctx)  # type: ignore[arg-type]
    assert ctx.bot.sent == []
