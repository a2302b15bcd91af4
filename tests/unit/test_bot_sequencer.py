"""bot.sequencer: one session's event order as pure decisions, driven by tables and a fake clock."""
from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from bot.sequencer import REPLAY_RETRY_SECONDS, Offer, Resync, Sequencer, Verdict

D, DUP, GAP = Verdict.DELIVER, Verdict.DUPLICATE, Verdict.GAP


@dataclass
class Shell:
    """Plays the shell around a Sequencer: sends every replay it is told to, at a fake time."""

    seq: Sequencer
    now: float = 1000.0
    connected: bool = True  # whether the worker takes a Replay (ROUTER_MANDATORY)
    replays: list[int] = field(default_factory=list)  # after_seq of each replay that went out

    def replay(self, force: bool = False) -> None:
        if self.seq.replay_due(self.now, force):
            if self.connected:
                self.replays.append(self.seq.after_seq)
            self.seq.replay_requested(self.now, self.connected)

    def offer(self, seq: int) -> Verdict:
        o = self.seq.offer(seq, self.now)
        if o.replay:
            self.replay()
        return o.verdict

    def hello(self, last_seq: int) -> Resync:
        r = self.seq.hello(last_seq)
        self.replay(force=True)
        return r

    def replay_done(self) -> None:
        if self.seq.replay_done():
            self.replay()


def synced(delivered: int = 0) -> Shell:
    sh = Shell(Sequencer.after(delivered))
    sh.seq.replay_done()
    return sh


# --------------------------------------------------------------------------- offer, once synced

@pytest.mark.parametrize(("delivered", "arrivals", "verdicts", "expected_after"), [
    # in order: each delivered once
    (0, [1, 2, 3], [D, D, D], 4),
    # a repeat of what was taken (a replay overlapping the live stream) is dropped
    (0, [1, 2, 2, 1, 3], [D, D, DUP, DUP, D], 4),
    # a gap: the early one is held back (the replay brings it), the missing one then fits
    (0, [1, 3, 2], [D, GAP, D], 3),
    # resumed after a restart: what Telegram already accepted is a duplicate
    (5, [4, 5, 6, 7], [DUP, DUP, D, D], 8),
    # ephemeral deltas pass straight through, in any position, and never move the order
    (2, [0, 3, 0, 0, 4], [D, D, D, D, D], 5),
    (2, [0, 9, 0], [D, GAP, D], 3),
])
def test_offer_in_sequence(delivered: int, arrivals: list[int], verdicts: list[Verdict],
                           expected_after: int) -> None:
    sh = synced(delivered)
    assert [sh.offer(s) for s in arrivals] == verdicts
    assert sh.seq.expected == expected_after


@pytest.mark.parametrize(("arrivals", "max_seen"), [
    ([], 0), ([1, 2], 2), ([1, 5, 3], 5), ([0, 0], 0), ([4, 1], 4),
])
def test_max_seen_counts_durable_events_taken_or_not(arrivals: list[int], max_seen: int) -> None:
    sh = synced()
    for s in arrivals:
        sh.offer(s)
    assert sh.seq.max_seen == max_seen


# --------------------------------------------------------------------------- replay requests

@pytest.mark.parametrize(("steps", "replays"), [
    # synced and in order: never a replay
    ([("offer", 1), ("offer", 2)], []),
    # a gap asks for everything after the last taken
    ([("offer", 1), ("offer", 3)], [1]),
    # a second gap inside the retry window does not ask again...
    ([("offer", 2), ("wait", 1.0), ("offer", 3)], [0]),
    # ...one after it does
    ([("offer", 2), ("wait", REPLAY_RETRY_SECONDS), ("offer", 3)], [0, 0]),
    # a duplicate of a synced line is no reason to ask
    ([("offer", 1), ("offer", 1)], []),
])
def test_replays_on_gaps_are_throttled(steps: list[tuple[str, float]], replays: list[int]) -> None:
    sh = synced()
    for what, arg in steps:
        if what == "wait":
            sh.now += arg
        else:
            sh.offer(int(arg))
    assert sh.replays == replays


def test_an_unsynced_line_asks_on_every_arrival_throttled() -> None:
    sh = Shell(Sequencer.after(3))
    assert sh.offer(0) is D and sh.replays == [3]  # even an ephemeral delta is a reason
    assert sh.offer(4) is D and sh.replays == [3]  # within the window: not again
    sh.now += REPLAY_RETRY_SECONDS
    # asked once 5 is taken: the replay starts after it, so it does not bring 5 back
    assert sh.offer(5) is D and sh.replays == [3, 5]
    sh.now += REPLAY_RETRY_SECONDS
    assert sh.offer(5) is DUP and sh.replays == [3, 5, 5]


def test_a_failed_send_may_be_retried_at_once() -> None:
    sh = synced()
    sh.connected = False
    assert sh.offer(2) is GAP and sh.replays == [] and sh.seq.replay_sent is None
    sh.connected = True
    assert sh.offer(3) is GAP and sh.replays == [0]


@pytest.mark.parametrize(("sent_at", "now", "force", "due"), [
    (None, 0.0, False, True),
    (100.0, 100.0, False, False),
    (100.0, 100.0 + REPLAY_RETRY_SECONDS - 0.01, False, False),
    (100.0, 100.0 + REPLAY_RETRY_SECONDS, False, True),
    (100.0, 100.0, True, True),
])
def test_replay_due(sent_at: float | None, now: float, force: bool, due: bool) -> None:
    s = Sequencer(expected=1, replay_sent=sent_at)
    assert s.replay_due(now, force) is due


# --------------------------------------------------------------------------- Hello

@pytest.mark.parametrize(("delivered", "last_seq", "reset", "expected_after", "replay_after"), [
    # the worker has what we saw, or more: keep our place, ask for the rest
    (5, 5, None, 6, 5),
    (5, 9, None, 6, 5),
    (0, 0, None, 1, 0),
    # its outbox is younger (the session was re-created): follow it down
    (5, 2, 2, 3, 2),
    (5, 0, 0, 1, 0),
])
def test_hello(delivered: int, last_seq: int, reset: int | None, expected_after: int,
               replay_after: int) -> None:
    sh = Shell(Sequencer.after(delivered))
    assert sh.hello(last_seq) == Resync(reset_delivered=reset)
    assert sh.seq.expected == expected_after
    assert sh.replays == [replay_after]


def test_hello_asks_even_inside_the_retry_window() -> None:
    sh = synced()
    sh.offer(3)
    sh.hello(7)
    assert sh.replays == [0, 0]


# --------------------------------------------------------------------------- ReplayDone

@pytest.mark.parametrize(("arrivals", "again"), [
    ([], False),  # nothing beyond: synced, quiet
    ([1, 2], False),  # everything seen was taken
    ([1, 3], True),  # 3 arrived ahead of 2: ask again at once
])
def test_replay_done(arrivals: list[int], again: bool) -> None:
    sh = Shell(Sequencer.after(0))
    for s in arrivals:
        sh.seq.offer(s, sh.now)
    sh.seq.replay_requested(sh.now, True)
    before = len(sh.replays)
    sh.replay_done()
    assert sh.seq.synced and (len(sh.replays) > before) is again


def test_offer_reports_its_replay_flag() -> None:
    s = Sequencer.after(0)
    assert s.offer(1, 0.0) == Offer(D, True)  # unsynced: ask
    s.replay_requested(0.0, True)
    assert s.offer(2, 1.0) == Offer(D, False)  # asked a second ago
    s.replay_done()
    assert s.offer(4, 1.0) == Offer(GAP, True)


def test_replay_after_a_restart_fills_the_gap_exactly_once() -> None:
    # The bot took 1..2, crashed; events 3..4 were live while it was down. The restarted line
    # sees 5 live first, then the replay's 3, 4, 5.
    sh = Shell(Sequencer.after(2))
    taken: list[int] = []
    for s in [5, 3, 4, 5]:
        if sh.offer(s) is D:
            taken.append(s)
    sh.replay_done()
    assert taken == [3, 4, 5] and sh.replays == [2] and sh.seq.expected == 6
