"""Restart policy: when to try again, and when to give up (or, for the lifeline, never).

Pure: the caller passes the time and a random source. A failure is a start that died before
`startsecs`, a spawn error, or a crash after RUNNING (supervisord forgives those forever; we do
not). Failures older than `window` are forgotten. With `retries` allowed retries, the failure
that makes `retries + 1` inside the window is the one that gives up (supervisord's meaning of
`startretries`: 0 means no retry at all).

Delay before retry n (n = failures in the window): `initial * 2**(n-1)`, capped at `cap`, then
scaled by a jitter factor in [0.5, 1.0] so a crowd of crashing workers does not restart in step.
The first crash of a program that had been RUNNING is retried at once: that is the kill-to-new-pid
latency users notice.

The lifeline (`give_up=False`, the bot: the user's only way in) never gives up. Past the limit it
keeps retrying every `lifeline_cap` seconds (jittered, never above LIFELINE_MAX_SECONDS) until it
stays up. A *streak* is the run of failures since the program last stayed up for a whole window
(the waits we imposed do not count as staying up); its first failure is "retrying since".
"""
from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

# The lifeline's longest wait between tries: long enough not to hammer a Telegram that is down,
# short enough that the bot is back within a minute of Telegram.
LIFELINE_MAX_SECONDS = 60.0


@dataclass(frozen=True)
class Policy:
    retries: int = 3
    window: float = 60.0
    initial: float = 0.5
    cap: float = 30.0
    give_up: bool = True  # False: the lifeline, retried forever (never FATAL)
    lifeline_cap: float = LIFELINE_MAX_SECONDS  # its delay once past the limit


@dataclass
class Backoff:
    policy: Policy
    rng: Callable[[], float] = field(default=random.random)
    failures: deque[float] = field(default_factory=deque)
    streak_start: float | None = None  # monotonic time of the current streak's first failure
    streak_failures: int = 0
    _last_failure: float | None = None
    _last_delay: float = 0.0

    def _forget_old(self, now: float) -> None:
        while self.failures and now - self.failures[0] > self.policy.window:
            self.failures.popleft()

    def count(self, now: float) -> int:
        self._forget_old(now)
        return len(self.failures)

    def record_failure(self, now: float) -> int:
        """Count one failure at `now`; return the number inside the window."""
        last = self._last_failure
        if last is None or now - last - self._last_delay > self.policy.window:
            self.streak_start, self.streak_failures = now, 0
        self.streak_failures += 1
        self._last_failure, self._last_delay = now, 0.0
        self.failures.append(now)
        return self.count(now)

    def should_give_up(self, now: float) -> bool:
        return self.policy.give_up and self.count(now) > self.policy.retries

    def past_limit(self, now: float) -> bool:
        """More failures than `retries` allow: FATAL for a program, the lifeline waits long."""
        return self.count(now) > self.policy.retries or (
            not self.policy.give_up and self.streak_failures > self.policy.retries)

    def in_streak(self, now: float) -> bool:
        """A failure recent enough (beyond the wait it imposed) that the streak is not over."""
        last = self._last_failure
        return last is not None and now - last - self._last_delay <= self.policy.window

    def delay(self, now: float, *, after_running: bool) -> float:
        """Seconds to wait before the next try (call after record_failure)."""
        n = self.count(now)
        if not self.policy.give_up and self.past_limit(now):
            base = min(self.policy.lifeline_cap, LIFELINE_MAX_SECONDS)
        elif after_running and n <= 1:
            return 0.0
        else:
            base = min(self.policy.cap, self.policy.initial * (2 ** max(0, n - 1)))
        self._last_delay = float(base * (0.5 + 0.5 * self.rng()))
        return self._last_delay

    def reset(self) -> None:
        """An explicit start (or a user writing to the session) forgives the past."""
        self.failures.clear()
        self.streak_start, self.streak_failures = None, 0
        self._last_failure, self._last_delay = None, 0.0
