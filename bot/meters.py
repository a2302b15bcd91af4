"""The meters in the chat: a turn's tokens and context fill in its footer, each session's model,
context and subscription windows under /status, and the budget hold with its raise button.

Pure: no I/O, no clock. bot.render calls `usage_part` for the footer; bot.commands appends
`status_lines` to /status; bot.delivery shows a BudgetHold through `hold_text`.
"""
from __future__ import annotations

from wire import messages as m
from wire.names import SESSION_PREFIX
from wire.usage import window_name


def tokens(n: int) -> str:
    """1234 -> 1.2k, 2_500_000 -> 2.5M."""
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f}M"
    if n >= 1000:
        return f"{n / 1000:.1f}k"
    return str(n)


def context_part(percent: float | None) -> str:
    return "" if percent is None else f"context {percent:.0f} %"


def usage_part(result: m.TurnResult) -> str:
    """` · 12.3k in / 40 out · context 6 %` for the footer; empty when the CLI said nothing."""
    parts = []
    if result.tokens_in or result.tokens_out:
        parts.append(f"{tokens(result.tokens_in)} in / {tokens(result.tokens_out)} out")
    if result.context_percent is not None:
        parts.append(context_part(result.context_percent))
    return "".join(f" · {p}" for p in parts)


def windows_text(windows: list[m.RateWindow]) -> str:
    """`5-hour 85 %, weekly 40 %`."""
    return ", ".join(
        f"{window_name(w.window)} "
        + ("?" if w.utilization is None else f"{round(w.utilization * 100)} %")
        for w in windows)


def status_lines(rows: list[m.ProgramStatus]) -> list[str]:
    """One line per session that knows its model, context or limits; then the subscription's
    windows once (every session reports the same account)."""
    lines = []
    windows: dict[str, m.RateWindow] = {}
    for r in rows:
        if not r.name.startswith(SESSION_PREFIX):
            continue
        for w in r.rate_limits:
            windows[w.window] = w
        bits = [b for b in (r.model, context_part(r.context_percent)) if b]
        if r.tokens_in or r.tokens_out:
            bits.append(f"last turn {tokens(r.tokens_in)} in / {tokens(r.tokens_out)} out")
        if bits:
            lines.append(f"{r.name.removeprefix(SESSION_PREFIX)}: {' · '.join(bits)}")
    if windows:
        lines.append(f"limits: {windows_text(list(windows.values()))}")
    return lines


def hold_text(body: m.BudgetHold) -> str:
    return f"⏸ {body.message}"
