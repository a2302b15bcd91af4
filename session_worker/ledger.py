"""The session's meters, kept: the last turn's usage, the subscription windows the CLI reported
(and which of them the chat was already warned about), and the budget raises of today.

`Ledger` keeps each in the store's kv (so a restarted worker neither forgets a window nor warns
about it twice) and answers the budget question before each turn: the session's own total
against `max_usd_per_session`, and the sum over every session of the local day (wire.usage,
read-only) against `max_usd_per_day`, each plus what the user raised it by today.

The rules themselves (what a window is, when to warn, when a budget holds) are
session_worker.meter's; this module only remembers. It must never raise on a bad kv value.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import msgspec

from session_worker import meter
from session_worker.store import Store
from wire import messages as m
from wire import usage

log = logging.getLogger(__name__)

_WINDOWS_KEY = "rate_windows"
_WARNED_KEY = usage.WARNED_KEY
_USAGE_KEY = "last_usage"
_RAISE_KEY = usage.RAISE_KEY


class Ledger:
    def __init__(self, store: Store, sessions_dir: Path) -> None:
        self._store = store
        self._sessions_dir = sessions_dir
        self.windows: dict[str, m.RateWindow] = {}
        for w in self._load(_WINDOWS_KEY, []):
            try:
                rw = msgspec.convert(w, m.RateWindow)
            except msgspec.ValidationError:
                continue
            self.windows[rw.window] = rw
        self._warned: set[str] = {str(k) for k in self._load(_WARNED_KEY, [])}
        last = self._load(_USAGE_KEY, {})
        try:
            pct = last.get("context_percent")
            self.last = meter.TurnUsage(
                model=str(last.get("model") or ""), tokens_in=int(last.get("tokens_in") or 0),
                tokens_out=int(last.get("tokens_out") or 0),
                context_percent=float(pct) if isinstance(pct, (int, float)) else None)
        except (TypeError, ValueError):
            self.last = meter.TurnUsage("", 0, 0, None)

    def _load(self, key: str, default: Any) -> Any:
        try:
            value = json.loads(self._store.get(key) or "null")
        except ValueError:
            return default
        return value if isinstance(value, type(default)) else default

    # ------------------------------------------------------------------- usage

    def note_turn(self, result: m.TurnResult) -> None:
        if not (result.tokens_in or result.tokens_out or result.model):
            return
        self.last = meter.TurnUsage(result.model or self.last.model, result.tokens_in,
                                    result.tokens_out, result.context_percent)
        self._store.put(_USAGE_KEY, json.dumps({
            "model": self.last.model, "tokens_in": self.last.tokens_in,
            "tokens_out": self.last.tokens_out, "context_percent": self.last.context_percent}))

    # ------------------------------------------------------------------- rate limits

    def note_window(self, w: m.RateWindow) -> str | None:
        """Keep the window; the one warning sentence when it just passed the threshold."""
        self.windows[w.window] = w
        self._store.put(_WINDOWS_KEY, json.dumps([msgspec.to_builtins(x)
                                                  for x in self.windows.values()]))
        if not meter.should_warn(w, self._warned):
            return None
        # Every session sees the same account's windows: another one may have warned already.
        elsewhere = {str(k) for keys in usage.kv_everywhere(self._sessions_dir, _WARNED_KEY)
                     if isinstance(keys, list) for k in keys}
        if meter.window_key(w) in elsewhere:
            self._warned.add(meter.window_key(w))
            return None
        self._warned.add(meter.window_key(w))
        self._store.put(_WARNED_KEY, json.dumps(sorted(self._warned)[-20:]))
        log.info("event=rate_limit_warning window=%s utilization=%s", w.window, w.utilization)
        return meter.warn_sentence(w)

    # ------------------------------------------------------------------- budgets

    def _raises(self, now: float) -> dict[str, float]:
        raw = self._load(_RAISE_KEY, {})
        if raw.get("date") != usage.local_day(now):
            return {}
        return {k: float(v) for k, v in raw.items()
                if k in ("session", "day") and isinstance(v, (int, float))}

    def hold(self, session_spent: float, session_limit: float, day_limit: float,
             now: float | None = None) -> meter.Hold | None:
        """The budget the next turn would start past, or None (0 = no limit)."""
        if session_limit <= 0 and day_limit <= 0:
            return None
        now = time.time() if now is None else now
        raised = self._raises(now)
        day_spent = day_raised = 0.0
        if day_limit > 0:
            # Today's budget is every session's: so are its spending and its raises.
            day_spent = usage.cost_since(self._sessions_dir, usage.local_day_start(now))
            day_raised = usage.day_raised(self._sessions_dir, usage.local_day(now))
        return meter.budget_hold(
            session_spent, session_limit + raised.get("session", 0.0) if session_limit else 0,
            day_spent, day_limit + day_raised if day_limit else 0)

    def raise_budget(self, kind: str, by: float, now: float | None = None) -> float:
        """Raise today's `kind` budget by `by`; returns today's total raise of it."""
        now = time.time() if now is None else now
        raised = self._raises(now)
        raised[kind] = raised.get(kind, 0.0) + by
        self._store.put(_RAISE_KEY, json.dumps({"date": usage.local_day(now), **raised}))
        log.info("event=budget_raised kind=%s by=%.2f today=%.2f", kind, by, raised[kind])
        return raised[kind]
