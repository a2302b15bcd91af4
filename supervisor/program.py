"""One supervised program's life: start, stop, kill, exits, retries; every step via change_state.

This is the core supervisord keeps in `Subprocess`, without the OS: the clock, the timers and
the spawner are injected, so unit tests run whole crash loops in microseconds with doubles, and
`supervisor.process` supplies the real fork+exec and the pidfd exit watch.

Exits arrive as calls to `child_exited(code)` (code negative for a signal) the moment the OS
reports them; nothing here polls. Never blocks, never sleeps.

A program whose policy says `give_up=False` (the bot: the lifeline) is never made FATAL; past
the limit it waits in BACKOFF and `retrying()` says since when and why.
"""
from __future__ import annotations

import random
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from supervisor.backoff import Backoff, Policy
from supervisor.states import State, change_state
from wire.exits import describe_exit
from wire.messages import StateChange


class Timer(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def wall(self) -> float: ...

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer: ...


class Child(Protocol):
    pid: int

    def signal(self, sig: int) -> None: ...


class SpawnError(RuntimeError):
    """The program could not be spawned at all; str() says why."""


Spawner = Callable[["Program"], Child]
Listener = Callable[["Program", StateChange], None]


@dataclass
class ProgramConfig:
    startsecs: float = 1.0
    stopwaitsecs: float = 10.0
    policy: Policy = field(default_factory=Policy)


class Program:
    def __init__(
        self,
        name: str,
        config: ProgramConfig,
        clock: Clock,
        spawner: Spawner,
        listener: Listener | None = None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.name = name
        self.config = config
        self.clock = clock
        self.spawner = spawner
        self.listeners: list[Listener] = [listener] if listener else []
        self.backoff = Backoff(config.policy, rng)
        self.state = State.STOPPED
        self.child: Child | None = None
        self.pid: int | None = None
        self.start_mono: float | None = None  # when the current/last process was spawned
        self.start_wall: float | None = None
        self.stop_wall: float | None = None
        self.exit_code: int | None = None
        self.reason = ""
        self._timer: Timer | None = None
        self._kill_reason = ""
        self._start_after_stop = False
        self.retry_since: float | None = None  # wall time of the current streak's first failure
        self.retry_why = ""  # the last failure: the program's own sentence, or its exit described
        self.live_trouble = ""  # set by the shell: alive but not through (the bot and Telegram)

    # ------------------------------------------------------------------ queries

    def uptime(self) -> float | None:
        if self.state is State.RUNNING and self.start_mono is not None:
            return max(0.0, self.clock.monotonic() - self.start_mono)
        return None

    @property
    def lifeline(self) -> bool:
        return not self.config.policy.give_up

    def retrying(self) -> tuple[float, str] | None:
        """(since, why) while the lifeline is being retried: waiting past its limit in BACKOFF,
        or alive but not through yet (`live_trouble`); None otherwise."""
        if not self.lifeline:
            return None
        now = self.clock.monotonic()
        if self.state is State.BACKOFF and self.backoff.past_limit(now):
            return (self.retry_since or self.clock.wall(), self.retry_why)
        if self.live_trouble and self.state in (State.STARTING, State.RUNNING):
            since = self.start_wall or self.clock.wall()
            if self.retry_since is not None and self.backoff.in_streak(now):
                since = min(since, self.retry_since)
            return (since, self.live_trouble)
        return None

    # ------------------------------------------------------------------ commands

    def set_config(self, config: ProgramConfig) -> None:
        self.config = config
        self.backoff.policy = config.policy

    def start(self, *, forgive: bool = True) -> str | None:
        """Spawn now (an explicit start forgives past failures and clears FATAL).

        Returns None, or a short error such as 'already started'.
        """
        if self.state in (State.STARTING, State.RUNNING):
            return "already started"
        if self.state is State.STOPPING:
            self._start_after_stop = True
            return None
        if forgive:
            self.backoff.reset()
        self._cancel_timer()
        self._spawn()
        return None

    def stop(self) -> str | None:
        """SIGTERM now, SIGKILL after stopwaitsecs; STOPPED once it is gone."""
        self._start_after_stop = False
        if self.state in (State.STARTING, State.RUNNING):
            self._cancel_timer()
            self._set(State.STOPPING, reason="stop requested")
            self._signal(signal.SIGTERM)
            self._timer = self.clock.call_later(self.config.stopwaitsecs, self._stop_timeout)
            return None
        if self.state is State.BACKOFF:
            self._cancel_timer()
            self._set(State.STOPPED, reason="stopped while waiting to retry")
            self.stop_wall = self.clock.wall()
            return None
        if self.state is State.STOPPING:
            return None
        return "not running"

    def restart(self) -> None:
        if self.state in (State.STARTING, State.RUNNING, State.STOPPING):
            self.stop()
            self._start_after_stop = True
        else:
            self.start()

    def kill(self, reason: str) -> bool:
        """SIGKILL a live process that misbehaves (hung, too big); it restarts as after a crash."""
        if self.child is None or self.state not in (State.STARTING, State.RUNNING):
            return False
        self._kill_reason = reason
        self._signal(signal.SIGKILL)
        return True

    # ------------------------------------------------------------------ events from the OS

    def child_exited(self, code: int, last_words: str = "") -> None:
        """The process is gone and reaped; `code` is negative for a signal. `last_words` is the
        one sentence it printed last on stderr, if any (kept as the why of a lifeline's retry
        when it stopped itself with an error)."""
        self.child = None
        self.live_trouble = ""
        self._cancel_timer()
        self.exit_code = code
        now = self.clock.monotonic()
        desc = describe_exit(code)
        kill_reason, self._kill_reason = self._kill_reason, ""
        if kill_reason:
            desc = f"{kill_reason} ({desc})"
        # A program that stopped itself with an error and one sentence said why in its own words.
        own = last_words if code > 0 and last_words and not kill_reason else ""
        if self.state is State.STOPPING:
            self.stop_wall = self.clock.wall()
            self._set(State.STOPPED, exit_code=code, reason=desc)
            if self._start_after_stop:
                self._start_after_stop = False
                self.start()
            return
        if self.state is State.STARTING:
            self._failed(now, f"exited too quickly ({desc})", why=own, exit_code=code,
                         after_running=False)
            return
        if self.state is State.RUNNING:
            self.stop_wall = self.clock.wall()
            self._set(State.EXITED, exit_code=code, reason=desc)
            if code == 0 and not kill_reason:
                return  # an expected exit: stays EXITED until started (or written to)
            self._failed(now, desc, why=own, exit_code=code, after_running=True)
            return
        # An exit in any other state means we lost track of a process: record it, change nothing.
        self.reason = f"unexpected exit in {self.state} ({desc})"

    # ------------------------------------------------------------------ internals

    def _spawn(self) -> None:
        try:
            child = self.spawner(self)
        except SpawnError as exc:
            self.pid = None
            self._set(State.STARTING, reason="spawning")
            self._failed(self.clock.monotonic(), f"spawn error: {exc}", after_running=False)
            return
        self.child = child
        self.pid = child.pid
        self.start_mono = self.clock.monotonic()
        self.start_wall = self.clock.wall()
        self.exit_code = None
        self._set(State.STARTING, reason="spawned")
        if self.config.startsecs <= 0:
            self._set(State.RUNNING, reason="started")
        else:
            self._timer = self.clock.call_later(self.config.startsecs, self._started)

    def _started(self) -> None:
        self._timer = None
        if self.state is State.STARTING:
            self._set(State.RUNNING, reason=f"stayed up for {self.config.startsecs:g}s")

    def _failed(self, now: float, desc: str, *, why: str = "", exit_code: int | None = None,
                after_running: bool) -> None:
        n = self.backoff.record_failure(now)
        if self.backoff.streak_failures == 1:
            self.retry_since = self.clock.wall()
        self.retry_why = why or desc
        retries = self.config.policy.retries
        if self.backoff.should_give_up(now):
            window = self.config.policy.window
            self._set(State.FATAL, exit_code=exit_code,
                      reason=f"{desc}; gave up after {n} failures in {window:g}s")
            return
        delay = self.backoff.delay(now, after_running=after_running)
        if after_running and delay == 0:
            self._spawn()
            return
        if self.lifeline and self.backoff.past_limit(now):
            # Never FATAL: the bot is the only way the user can reach anything.
            reason = (f"{desc}; still retrying after {self.backoff.streak_failures} failures,"
                      f" next in {delay:.2f}s")
        else:
            reason = f"{desc}; retry {n} of {retries} in {delay:.2f}s"
        self._set(State.BACKOFF, exit_code=exit_code, reason=reason)
        self._timer = self.clock.call_later(delay, self._retry)

    def _retry(self) -> None:
        self._timer = None
        if self.state is State.BACKOFF:
            self._spawn()

    def _stop_timeout(self) -> None:
        self._timer = None
        if self.state is State.STOPPING:
            self._kill_reason = f"did not stop within {self.config.stopwaitsecs:g}s"
            self._signal(signal.SIGKILL)

    def _signal(self, sig: int) -> None:
        if self.child is not None:
            try:
                self.child.signal(sig)
            except ProcessLookupError:
                pass  # already dead; its exit is on its way

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _set(self, new: State, *, exit_code: int | None = None, reason: str = "") -> None:
        event = change_state(self.name, self.state, new, time=self.clock.wall(),
                             pid=self.pid, exit_code=exit_code, reason=reason)
        self.state = new
        self.reason = reason
        for listener in list(self.listeners):
            listener(self, event)
