"""bot.meters (pure) and the budget button: the footer's tokens and context, /status's model,
context and subscription lines, and the callback data of "Raise budget"."""
from __future__ import annotations

import re

import pytest

from bot import callbacks, meters, render
from wire import messages as m


@pytest.mark.parametrize(("result", "footer"), [
    (m.TurnResult(duration_ms=2300, cost_usd=0.0123), "✓ 2.3 s · $0.0123"),
    (m.TurnResult(duration_ms=2300, cost_usd=0.0123, tokens_in=15400, tokens_out=4,
                  context_percent=2.0), "✓ 2.3 s · $0.0123 · 15.4k in / 4 out · context 2 %"),
    (m.TurnResult(duration_ms=1000, cost_usd=0.01, tokens_in=2_500_000, tokens_out=1200),
     "✓ 1.0 s · $0.0100 · 2.5M in / 1.2k out"),
])
def test_footer_with_usage(result: m.TurnResult, footer: str) -> None:
    assert render.footer(result) == footer


def test_status_lines() -> None:
    w5 = m.RateWindow(window="five_hour", utilization=0.855)
    w7 = m.RateWindow(window="seven_day", utilization=None)
    rows = [
        m.ProgramStatus(name="bot", state="RUNNING"),
        m.ProgramStatus(name="session:api", state="RUNNING", model="claude-sonnet-4-5",
                        context_percent=8.0, tokens_in=16000, tokens_out=3, rate_limits=[w5]),
        m.ProgramStatus(name="session:web", state="STOPPED", rate_limits=[w7]),
    ]
    assert meters.status_lines(rows) == [
        "api: claude-sonnet-4-5 · context 8 % · last turn 16.0k in / 3 out",
        "limits: 5-hour 86 %, weekly ?",
    ]
    assert meters.status_lines([m.ProgramStatus(name="session:x", state="STOPPED")]) == []


@pytest.mark.parametrize(("data", "expected"), [
    ("bu:s:api", ("api", "session")),
    ("bu:d:my-session", ("my-session", "day")),
    ("bu:x:api", None),
    ("bu:s:Bad Name", None),
    ("bu:s:", None),
])
def test_budget_tap(data: str, expected: tuple[str, str] | None) -> None:
    assert callbacks.parse_budget(data) == expected


@pytest.mark.parametrize("kind", ["session", "day"])
def test_the_budget_button_parses_back(kind: str) -> None:
    markup = callbacks.budget_markup("api", kind)
    [[button]] = markup.inline_keyboard
    assert re.match(callbacks.BUDGET, str(button.callback_data))
    assert callbacks.parse_budget(str(button.callback_data)) == ("api", kind)
    assert len(str(button.callback_data).encode()) <= 64  # Telegram's limit
