"""session_worker.ledger, wire.usage and the state's model and history: what outlives a worker
restart (a window already warned about, the last usage, today's raises, the /model choice, the
earlier conversations) and what every session reads of the others (today's cost and raises),
on real session.db files in a temp dir."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from session_worker import meter
from session_worker.ledger import Ledger
from session_worker.state import SessionState
from session_worker.store import Store
from wire import messages as m
from wire import usage

NOW = time.time()


def session(root: Path, name: str) -> Store:
    return Store(root / name / "session.db")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "sessions"


def test_a_window_is_warned_about_once_across_a_restart(root: Path) -> None:
    store = session(root, "a")
    w = m.RateWindow(window="five_hour", status="allowed_warning", utilization=0.85,
                     resets_at=100)
    assert Ledger(store, root).note_window(w) is not None
    again = Ledger(store, root)  # a restarted worker
    assert again.windows == {"five_hour": w}
    assert again.note_window(m.RateWindow(window="five_hour", utilization=0.9,
                                          resets_at=100)) is None
    assert again.note_window(m.RateWindow(window="five_hour", utilization=0.81,
                                          resets_at=200)) is not None
    store.close()


def test_another_session_that_warned_about_a_window_keeps_this_one_quiet(root: Path) -> None:
    a, b = session(root, "a"), session(root, "b")
    w = m.RateWindow(window="seven_day", utilization=0.9, resets_at=7)
    assert Ledger(a, root).note_window(w) is not None
    assert Ledger(b, root).note_window(w) is None
    assert Ledger(b, root).note_window(m.RateWindow(window="five_hour", utilization=0.8,
                                                    resets_at=7)) is not None
    a.close()
    b.close()


def test_the_last_usage_survives_and_bad_kv_values_read_as_nothing(root: Path) -> None:
    store = session(root, "a")
    Ledger(store, root).note_turn(m.TurnResult(model="claude-x", tokens_in=10, tokens_out=2,
                                               context_percent=3.5))
    assert Ledger(store, root).last == meter.TurnUsage("claude-x", 10, 2, 3.5)
    store.put("last_usage", '{"tokens_in": "many"}')
    store.put("rate_windows", '[{"window": 5}, "x"]')
    fresh = Ledger(store, root)
    assert fresh.last == meter.TurnUsage("", 0, 0, None) and fresh.windows == {}
    store.close()


def test_usage_reads_every_sessions_cost_for_the_day_read_only(root: Path) -> None:
    a, b = session(root, "a"), session(root, "b")
    a.add_usage("k1", 0.25, 10, 1)
    b.add_usage("k2", 0.5, 10, 1)
    b._db.execute("UPDATE usage SET finished = ?", (usage.local_day_start(NOW) - 60,))
    b.add_usage("k3", 0.125, 10, 1)
    assert usage.session_cost(root / "a") == 0.25
    assert usage.session_cost(root / "b") == 0.625
    assert usage.session_cost(root / "none") is None
    assert usage.cost_since(root, usage.local_day_start(NOW)) == 0.375
    assert usage.cost_since(root / "none", 0) == 0.0
    a.close()
    b.close()


def test_a_day_budget_holds_every_session_and_a_raise_frees_them(root: Path) -> None:
    a, b = session(root, "a"), session(root, "b")
    a.add_usage("k1", 1.5, 10, 1)
    la, lb = Ledger(a, root), Ledger(b, root)
    assert la.hold(1.5, 0.0, 1.0, NOW) == meter.Hold("day", 1.5, 1.0)
    assert lb.hold(0.0, 0.0, 1.0, NOW) == meter.Hold("day", 1.5, 1.0)
    la.raise_budget("day", 1.5, NOW)  # tapped in session a's chat
    assert la.hold(1.5, 0.0, 1.0, NOW) is None and lb.hold(0.0, 0.0, 1.0, NOW) is None
    a.close()
    b.close()


def test_a_session_budget_and_its_raise(root: Path) -> None:
    store = session(root, "a")
    ledger = Ledger(store, root)
    assert ledger.hold(0.5, 0.5, 0.0, NOW) == meter.Hold("session", 0.5, 0.5)
    assert ledger.raise_budget("session", 0.5, NOW) == 0.5
    assert ledger.hold(0.5, 0.5, 0.0, NOW) is None
    assert ledger.hold(1.0, 0.5, 0.0, NOW) == meter.Hold("session", 1.0, 1.0)
    assert Ledger(store, root).hold(0.5, 0.5, 0.0, NOW) is None  # kept
    # A raise is for today only.
    assert ledger.hold(0.5, 0.5, 0.0, NOW + 86400) == meter.Hold("session", 0.5, 0.5)
    assert ledger.hold(9.0, 0.0, 0.0, NOW) is None  # no budget at all
    store.close()


def test_model_choice_and_history_are_kept(tmp_path: Path, root: Path) -> None:
    store = session(root, "a")
    st = SessionState("a", "default", tmp_path / "metadata.json", store)
    assert st.model_override == "" and st.history() == []
    st.set_model_override("claude-sonnet-4-5")
    st.set_claude_session_id("sid-1")
    assert st.start_fresh() == "sid-1"
    assert st.claude_session_id is None
    st.set_claude_session_id("sid-2")
    again = SessionState("a", "default", tmp_path / "metadata.json", store)
    assert again.model_override == "claude-sonnet-4-5"
    assert again.claude_session_id == "sid-2"
    [entry] = again.history()
    assert entry["id"] == "sid-1" and entry["started"] and entry["ended"]
    assert again.start_fresh() == "sid-2" and len(again.history()) == 2
    assert again.start_fresh() is None and len(again.history()) == 2
    store.put("history", "not json")
    assert again.history() == []
    store.close()
