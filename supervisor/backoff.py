"""Restart policy: when to try again, and when to give up.

Pure: the caller passes the time and a random source. A failure is a start that died before
`startsecs`, a spawn error, or a crash after RUNNING (supervisord forgives those forever; we do
not). Failures older than `window` are forgotten. With `retries` allowed retries, the failure
that makes `retries + 1` inside the window is the one that gives up (supervisord's meaning of
`startretries`: 0 means no retry at all).

Delay before retry n (n = failures in the window): `initial * 2**(n-1)`, capped at `cap`, then
scaled by a jitter factor in [0.5, 1.0] so a crowd of crashing workers does not restart in step.
The first crash of a program that had been RUNNING is retried at once: that is the kill-to-new-pid
latency users notice.
"""
from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Policy:
    retries: int = 3
    window: float = 60.0
    initial: float = 0.5
    cap: float = 30.0


@dataclass
class Backoff:
    policy: Policy
    rng: Callable[[], float] = field(default=random.random)
    failures: deque[float] = field(default_factory=deque)

    def _forget_old(self, now: float) -> None:
        while self.failures and now - self.failures[0] > self.policy.window:
            self.failures.popleft()

    def count(self, now: float) -> int:
        self._forget_old(now)
        return len(self.failures)

    def record_failure(self, now: float) -> int:
        """Count one failure at `now`; return the number inside the window."""
        self.failures.append(now)
        return self.count(now)

    def should_give_up(self, now: float) -> bool:
        return self.count(now) > self.policy.retries

    def delay(self, now: float, *, after_running: bool) -> float:
        """Seconds to wait before the next try (call after record_failure)."""
        n = self.count(now)
        if after_running and n <= 1:
            return 0.0
        base = min(self.policy.cap, self.policy.initial * (2 ** max(0, n - 1)))
        return float(base * (0.5 + 0.5 * self.rng()))

    def reset(self) -> None:
        """An explicit start (or a user writing to the session) forgives the past."""
        self.failures.clear()
