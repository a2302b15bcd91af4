"""One session's event order, as pure decisions: deliver, drop a duplicate, or ask for a replay.

The worker numbers every durable event (seq > 0) and keeps it in its outbox; the bot must show
them in exactly that order, each once. A `Sequencer` holds what the bot knows of one session's
numbering (the next seq it expects, the highest it has seen, whether a replay has caught it up,
when it last asked for one) and answers, for each thing the worker sends, what to do with it:

- an event: deliver it, drop it (a duplicate of one already taken), or hold off because of a
  gap (an earlier event is missing) and ask for a `Replay(after_seq)`;
- a `Hello(last_seq)`: the worker (re)connected; an outbox younger than what the bot saw means
  the session was re-created, so the expected seq follows it down; a replay is always asked;
- a `ReplayDone`: caught up; ask again when events past the expected one arrived meanwhile.

Ephemeral events (seq 0, streamed deltas) pass straight through. Replay requests are spaced by
`retry_seconds`, on a clock the caller passes in as `now`.

This module must never do I/O, read a clock or touch asyncio: the shell (bot.delivery) sends
the replays, writes bot.db and talks to Telegram around these decisions.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

REPLAY_RETRY_SECONDS = 5.0


class Verdict(enum.Enum):
    DELIVER = "deliver"  # the next event in order (or an ephemeral one): show it
    DUPLICATE = "duplicate"  # already taken: drop it
    GAP = "gap"  # an earlier event is missing: drop it, the replay brings it back in order


@dataclass(frozen=True)
class Offer:
    """What to do with one incoming event, and whether to ask for a replay now."""

    verdict: Verdict
    replay: bool


@dataclass(frozen=True)
class Resync:
    """What a worker's Hello means: a replay is always asked for, forced past the throttle."""

    reset_delivered: int | None  # the outbox starts over: bot.db's delivered seq follows it down


@dataclass
class Sequencer:
    expected: int  # the next durable seq to deliver
    max_seen: int = 0  # the highest durable seq that arrived, taken or not
    synced: bool = False  # a replay has been answered since this line began
    replay_sent: float | None = None  # when the outstanding replay request went out
    retry_seconds: float = REPLAY_RETRY_SECONDS

    @classmethod
    def after(cls, delivered: int) -> Sequencer:
        """The state of a line whose events up to `delivered` Telegram already accepted."""
        return cls(expected=delivered + 1)

    @property
    def after_seq(self) -> int:
        """What a Replay asks for: every event after the last one taken."""
        return self.expected - 1

    # ----------------------------------------------------------------------- replay requests

    def replay_due(self, now: float, force: bool = False) -> bool:
        """Whether a replay request should go out now (at most one per `retry_seconds`)."""
        return (force or self.replay_sent is None
                or now - self.replay_sent >= self.retry_seconds)

    def replay_requested(self, now: float, sent: bool) -> None:
        """The shell tried to send a replay request; a failed send may be retried at once."""
        self.replay_sent = now if sent else None

    # ----------------------------------------------------------------------- what arrives

    def offer(self, seq: int, now: float) -> Offer:
        """An event arrived with this seq."""
        if seq <= 0:
            return Offer(Verdict.DELIVER, self._wants(now))
        self.max_seen = max(self.max_seen, seq)
        if seq < self.expected:
            return Offer(Verdict.DUPLICATE, self._wants(now))
        if seq > self.expected:
            return Offer(Verdict.GAP, self.replay_due(now))
        self.expected += 1
        return Offer(Verdict.DELIVER, self._wants(now))

    def hello(self, last_seq: int) -> Resync:
        """The worker (re)connected; its outbox ends at `last_seq`."""
        if last_seq < self.after_seq:
            self.expected = last_seq + 1
            return Resync(reset_delivered=last_seq)
        return Resync(reset_delivered=None)

    def replay_done(self) -> bool:
        """A replay was answered in full; True when another one should go out now."""
        self.replay_sent = None
        self.synced = True
        return self.max_seen >= self.expected

    def _wants(self, now: float) -> bool:
        # Until a replay has been answered, the bot may have missed events (it or the worker
        # restarted), so every arrival is a reason to ask again, throttled.
        return not self.synced and self.replay_due(now)
