"""Children die with the supervisor: each child asks the kernel for a signal when its parent dies.

The supervisor spawns without a preexec hook (so Python can use vfork, a few ms faster per
restart), which leaves a short window before the child's own prctl; the child closes it by
checking, right after, that its parent is still the supervisor that started it.
"""
from __future__ import annotations

import ctypes
import os
import signal

PR_SET_PDEATHSIG = 1


def die_with_parent(expected_parent: int | None, sig: int = signal.SIGTERM) -> bool:
    """Ask for `sig` when the parent dies; False if the parent is already not `expected_parent`
    (it died before we asked: the caller should exit)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    return expected_parent is None or os.getppid() == expected_parent
