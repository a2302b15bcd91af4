"""The session's meters, read from what the CLI reports: tokens and context fill of a turn
(`result.usage` / `modelUsage`), subscription windows (`rate_limit_event`), the answer of a
`get_context_usage` control request, and the budgets a turn must not start past.

Pure code: dicts in, values out, no I/O and no clock (the time is an argument), so every case
is a table row in tests/unit/test_worker_meter.py. It must never raise on the CLI's output: an
unreadable shape reads as "nothing known".
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wire import messages as m
from wire.usage import window_name

# Context window by model family, for a CLI that does not say `contextWindow` in modelUsage.
CONTEXT_WINDOWS: tuple[tuple[str, int], ...] = (
    ("[1m]", 1_000_000),
    ("claude-opus-5", 1_000_000),
    ("claude-sonnet-4-5", 200_000),
    ("claude-", 200_000),
)
DEFAULT_CONTEXT_WINDOW = 200_000
WARN_AT = 0.8  # one warning in the chat when a window passes this utilization


def _int(v: Any) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) else 0


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def context_window(model: str, model_usage: dict[str, Any] | None = None) -> int:
    """The model's context size: `contextWindow` from modelUsage when the CLI says it, else
    the table."""
    entry = (model_usage or {}).get(model)
    if isinstance(entry, dict) and _int(entry.get("contextWindow")) > 0:
        return _int(entry.get("contextWindow"))
    for prefix, size in CONTEXT_WINDOWS:
        if prefix in model:
            return size
    return DEFAULT_CONTEXT_WINDOW


@dataclass(frozen=True)
class TurnUsage:
    model: str
    tokens_in: int  # what the model read (input + cache reads and writes)
    tokens_out: int
    context_percent: float | None


def turn_usage(ev: dict[str, Any], known_model: str = "") -> TurnUsage:
    """From a `result` event: the model that answered, the turn's tokens, and how full the
    context is (the last request's input over the model's window)."""
    usage = ev.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    per_model = ev.get("model_usage_since_last_result") or ev.get("modelUsage")
    per_model = per_model if isinstance(per_model, dict) else {}
    model = known_model if known_model in per_model else ""
    if not model and per_model:
        model = next(iter(per_model)) if len(per_model) == 1 else known_model
    model = model or known_model
    tokens_in = (_int(usage.get("input_tokens")) + _int(usage.get("cache_read_input_tokens"))
                 + _int(usage.get("cache_creation_input_tokens")))
    tokens_out = _int(usage.get("output_tokens"))
    # A turn with tools makes several requests: the context is the last one's, when listed.
    last = usage.get("iterations")
    if isinstance(last, list) and last and isinstance(last[-1], dict):
        it = last[-1]
        filled = (_int(it.get("input_tokens")) + _int(it.get("cache_read_input_tokens"))
                  + _int(it.get("cache_creation_input_tokens")) + _int(it.get("output_tokens")))
    else:
        filled = tokens_in + tokens_out
    window = context_window(model, ev.get("modelUsage") if isinstance(ev.get("modelUsage"), dict)
                            else None)
    percent = round(100.0 * filled / window, 1) if filled and window else None
    return TurnUsage(model=model, tokens_in=tokens_in, tokens_out=tokens_out,
                     context_percent=percent)


# --------------------------------------------------------------------------- rate limits


def _window(name: str, info: dict[str, Any]) -> m.RateWindow:
    resets = info.get("resetsAt")
    status = info.get("status")
    return m.RateWindow(window=name, status=status if isinstance(status, str) else "",
                        utilization=_num(info.get("utilization")),
                        resets_at=resets if isinstance(resets, int) else None)


def rate_windows(ev: dict[str, Any]) -> list[m.RateWindow]:
    """The windows a `rate_limit_event` reports: the one it is about (`rateLimitType`), then
    the others of its `unifiedWindows` (five_hour, seven_day, ...)."""
    info = ev.get("rate_limit_info")
    if not isinstance(info, dict):
        return []
    out: list[m.RateWindow] = []
    window = info.get("rateLimitType")
    if isinstance(window, str) and window:
        out.append(_window(window, info))
    unified = info.get("unifiedWindows")
    for name, each in unified.items() if isinstance(unified, dict) else ():
        if isinstance(name, str) and name and isinstance(each, dict) and name != window:
            out.append(_window(name, each))
    return out


def window_key(w: m.RateWindow) -> str:
    """One window's identity: its type and when it resets (a new window is a new key)."""
    return f"{w.window}@{w.resets_at or 0}"


def should_warn(w: m.RateWindow, warned: set[str]) -> bool:
    """True once per window (by window_key) when its utilization is past WARN_AT."""
    return (w.utilization is not None and w.utilization >= WARN_AT
            and window_key(w) not in warned)


def warn_sentence(w: m.RateWindow) -> str:
    pct = round((w.utilization or 0) * 100)
    return (f"Your {window_name(w.window)} subscription limit is at {pct} %: turns may be"
            " refused once it is used up, so keep the big work for after it resets.")


# --------------------------------------------------------------------------- /context


def compacted_sentence(meta: Any) -> str:
    """What a `compact_boundary` says: the conversation shrank from N to M tokens."""
    meta = meta if isinstance(meta, dict) else {}
    pre, post = _int(meta.get("pre_tokens")), _int(meta.get("post_tokens"))
    auto = "Claude Code compacted" if meta.get("trigger") == "auto" else "Compacted"
    if pre and post:
        return f"{auto} the conversation: {pre:,} → {post:,} tokens."
    return f"{auto} the conversation."


def context_text(resp: dict[str, Any]) -> str:
    """The answer to get_context_usage in a few lines: total, percent, and the categories."""
    total, most = _int(resp.get("totalTokens")), _int(resp.get("maxTokens"))
    pct = _num(resp.get("percentage"))
    if pct is None and most:
        pct = 100.0 * total / most
    lines = [f"Context: {total:,} of {most:,} tokens ({pct or 0:.0f} %)"]
    cats = resp.get("categories")
    for c in cats if isinstance(cats, list) else []:
        if not isinstance(c, dict) or c.get("kind") == "deferred":
            continue
        tokens = _int(c.get("tokens"))
        name = c.get("name")
        if tokens and isinstance(name, str):
            lines.append(f"• {name}: {tokens:,}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- budgets


@dataclass(frozen=True)
class Hold:
    kind: str  # "session" | "day"
    spent: float
    limit: float

    @property
    def sentence(self) -> str:
        what = "this session's budget" if self.kind == "session" else "today's budget"
        return (f"The next message waits: {what} of ${self.limit:.2f} is spent"
                f" (${self.spent:.2f}), so tap the button to raise it for today.")


def budget_hold(session_spent: float, session_limit: float, day_spent: float,
                day_limit: float) -> Hold | None:
    """Whether a turn may start: None, or the budget it would start past (0 = no limit)."""
    if session_limit > 0 and session_spent >= session_limit:
        return Hold("session", session_spent, session_limit)
    if day_limit > 0 and day_spent >= day_limit:
        return Hold("day", day_spent, day_limit)
    return None
