"""The states of a supervised program and the one place where a program changes state.

The states keep supervisord's meanings:

    STOPPED   not running, on purpose (never started, or stopped by a command)
    STARTING  spawned; becomes RUNNING once it has stayed up for `startsecs`
    RUNNING   up for at least `startsecs`
    BACKOFF   died (or could not be spawned) and waits for its next try
    STOPPING  asked to stop (SIGTERM sent, SIGKILL after `stopwaitsecs`)
    EXITED    died on its own after it was RUNNING (restarted unless it exited 0)
    FATAL     gave up: too many failures inside the retry window

Unlike supervisord, a crash after RUNNING counts as a failure too, so a program that crashes a
few seconds after each start ends in FATAL instead of looping forever.

Pure: no I/O, no clock; `change_state` checks the transition and returns the event to publish.
"""
from __future__ import annotations

from enum import StrEnum

from wire.messages import StateChange


class State(StrEnum):
    STOPPED = "STOPPED"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    BACKOFF = "BACKOFF"
    STOPPING = "STOPPING"
    EXITED = "EXITED"
    FATAL = "FATAL"


S = State

# Every allowed transition. Anything else is a bug in the caller, not a runtime condition.
TRANSITIONS: dict[State, frozenset[State]] = {
    S.STOPPED: frozenset({S.STARTING}),
    S.STARTING: frozenset({S.RUNNING, S.BACKOFF, S.STOPPING, S.FATAL}),
    S.RUNNING: frozenset({S.STOPPING, S.EXITED}),
    S.BACKOFF: frozenset({S.STARTING, S.FATAL, S.STOPPED}),
    S.STOPPING: frozenset({S.STOPPED}),
    S.EXITED: frozenset({S.STARTING, S.BACKOFF, S.FATAL}),
    S.FATAL: frozenset({S.STARTING}),
}

# supervisorctl's STOPPED_STATES: `status` exits 3 when a listed program is in one of these.
STOPPED_STATES = frozenset({S.STOPPED, S.EXITED, S.FATAL})
# States in which a process exists (a pid is meaningful).
RUNNING_STATES = frozenset({S.STARTING, S.RUNNING, S.STOPPING})
# States from which `start` spawns.
STARTABLE_STATES = frozenset({S.STOPPED, S.EXITED, S.FATAL, S.BACKOFF})


class BadTransition(RuntimeError):
    pass


def change_state(
    program: str,
    old: State,
    new: State,
    *,
    time: float,
    pid: int | None = None,
    exit_code: int | None = None,
    reason: str = "",
) -> StateChange:
    """Check `old -> new` and return the StateChange event that announces it."""
    if new not in TRANSITIONS[old]:
        raise BadTransition(f"{program}: {old} -> {new} is not a valid transition")
    return StateChange(
        program=program,
        from_state=old.value,
        to_state=new.value,
        pid=pid,
        exit_code=exit_code,
        reason=reason,
        time=time,
    )
