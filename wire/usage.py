"""What the sessions have cost, read from their own `session.db` files (the usage table).

A session's cost is durable: one usage row per finished turn, written by its worker
(session_worker.store). The supervisor reads it for a session whose worker is not running (a
stopped, suspended or FATAL session still shows what it cost), and every worker reads all of
them for the per-day budget (`[claude] max_usd_per_day`: the sum over every session for the
local day) and for the windows already warned about (one account: one warning per window).

Read-only: this module opens each file with `mode=ro` and never writes one (each session.db has
exactly one writer, its worker). A file that cannot be read counts as nothing, never raises.
"""
from __future__ import annotations

import datetime
import json
import logging
import sqlite3
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SESSION_DB = "session.db"
RAISE_KEY = "budget_raise"  # kv: {"date": "YYYY-MM-DD", "session": USD, "day": USD}
WARNED_KEY = "rate_warned"  # kv: the subscription windows the chat was warned about
# The CLI's names of the subscription's windows (rate_limit_info.rateLimitType), in words.
WINDOW_NAMES = {"five_hour": "5-hour", "seven_day": "weekly", "seven_day_opus": "weekly Opus",
                "seven_day_sonnet": "weekly Sonnet", "overage": "extra usage"}


def window_name(window: str) -> str:
    return WINDOW_NAMES.get(window, window.replace("_", " "))


def _query_one(db: Path, sql: str, args: tuple[object, ...] = ()) -> tuple[Any, ...] | None:
    """One row of a read-only query on a session's database; None when the file is missing or
    unreadable (another process owns it: we never write, and never wait long)."""
    if not db.exists():
        return None
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=2.0)
    except sqlite3.Error:
        return None
    try:
        row: tuple[Any, ...] | None = conn.execute(sql, args).fetchone()
        return row
    except sqlite3.Error as exc:
        log.info("event=usage_unreadable db=%s error=%r", db, str(exc))
        return None
    finally:
        conn.close()


def _session_dirs(sessions_dir: Path) -> list[Path]:
    try:
        return [p for p in sessions_dir.iterdir() if p.is_dir()]
    except OSError:
        return []


def _read_cost(db: Path, since: float | None) -> float | None:
    if since is None:
        row = _query_one(db, "SELECT COALESCE(SUM(cost_usd), 0) FROM usage")
    else:
        row = _query_one(db, "SELECT COALESCE(SUM(cost_usd), 0) FROM usage WHERE finished >= ?",
                         (since,))
    return None if row is None else float(row[0])


def session_cost(session_dir: Path) -> float | None:
    """The session's total cost from its usage table; None when there is no readable file."""
    return _read_cost(session_dir / SESSION_DB, None)


def cost_since(sessions_dir: Path, since: float) -> float:
    """The sum over every session under `sessions_dir` of the turns finished at `since` or
    later (epoch seconds)."""
    return sum(_read_cost(d / SESSION_DB, since) or 0.0 for d in _session_dirs(sessions_dir))


def _read_kv(db: Path, key: str) -> str | None:
    row = _query_one(db, "SELECT v FROM kv WHERE k=?", (key,))
    return str(row[0]) if row else None


def kv_everywhere(sessions_dir: Path, key: str) -> list[object]:
    """The JSON value of one kv key in every session's session.db (unreadable ones left out)."""
    out: list[object] = []
    for d in _session_dirs(sessions_dir):
        raw = _read_kv(d / SESSION_DB, key)
        try:
            out.append(json.loads(raw) if raw else None)
        except ValueError:
            continue
    return [v for v in out if v is not None]


def day_raised(sessions_dir: Path, day: str) -> float:
    """What the user raised today's budget by, summed over every session's button taps of
    `day` (each worker keeps its own taps in its own kv)."""
    total = 0.0
    for raised in kv_everywhere(sessions_dir, RAISE_KEY):
        value = raised.get("day") if isinstance(raised, dict) else None
        if isinstance(raised, dict) and raised.get("date") == day \
                and isinstance(value, (int, float)):
            total += float(value)
    return total


def local_day_start(now: float) -> float:
    """The epoch seconds of the local midnight that began the day of `now`."""
    day = datetime.datetime.fromtimestamp(now).date()
    return datetime.datetime.combine(day, datetime.time()).timestamp()


def local_day(now: float) -> str:
    """The local date of `now` as YYYY-MM-DD (what a raise "for today" is keyed by)."""
    return datetime.datetime.fromtimestamp(now).date().isoformat()
