"""A long session keeps a small session.db: 10,000 turns through the real store, pruned as the
worker prunes (after each Replay the bot asks), and the cost is still every turn's."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

from bot.journal import Journal
from session_worker.store import KEEP_EVENTS, KEEP_FINISHED, Store

pytestmark = pytest.mark.timeout(240)

TURNS = 10_000
EVENTS_PER_TURN = 4
FRAME = b"x" * 600  # an AssistantText of a few sentences, encoded
COST = 0.0125


def db_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def turn(store: Store, i: int) -> None:
    key = f"tg:1:{i}"
    store.add_turn(key, 1, f"message {i}")
    item = store.item(key)
    assert item is not None
    store.mark_running(item.id)
    for _ in range(EVENTS_PER_TURN):
        store.append(key, lambda seq: FRAME)
    store.add_usage(key, COST, 1200, 1)
    store.finish(item.id)


def test_ten_thousand_turns_keep_the_database_small_and_the_cost_right(tmp_path: Path) -> None:
    path = tmp_path / "session.db"
    store = Store(path)
    # The first unpruned stretch shows what a turn costs on disk.
    for i in range(1000):
        turn(store, i)
    per_turn = db_bytes(path) / 1000
    peak = 0
    for i in range(1000, TURNS):
        turn(store, i)
        if i % 100 == 0:  # the bot reconnects now and then and asks to replay after `delivered`
            store.note_replayed_after(store.last_seq - 3)
            store.prune()
            peak = max(peak, db_bytes(path))
    store.note_replayed_after(store.last_seq - 3)
    store.prune()
    unpruned = per_turn * TURNS
    assert peak < unpruned / 4, (peak, unpruned)
    assert db_bytes(path) < 3 * 1024 * 1024
    assert math.isclose(store.total_cost(), COST * TURNS)
    # What the bot has not got is all there, and the newest events stay replayable.
    last = store.last_seq
    assert last == TURNS * EVENTS_PER_TURN
    assert [s for s, _ in store.iter_after(last - 3)] == [last - 2, last - 1, last]
    assert len(list(store.iter_after(0))) == KEEP_EVENTS
    # A resend of a recent message is still recognised; an old finished one is gone.
    assert not store.add_turn(f"tg:1:{TURNS - 1}", 1, "again")
    assert store.item(f"tg:1:{TURNS - KEEP_FINISHED}") is not None
    assert store.item("tg:1:5") is None
    store.close()
    reopened = Store(path)
    assert reopened.last_seq == last  # seq numbering never restarts after pruning
    assert math.isclose(reopened.total_cost(), COST * TURNS)
    reopened.close()


def test_pruning_never_takes_what_the_bot_has_not_asked_past(tmp_path: Path) -> None:
    store = Store(tmp_path / "session.db")
    for i in range(2000):
        turn(store, i)
    assert store.prune()[0] == 0  # no Replay yet: nothing is known delivered
    store.note_replayed_after(100)
    store.note_replayed_after(40)  # a later, lower ask never lowers the horizon
    events, _ = store.prune()
    assert events == 100
    assert next(store.iter_after(0))[0] == 101
    # Open messages stay, however old.
    store.add_turn("open", 1, "still waiting")
    store.prune(keep_finished=0, keep_days=0)
    assert store.item("open") is not None and store.open_count() == 1
    store.close()


def test_the_bot_journal_forgets_old_closed_prompts_only(tmp_path: Path) -> None:
    j = Journal(tmp_path / "bot.db")
    for i in range(30):
        n, _ = j.add_prompt("s", f"p{i}", 1, "Allow Bash?")
        if i != 3:
            j.close_prompt(n, "answered")
    assert j.prune_prompts(keep=10) == 18  # n 1..19 closed and older than the newest 10, but p3
    assert j.prompt_by_id("s", "p3") is not None and j.prompt_by_id("s", "p3").state == "open"
    assert j.prompt_by_id("s", "p0") is None
    assert j.prompt_by_id("s", "p29") is not None
    j.close()
