"""Children die with their parent: the one place that asks the kernel for PR_SET_PDEATHSIG.

Used at start by the bot and the worker (so a SIGKILLed supervisor leaves nothing behind) and in
the worker's preexec hook for its CLI. The supervisor spawns without a preexec hook (so Python
can use vfork, a few ms faster per restart), which leaves a short window before the child's own
prctl; `die_with_parent` closes it by checking, right after, that its parent is still the
supervisor that started it. libc is loaded on the first call, so a preexec hook (between fork
and exec) after that does nothing but the prctl itself.
"""
from __future__ import annotations

import ctypes
import os
import signal

PR_SET_PDEATHSIG = 1
_libc: ctypes.CDLL | None = None


def set_pdeathsig(sig: int) -> bool:
    """Ask the kernel to send `sig` to this process when its parent (thread) dies; False where
    the kernel has no prctl (not Linux)."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    prctl = getattr(_libc, "prctl", None)
    if prctl is None:
        return False
    return int(prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)) == 0


def die_with_parent(expected_parent: int | None, sig: int = signal.SIGTERM) -> bool:
    """Ask for `sig` when the parent dies; False if the parent is already not `expected_parent`
    (it died before we asked: the caller should exit)."""
    set_pdeathsig(sig)
    return expected_parent is None or os.getppid() == expected_parent
