"""session_worker.meter (pure): a turn's tokens and context fill, subscription windows and the
one warning, the /context answer, compaction, and the budgets; with the shapes the real CLI
prints (2.1.x: result.usage, modelUsage with contextWindow, rate_limit_event.rate_limit_info,
get_context_usage's response)."""
from __future__ import annotations

from typing import Any

import pytest

from session_worker import meter
from session_worker.translate import Translator
from wire import messages as m

RESULT: dict[str, Any] = {
    "type": "result", "subtype": "success", "total_cost_usd": 0.05, "duration_ms": 120,
    "num_turns": 1, "result": "echo: hi", "session_id": "s1",
    "usage": {"input_tokens": 12000, "cache_read_input_tokens": 3000,
              "cache_creation_input_tokens": 1000, "output_tokens": 40, "iterations": []},
    "modelUsage": {"claude-opus-5-5": {"inputTokens": 16000, "outputTokens": 40,
                                       "contextWindow": 1_000_000}},
}


@pytest.mark.parametrize(("model", "usage", "window"), [
    ("claude-opus-5-5", {"claude-opus-5-5": {"contextWindow": 1_000_000}}, 1_000_000),
    ("claude-sonnet-4-5", {"claude-sonnet-4-5": {"contextWindow": 200_000}}, 200_000),
    ("claude-sonnet-4-5", None, 200_000),  # the table
    ("claude-sonnet-4-5[1m]", None, 1_000_000),
    ("claude-opus-5-5", {"claude-opus-5-5": {"contextWindow": "big"}}, 1_000_000),
    ("something-else", None, meter.DEFAULT_CONTEXT_WINDOW),
])
def test_context_window_from_the_cli_else_the_table(model: str, usage: Any, window: int) -> None:
    assert meter.context_window(model, usage) == window


@pytest.mark.parametrize(("ev", "known", "expected"), [
    (RESULT, "", meter.TurnUsage("claude-opus-5-5", 16000, 40, 1.6)),
    # The last request of a turn with tools is its context.
    ({**RESULT, "usage": {**RESULT["usage"], "iterations": [
        {"input_tokens": 100}, {"input_tokens": 50_000, "output_tokens": 10}]}}, "",
     meter.TurnUsage("claude-opus-5-5", 16000, 40, 5.0)),
    # Two models this process (after /model): the one the turn ran on is known.
    ({**RESULT, "modelUsage": {"claude-opus-5-5": {"contextWindow": 1_000_000},
                               "claude-sonnet-4-5": {"contextWindow": 200_000}},
      "model_usage_since_last_result": {"claude-sonnet-4-5": {}}}, "claude-opus-5-5",
     meter.TurnUsage("claude-sonnet-4-5", 16000, 40, 8.0)),
    ({"type": "result"}, "claude-x", meter.TurnUsage("claude-x", 0, 0, None)),
    ({"type": "result", "usage": "garbage", "modelUsage": [1]}, "", meter.TurnUsage("", 0, 0,
                                                                                    None)),
])
def test_turn_usage(ev: dict[str, Any], known: str, expected: meter.TurnUsage) -> None:
    assert meter.turn_usage(ev, known) == expected


def test_the_translator_puts_the_usage_on_the_turn_result() -> None:
    tr = Translator()
    tr.translate({"type": "system", "subtype": "init", "session_id": "s1",
                  "model": "claude-opus-5-5"})
    result = tr.translate(RESULT).result
    assert result is not None
    assert (result.model, result.tokens_in, result.tokens_out, result.context_percent) == (
        "claude-opus-5-5", 16000, 40, 1.6)


FIVE_HOUR = {"type": "rate_limit_event", "rate_limit_info": {
    "status": "allowed_warning", "resetsAt": 1796202000, "rateLimitType": "five_hour",
    "utilization": 0.85, "isUsingOverage": False, "surpassedThreshold": 0.8}}


@pytest.mark.parametrize(("ev", "windows"), [
    (FIVE_HOUR, [m.RateWindow(window="five_hour", status="allowed_warning", utilization=0.85,
                              resets_at=1796202000)]),
    # The CLI's unifiedWindows: every window it knows, the event's own first.
    ({"type": "rate_limit_event", "rate_limit_info": {
        **FIVE_HOUR["rate_limit_info"], "unifiedWindows": {
            "five_hour": {"utilization": 0.85, "resetsAt": 1796202000, "status": "allowed"},
            "seven_day": {"utilization": 0.4, "resetsAt": 1796500000, "status": "allowed"},
            "bad": "x"}}},
     [m.RateWindow(window="five_hour", status="allowed_warning", utilization=0.85,
                   resets_at=1796202000),
      m.RateWindow(window="seven_day", status="allowed", utilization=0.4,
                   resets_at=1796500000)]),
    ({"type": "rate_limit_event", "rate_limit_info": {"status": "allowed"}}, []),
    ({"type": "rate_limit_event", "rate_limit_info": {"rateLimitType": "seven_day",
                                                      "utilization": "x"}},
     [m.RateWindow(window="seven_day")]),
    ({"type": "rate_limit_event"}, []),
])
def test_rate_windows(ev: dict[str, Any], windows: list[m.RateWindow]) -> None:
    assert meter.rate_windows(ev) == windows
    assert Translator().translate(ev).rate_windows == windows


def test_a_window_past_80_percent_warns_once_and_a_new_window_again() -> None:
    warned: set[str] = set()
    seen = []
    for util, resets in ((0.5, 1), (0.85, 1), (0.9, 1), (0.95, 1), (0.82, 2), (None, 3)):
        w = m.RateWindow(window="five_hour", utilization=util, resets_at=resets)
        if meter.should_warn(w, warned):
            warned.add(meter.window_key(w))
            seen.append((util, resets))
    assert seen == [(0.85, 1), (0.82, 2)]
    sentence = meter.warn_sentence(m.RateWindow(window="seven_day", utilization=0.851))
    assert sentence.startswith("Your weekly subscription limit is at 85 %")


def test_context_text_is_compact() -> None:
    text = meter.context_text({
        "categories": [{"name": "System prompt", "tokens": 7056, "kind": "used"},
                       {"name": "Deferred", "tokens": 10342, "kind": "deferred"},
                       {"name": "Messages", "tokens": 2577, "kind": "used"},
                       {"name": "Free space", "tokens": 178152, "kind": "free"}, "junk"],
        "totalTokens": 21848, "maxTokens": 200000, "percentage": 11})
    assert text.splitlines() == ["Context: 21,848 of 200,000 tokens (11 %)",
                                 "• System prompt: 7,056", "• Messages: 2,577",
                                 "• Free space: 178,152"]
    assert meter.context_text({}) == "Context: 0 of 0 tokens (0 %)"


@pytest.mark.parametrize(("meta", "sentence"), [
    ({"trigger": "manual", "pre_tokens": 22305, "post_tokens": 3214},
     "Compacted the conversation: 22,305 → 3,214 tokens."),
    ({"trigger": "auto", "pre_tokens": 5, "post_tokens": 1},
     "Claude Code compacted the conversation: 5 → 1 tokens."),
    (None, "Compacted the conversation."),
])
def test_compacted(meta: Any, sentence: str) -> None:
    assert meter.compacted_sentence(meta) == sentence
    out = Translator().translate({"type": "system", "subtype": "compact_boundary",
                                  "compact_metadata": meta})
    assert [e.body for e in out.emits] == [m.Notice(level="info", message=sentence)]


@pytest.mark.parametrize(("spent", "limit", "day_spent", "day_limit", "hold"), [
    (0.5, 0.0, 9.0, 0.0, None),  # no budgets
    (0.5, 1.0, 0.5, 2.0, None),
    (1.0, 1.0, 0.5, 2.0, meter.Hold("session", 1.0, 1.0)),  # at the budget: it holds
    (0.5, 1.0, 2.5, 2.0, meter.Hold("day", 2.5, 2.0)),
    (1.5, 1.0, 2.5, 2.0, meter.Hold("session", 1.5, 1.0)),  # the session's first
])
def test_budget_hold(spent: float, limit: float, day_spent: float, day_limit: float,
                     hold: meter.Hold | None) -> None:
    assert meter.budget_hold(spent, limit, day_spent, day_limit) == hold


def test_a_hold_says_one_sentence() -> None:
    assert meter.Hold("day", 2.5, 2.0).sentence == (
        "The next message waits: today's budget of $2.00 is spent ($2.50), so tap the button"
        " to raise it for today.")
