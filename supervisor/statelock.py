"""One supervisor per state dir: `<state_dir>/supervisor.lock`, held with flock for its whole life.

The state dir is what a supervisor owns (its sessions, their databases, the instance marker its
start-up sweep kills by), so it is the state dir, not the runtime dir, that admits one supervisor:
a second one on the same state dir, whatever its runtime dir, is refused before it sweeps, with a
sentence naming the running pid. The file also records where the running supervisor put its
sockets, so `switchboardctl -c CONFIG` finds them even when the supervisor's environment derived
another runtime dir than the shell's (a system unit: no XDG_RUNTIME_DIR, a private /tmp).

It must never take a lock for a probe in a way that refuses a real start: a probe holds a
shared lock for an instant only, and `acquire` retries past such an instant.
"""
from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

import msgspec

LOCK_NAME = "supervisor.lock"
_PROBE_GRACE = 0.5  # seconds `acquire` tries again while a probe may hold the lock shared

_held: dict[Path, int] = {}  # this process's locks: acquiring one twice is a no-op


class AlreadyRunning(RuntimeError):
    """A supervisor already owns this state dir (or runtime dir); str() says what to do."""


class Holder(msgspec.Struct, kw_only=True):
    """What the lock file says about the supervisor holding it."""

    pid: int
    runtime_dir: str


def lock_path(state_dir: Path) -> Path:
    return state_dir / LOCK_NAME


def _read(fd: int) -> Holder | None:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        return msgspec.json.decode(os.read(fd, 4096), type=Holder)
    except (OSError, msgspec.DecodeError):
        return None


def acquire(state_dir: Path, runtime_dir: Path) -> int:
    """Take the state dir's lock for the life of this process and record our pid and runtime dir;
    raise AlreadyRunning naming the running supervisor's pid."""
    path = lock_path(state_dir)
    if path in _held:
        return _held[path]
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    deadline = time.monotonic() + _PROBE_GRACE
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            other = _read(fd)
            if (other is not None and _alive(other.pid)) or time.monotonic() > deadline:
                os.close(fd)
                pid = f"pid {other.pid}" if other is not None else "another process"
                raise AlreadyRunning(
                    f"another supervisor ({pid}) is already running on state_dir {state_dir}:"
                    " stop it with `switchboardctl shutdown` (with its config) or give this one"
                    " another state_dir."
                ) from None
            time.sleep(0.02)  # a probe's shared lock lasts an instant
    os.ftruncate(fd, 0)
    os.pwrite(fd, msgspec.json.encode(Holder(pid=os.getpid(), runtime_dir=str(runtime_dir))), 0)
    os.fsync(fd)
    _held[path] = fd
    return fd


def holder(state_dir: Path) -> Holder | None:
    """The supervisor running on this state dir (its lock is held), or None."""
    try:
        fd = os.open(lock_path(state_dir), os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read(fd)  # held exclusively: a supervisor is running
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def running_runtime_dir(state_dir: Path, configured: Path) -> Path:
    """Where the sockets of this state dir's supervisor are: the runtime dir it recorded when one
    is running, else the configured one (where a supervisor started now would put them)."""
    found = holder(state_dir)
    return Path(found.runtime_dir) if found is not None else configured


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
