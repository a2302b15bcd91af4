"""bot.startup: the bot's first Telegram calls wait out an unreachable Telegram, stop on a
refused token, and still stop at once when asked."""
from __future__ import annotations

import asyncio
import datetime

import pytest
from telegram.error import BadRequest, InvalidToken, NetworkError, RetryAfter, TimedOut

from bot.startup import TOKEN_REFUSED, Delays, Stopped, TokenRefused, call, unless_stopped

pytestmark = pytest.mark.timeout(20)


@pytest.mark.parametrize("failures,jitter,retry_after,expected", [
    (1, 1.0, None, 0.5),
    (2, 1.0, None, 1.0),
    (3, 1.0, None, 2.0),
    (5, 1.0, None, 8.0),
    (6, 1.0, None, 10.0),  # capped
    (60, 1.0, None, 10.0),  # forever capped, no overflow
    (6, 0.0, None, 5.0),  # jitter: half the cap at worst
    (1, 0.0, None, 0.25),
    (1, 1.0, 7.0, 7.0),  # a 429's retry_after is honoured in full
    (9, 0.0, 30.0, 30.0),  # even past the cap: Telegram asked for it
])
def test_delay(failures: int, jitter: float, retry_after: float | None, expected: float) -> None:
    assert Delays(initial=0.5, cap=10.0).delay(failures, jitter, retry_after) == expected


class Flaky:
    """Fails with the given exceptions in turn, then answers 'me'."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "me"


async def run(fn: Flaky) -> tuple[str, list[float]]:
    waits: list[float] = []

    async def sleep(s: float) -> None:
        waits.append(s)

    return await call("getMe", fn, rng=lambda: 1.0, sleep=sleep), waits


@pytest.mark.parametrize("errors,waits", [
    ([], []),
    ([NetworkError("httpx.ConnectError: [Errno 111] Connection refused")], [0.5]),
    ([NetworkError("Bad Gateway (502)")] * 3, [0.5, 1.0, 2.0]),
    ([TimedOut(), NetworkError("Internal Server Error (500)")], [0.5, 1.0]),
    ([RetryAfter(3), NetworkError("x")], [3.0, 1.0]),
    ([RetryAfter(datetime.timedelta(seconds=4))], [4.0]),
])
async def test_call_waits_out_what_time_can_fix(errors: list[Exception],
                                                waits: list[float]) -> None:
    fn = Flaky(*errors)
    assert await run(fn) == ("me", waits)
    assert fn.calls == len(errors) + 1


async def test_a_long_outage_is_waited_out_at_the_cap() -> None:
    fn = Flaky(*[NetworkError("Bad Gateway (502)")] * 200)
    value, waits = await run(fn)
    assert value == "me" and len(waits) == 200 and max(waits) == 10.0


async def test_a_refused_token_is_one_sentence_at_once() -> None:
    fn = Flaky(InvalidToken("The token `123:SECRET` was rejected by the server."))
    with pytest.raises(TokenRefused) as err:
        await run(fn)
    assert str(err.value) == TOKEN_REFUSED and "SECRET" not in str(err.value)
    assert fn.calls == 1


async def test_a_wrong_call_is_not_retried() -> None:
    fn = Flaky(BadRequest("Chat not found"))
    with pytest.raises(BadRequest):
        await run(fn)
    assert fn.calls == 1


async def test_each_failure_is_one_sentence_on_stderr_without_the_token(
        capsys: pytest.CaptureFixture[str]) -> None:
    await run(Flaky(NetworkError("Bad Gateway for /bot123456:ABCDEFGHIJKLMNOPQRSTUVWXYZ/getMe")))
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("Telegram is not answering getMe (Bad Gateway")
    assert "ABCDEFGHIJ" not in lines[0] and lines[0].endswith("trying again in 0.5s.")


async def test_unless_stopped_returns_the_value_or_stops_at_once() -> None:
    stop = asyncio.Event()
    assert await unless_stopped(stop, asyncio.sleep(0, "v")) == "v"
    never = asyncio.get_running_loop().create_future()
    loop = asyncio.get_running_loop()
    loop.call_later(0.05, stop.set)
    with pytest.raises(Stopped):
        await unless_stopped(stop, never)
    assert never.cancelled()


async def test_unless_stopped_passes_the_error_on() -> None:
    with pytest.raises(TokenRefused):
        await unless_stopped(asyncio.Event(), call("getMe", Flaky(InvalidToken("x"))))
