"""How every role words a process's end: an exit status, or the signal that killed it.

One function for the supervisor's state reasons (`status`, `tail`, the bot's FATAL notices) and
the worker's sentences about its CLI. Exit codes follow asyncio and subprocess: negative means
killed by that signal. Pure: it never looks at a process.
"""
from __future__ import annotations

import signal


def signal_name(sig: int) -> str:
    """SIGKILL for 9; 'signal 99' for a number with no name here."""
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def describe_exit(code: int | None, *, status: str = "exit status",
                  unknown: str = "unknown exit") -> str:
    """'exit status 3', 'killed by SIGKILL', or `unknown` when the code was never learned.

    `status` and `unknown` let a sentence keep its own wording ("Claude exited at start (exit
    code 3)") while the meaning of a code is decided here once.
    """
    if code is None:
        return unknown
    if code < 0:
        return f"killed by {signal_name(-code)}"
    return f"{status} {code}"
