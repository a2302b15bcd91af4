"""The lifeline: Telegram unreachable while the stack starts (after a reboot, say), and the bot
comes back by itself.

For 20 s Telegram is out of reach: first nothing listens on the configured api_base_url's port
(connection refused), then a Telegram there answers 502 to every Bot API method. Meanwhile
`switchboardctl status` shows the bot retrying (never FATAL) and the user writes to it. Then
Telegram answers normally on that port, and nobody touches the stack: the bot answers what the
user wrote while it was down, and the next message, within a minute.

The bot's retries are capped at 1 s here (`telegram.startup_retry_max_seconds`, 10 s by
default), so each phase of the outage needs seconds, not tens of seconds, to show its rows.
"""
from __future__ import annotations

import re
import time
from typing import Any

import pytest
from conftest import unique

from sandbox.telegram_api import TelegramSandbox
from tests.support.chat import ask, last_id, wait_text
from tests.support.net import free_port
from tests.support.stack import OWNER

OUTAGE_SECONDS = 20.0
REFUSED_SECONDS = 10.0  # then 502 for the rest of the outage
RETRY_CAP = 1.0  # the bot tries again at least this often
BACK_WITHIN = 60.0

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]


def test_the_bot_rides_out_a_telegram_outage_at_start(make_stack: Any, tg: Any) -> None:
    port = free_port()
    st = make_stack(start=False, telegram={"api_base_url": f"http://127.0.0.1:{port}",
                                           "startup_retry_max_seconds": RETRY_CAP})
    t0 = time.monotonic()
    rows: list[tuple[float, str, str]] = []

    def watch_until(end: float) -> None:
        """Record the bot's status row until `end` (each `switchboardctl status` is a process:
        a few a second, no sleep needed)."""
        while time.monotonic() < end:
            r = st.row("bot")
            if r is not None:
                rows.append((time.monotonic() - t0, r["state"], r.get("description", "")))

    st.start()  # the bot is RUNNING: it answers the heartbeat while it waits for Telegram
    watch_until(t0 + REFUSED_SECONDS)
    name = unique("life")
    with TelegramSandbox(token=tg.token, port=port,
                         unavailable_seconds=t0 + OUTAGE_SECONDS - time.monotonic()) as tg2:
        after = last_id(tg2, OWNER)
        tg2.send(OWNER, f"/new {name}")  # written while the bot cannot reach Telegram
        watch_until(t0 + OUTAGE_SECONDS - 1)
        assert [c["status"] for c in tg2.calls()] and all(
            c["status"] == 502 for c in tg2.calls()), "Telegram answered during its outage"
        wait_text(tg2, OWNER, rf"Session {re.escape(name)} is ready", BACK_WITHIN, after=after)
        back = time.monotonic() - t0
        ask(tg2, OWNER, "hello after the outage", timeout=60)

        states = {state for _, state, _ in rows}
        assert "FATAL" not in states, rows
        refused = [d for t, _, d in rows if t < REFUSED_SECONDS and "retrying since" in d]
        # A try after the 502s began, and a status after it (a process each: some margin).
        failing = [d for t, _, d in rows
                   if t > REFUSED_SECONDS + RETRY_CAP + 2 and "retrying since" in d]
        assert refused and failing, rows
        assert any("getMe" in d for d in refused), refused
        assert any("Bad Gateway" in d for d in failing), failing
        assert back < OUTAGE_SECONDS + BACK_WITHIN
        # Once through, the retrying line is gone.
        row = st.row("bot")
        assert row is not None and row["state"] == "RUNNING"
        assert "retrying" not in row.get("description", "")
