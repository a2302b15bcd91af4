"""The state machine and the restart policy, driven by a fake clock and a fake spawner."""
from __future__ import annotations

import heapq
import itertools
import signal
from collections.abc import Callable

import pytest

from supervisor.backoff import Backoff, Policy
from supervisor.program import Program, ProgramConfig, SpawnError
from supervisor.states import TRANSITIONS, BadTransition, State, change_state

S = State


class FakeTimer:
    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self._queue: list[tuple[float, int, FakeTimer, Callable[[], None]]] = []
        self._seq = itertools.count()

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return self.now + 1_700_000_000

    def call_later(self, delay: float, cb: Callable[[], None]) -> FakeTimer:
        t = FakeTimer()
        heapq.heappush(self._queue, (self.now + delay, next(self._seq), t, cb))
        return t

    def advance(self, seconds: float) -> None:
        end = self.now + seconds
        while self._queue and self._queue[0][0] <= end:
            when, _, t, cb = heapq.heappop(self._queue)
            self.now = max(self.now, when)
            if not t.cancelled:
                cb()
        self.now = end


class FakeChild:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.signals: list[int] = []

    def signal(self, sig: int) -> None:
        self.signals.append(sig)


class FakeSpawner:
    def __init__(self) -> None:
        self.pids = itertools.count(100)
        self.children: list[FakeChild] = []
        self.fail_with: str | None = None

    def __call__(self, program: Program) -> FakeChild:
        if self.fail_with:
            raise SpawnError(self.fail_with)
        child = FakeChild(next(self.pids))
        self.children.append(child)
        return child

    @property
    def last(self) -> FakeChild:
        return self.children[-1]


def make(startsecs: float = 1.0, retries: int = 3, window: float = 60.0,
         initial: float = 0.5, cap: float = 30.0, stopwaitsecs: float = 10.0):
    clock, spawner = FakeClock(), FakeSpawner()
    events: list = []
    cfg = ProgramConfig(startsecs=startsecs, stopwaitsecs=stopwaitsecs,
                        policy=Policy(retries=retries, window=window, initial=initial, cap=cap))
    prog = Program("session:a", cfg, clock, spawner, lambda p, e: events.append(e), rng=lambda: 1.0)
    return prog, clock, spawner, events


def path(events) -> list[str]:
    return [e.to_state for e in events]


# ---------------------------------------------------------------- states


def test_every_state_has_a_transition_entry():
    assert set(TRANSITIONS) == set(State)


@pytest.mark.parametrize("old,new", [(S.STOPPED, S.RUNNING), (S.RUNNING, S.STARTING),
                                     (S.FATAL, S.RUNNING), (S.STOPPING, S.RUNNING)])
def test_invalid_transitions_are_refused(old, new):
    with pytest.raises(BadTransition):
        change_state("x", old, new, time=0.0)


def test_change_state_builds_the_event():
    ev = change_state("bot", S.RUNNING, S.EXITED, time=5.0, pid=7, exit_code=-9, reason="r")
    assert (ev.program, ev.from_state, ev.to_state, ev.pid, ev.exit_code, ev.reason, ev.time) == (
        "bot", "RUNNING", "EXITED", 7, -9, "r", 5.0)


# ---------------------------------------------------------------- start and stop


def test_start_becomes_running_after_startsecs():
    prog, clock, _spawner, events = make(startsecs=1.0)
    prog.start()
    assert prog.state is S.STARTING and prog.pid == 100
    clock.advance(0.99)
    assert prog.state is S.STARTING
    clock.advance(0.02)
    assert prog.state is S.RUNNING
    assert path(events) == ["STARTING", "RUNNING"]
    assert prog.uptime() == pytest.approx(1.01)


def test_startsecs_zero_is_running_at_once():
    prog, _clock, _spawner, events = make(startsecs=0)
    prog.start()
    assert path(events) == ["STARTING", "RUNNING"]


def test_start_when_running_says_already_started():
    prog, clock, _, _ = make()
    prog.start()
    clock.advance(2)
    assert prog.start() == "already started"


def test_stop_sends_term_then_kill_after_stopwaitsecs():
    prog, clock, spawner, events = make(stopwaitsecs=10)
    prog.start()
    clock.advance(2)
    prog.stop()
    assert prog.state is S.STOPPING and spawner.last.signals == [signal.SIGTERM]
    clock.advance(9.9)
    assert spawner.last.signals == [signal.SIGTERM]
    clock.advance(0.2)
    assert spawner.last.signals == [signal.SIGTERM, signal.SIGKILL]
    prog.child_exited(-9)
    assert prog.state is S.STOPPED
    assert events[-1].exit_code == -9 and "did not stop within 10s" in events[-1].reason


def test_stop_that_exits_in_time_is_not_killed():
    prog, clock, spawner, _events = make()
    prog.start()
    clock.advance(2)
    prog.stop()
    prog.child_exited(0)
    clock.advance(60)
    assert prog.state is S.STOPPED and spawner.last.signals == [signal.SIGTERM]
    assert len(spawner.children) == 1  # not restarted


def test_stop_in_backoff_cancels_the_retry():
    prog, clock, spawner, _events = make()
    prog.start()
    prog.child_exited(1)
    assert prog.state is S.BACKOFF
    prog.stop()
    clock.advance(100)
    assert prog.state is S.STOPPED and len(spawner.children) == 1


def test_restart_stops_then_starts_with_a_new_pid():
    prog, clock, _spawner, events = make()
    prog.start()
    clock.advance(2)
    prog.restart()
    prog.child_exited(-15)
    assert prog.state is S.STARTING and prog.pid == 101
    assert path(events) == ["STARTING", "RUNNING", "STOPPING", "STOPPED", "STARTING"]


def test_stop_when_stopped_says_not_running():
    prog, _, _, _ = make()
    assert prog.stop() == "not running"


# ---------------------------------------------------------------- crashes and backoff


def test_crash_after_running_restarts_at_once_with_exit_code():
    prog, clock, _spawner, events = make()
    prog.start()
    clock.advance(5)
    prog.child_exited(-9)
    assert prog.state is S.STARTING and prog.pid == 101
    exited = events[-2]
    assert (exited.from_state, exited.to_state, exited.exit_code, exited.pid) == (
        "RUNNING", "EXITED", -9, 100)
    assert "SIGKILL" in exited.reason


def test_clean_exit_after_running_stays_exited():
    prog, clock, spawner, _events = make()
    prog.start()
    clock.advance(5)
    prog.child_exited(0)
    clock.advance(100)
    assert prog.state is S.EXITED and len(spawner.children) == 1


def test_always_crashing_goes_fatal_after_retries_with_growing_delays():
    prog, clock, spawner, events = make(retries=3, initial=0.5)
    prog.start()
    delays = []
    for _ in range(3):
        prog.child_exited(1)
        assert prog.state is S.BACKOFF
        t0 = clock.now
        while prog.state is S.BACKOFF:
            clock.advance(0.01)
        delays.append(round(prog.start_mono - t0, 2))
    prog.child_exited(1)
    assert prog.state is S.FATAL
    assert delays == [0.5, 1.0, 2.0]  # rng=1.0: the top of the jitter range
    assert len(spawner.children) == 4
    assert "gave up after 4 failures" in events[-1].reason
    clock.advance(1000)
    assert prog.state is S.FATAL and len(spawner.children) == 4


def test_crashes_after_running_count_too():
    """supervisord restarts these forever; we give up like for start failures."""
    prog, clock, spawner, events = make(retries=3, startsecs=1, window=60)
    prog.start()
    for _ in range(4):
        while prog.state is not S.RUNNING:
            clock.advance(0.05)
        clock.advance(2)  # up and RUNNING for a while, then crash
        prog.child_exited(-11)
    assert prog.state is S.FATAL
    assert len(spawner.children) == 4
    assert "EXITED" in path(events) and path(events)[-1] == "FATAL"


def test_failures_outside_the_window_are_forgotten():
    prog, clock, _spawner, _events = make(retries=1, window=10)
    prog.start()
    for _ in range(5):
        clock.advance(20)
        assert prog.state is S.RUNNING
        prog.child_exited(-9)  # one crash per 20 s, window 10 s: never two in the window
    assert prog.state is S.STARTING


def test_explicit_start_clears_fatal_and_forgives():
    prog, clock, _spawner, _events = make(retries=0)
    prog.start()
    prog.child_exited(1)
    assert prog.state is S.FATAL
    prog.start()
    assert prog.state is S.STARTING
    clock.advance(2)
    assert prog.state is S.RUNNING


def test_spawn_error_backs_off_then_fatal():
    prog, clock, spawner, _events = make(retries=1)
    spawner.fail_with = "no such file"
    prog.start()
    assert prog.state is S.BACKOFF and "spawn error: no such file" in prog.reason
    clock.advance(5)
    assert prog.state is S.FATAL


def test_kill_marks_the_reason_and_restarts():
    prog, clock, spawner, events = make()
    prog.start()
    clock.advance(2)
    assert prog.kill("no heartbeat for 15s")
    assert spawner.last.signals == [signal.SIGKILL]
    prog.child_exited(-9)
    assert events[-2].to_state == "EXITED" and "no heartbeat" in events[-2].reason
    assert prog.state is S.STARTING


def test_kill_with_clean_exit_still_restarts():
    prog, clock, _spawner, _events = make()
    prog.start()
    clock.advance(2)
    prog.kill("rss over limit")
    prog.child_exited(0)
    assert prog.state is S.STARTING


# ---------------------------------------------------------------- backoff policy alone


@pytest.mark.parametrize("rng,expected", [(0.0, [0.25, 0.5, 1.0, 2.0, 2.5]),
                                          (1.0, [0.5, 1.0, 2.0, 4.0, 5.0])])
def test_backoff_delays_double_with_jitter_and_cap(rng, expected):
    b = Backoff(Policy(retries=10, window=100, initial=0.5, cap=5.0), rng=lambda: rng)
    got = []
    for i in range(5):
        b.record_failure(float(i))
        got.append(b.delay(float(i), after_running=False))
    assert got == expected


def test_backoff_first_crash_after_running_is_immediate_second_is_not():
    b = Backoff(Policy(retries=5, window=60, initial=1.0), rng=lambda: 1.0)
    b.record_failure(0.0)
    assert b.delay(0.0, after_running=True) == 0.0
    b.record_failure(1.0)
    assert b.delay(1.0, after_running=True) == 2.0


def test_backoff_give_up_counts_only_the_window():
    b = Backoff(Policy(retries=2, window=10), rng=lambda: 0.5)
    for t in (0.0, 1.0, 2.0):
        b.record_failure(t)
    assert b.should_give_up(2.0)
    assert not b.should_give_up(11.5)


# ---------------------------------------------------------------- the lifeline (the bot)


def make_lifeline(retries: int = 3, window: float = 60.0, initial: float = 0.5, cap: float = 30.0,
                  lifeline_cap: float = 60.0, startsecs: float = 1.0, rng: float = 1.0):
    clock, spawner = FakeClock(), FakeSpawner()
    events: list = []
    cfg = ProgramConfig(startsecs=startsecs, policy=Policy(
        retries=retries, window=window, initial=initial, cap=cap, give_up=False,
        lifeline_cap=lifeline_cap))
    prog = Program("bot", cfg, clock, spawner, lambda p, e: events.append(e), rng=lambda: rng)
    return prog, clock, spawner, events


def run_until_spawned(prog: Program, clock: FakeClock, step: float = 0.05,
                      limit: float = 120.0) -> float:
    """Advance through BACKOFF until the next spawn; the simulated seconds it took."""
    t0 = clock.now
    while prog.state is S.BACKOFF:
        assert clock.now - t0 <= limit, "stuck in BACKOFF"
        clock.advance(step)
    return clock.now - t0


@pytest.mark.parametrize("kind", ["start_failure", "crash_after_running", "spawn_error"])
@pytest.mark.parametrize("rng", [0.0, 1.0])
def test_a_lifeline_crash_loop_runs_for_hours_and_never_goes_fatal(kind, rng):
    prog, clock, spawner, events = make_lifeline(retries=3, window=60, lifeline_cap=45, rng=rng)
    if kind == "spawn_error":
        spawner.fail_with = "no such file"
    prog.start()
    while clock.now < 1000.0 + 3 * 3600:  # three simulated hours
        clock.advance(0.25)
        if kind == "start_failure" and prog.state is S.STARTING:
            prog.child_exited(1)
        elif kind == "crash_after_running" and (prog.uptime() or 0) >= 2:
            prog.child_exited(-9)
    assert "FATAL" not in path(events)
    waits = [b.time for b in events if b.to_state == "BACKOFF"]
    tries = [e.time for e in events if e.to_state == "STARTING"]
    delays = [min(t for t in tries if t > w) - w for w in waits[:-1]]
    assert max(delays) <= 45 + 0.25  # capped (plus one clock step)
    assert sum(1 for d in delays if d >= 45 * 0.5) > 100  # past the limit: the long wait
    first_failure = next(e.time for e in events if e.to_state in ("BACKOFF", "EXITED"))
    assert prog.retry_since == first_failure  # one streak all along, since its first failure


@pytest.mark.parametrize("cap,expected", [(60.0, 60.0), (10.0, 10.0), (600.0, 60.0)])
def test_the_lifeline_delay_past_the_limit_is_capped_at_a_minute(cap, expected):
    b = Backoff(Policy(retries=2, window=60, give_up=False, lifeline_cap=cap), rng=lambda: 1.0)
    got = []
    for t in range(6):
        b.record_failure(float(t))
        got.append(b.delay(float(t), after_running=False))
    assert got[:2] == [0.5, 1.0]  # the usual growth while under the limit
    assert got[2:] == [expected] * 4
    assert not b.should_give_up(5.0)


def test_sessions_still_go_fatal_with_the_same_policy_numbers():
    b = Backoff(Policy(retries=2, window=60), rng=lambda: 1.0)
    for t in range(3):
        b.record_failure(float(t))
    assert b.should_give_up(2.0) and b.past_limit(2.0)


@pytest.mark.parametrize("uptime,same_streak", [(30.0, True), (59.0, True), (61.0, False),
                                                (600.0, False)])
def test_a_streak_ends_only_when_the_program_stayed_up_a_whole_window(uptime, same_streak):
    b = Backoff(Policy(retries=1, window=60, give_up=False), rng=lambda: 1.0)
    b.record_failure(0.0)
    b.record_failure(1.0)
    wait = b.delay(1.0, after_running=False)
    b.record_failure(1.0 + wait + uptime)
    assert (b.streak_start == 0.0) is same_streak
    assert b.past_limit(1.0 + wait + uptime) is same_streak


def test_the_lifeline_past_its_limit_says_since_when_and_why():
    prog, clock, _spawner, events = make_lifeline(retries=1, lifeline_cap=20)
    prog.start()
    first = clock.wall()
    prog.child_exited(1, "Telegram refused the bot token: check telegram.token.")
    assert prog.retrying() is None  # under the limit: the usual retry, nothing to report
    run_until_spawned(prog, clock)
    clock.advance(0.1)
    prog.child_exited(1, "Telegram refused the bot token: check telegram.token.")
    assert prog.state is S.BACKOFF
    assert prog.retrying() == (first, "Telegram refused the bot token: check telegram.token.")
    assert "still retrying after 2 failures" in events[-1].reason
    run_until_spawned(prog, clock)
    clock.advance(2)
    prog.child_exited(-9, "an old sentence")  # killed: its exit is the why, not old stderr
    assert prog.retrying() == (first, "killed by SIGKILL")


@pytest.mark.parametrize("code,words,why", [
    (1, "Telegram refused the bot token.", "Telegram refused the bot token."),
    (1, "", "exited too quickly (exit status 1)"),
    (-15, "a sentence", "exited too quickly (killed by SIGTERM)"),
    (2, "usage: bot", "usage: bot"),
])
def test_the_why_of_a_failure_at_start(code, words, why):
    prog, _clock, _spawner, _events = make_lifeline(retries=0)
    prog.start()
    prog.child_exited(code, words)
    assert prog.retry_why == why
    assert prog.state is S.BACKOFF and prog.retrying() is not None


def test_a_live_lifeline_that_cannot_get_through_is_retrying_since_it_started():
    prog, clock, _spawner, _events = make_lifeline()
    prog.start()
    clock.advance(5)
    assert prog.state is S.RUNNING and prog.retrying() is None
    prog.live_trouble = "Telegram is not answering (getMe: connection refused)."
    assert prog.retrying() == (prog.start_wall, prog.live_trouble)
    prog.child_exited(-9)
    assert prog.live_trouble == ""


def test_a_stop_of_the_lifeline_is_still_a_stop():
    prog, clock, spawner, _events = make_lifeline(retries=0)
    prog.start()
    prog.child_exited(1)
    assert prog.state is S.BACKOFF
    assert prog.stop() is None and prog.state is S.STOPPED
    clock.advance(1000)
    assert len(spawner.children) == 1
