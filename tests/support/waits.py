"""The one deadline loop every test tier and benchmark waits with.

A test waits on a condition with a deadline, never on a fixed sleep: `wait_until` polls a
condition and returns its first truthy value, or raises AssertionError naming what it waited
for and for how long. It must never return on timeout without raising.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

POLL_STEP = 0.02  # the step of a deadline loop, never a wait on its own


def wait_until(cond: Callable[[], Any], timeout: float, what: str, step: float = POLL_STEP,
               *, pause: Callable[[float], object] = time.sleep,
               detail: Callable[[], str] | None = None) -> Any:
    """Poll `cond()` until it is truthy and return that value.

    `pause(step)` runs between polls (a harness that must pump a socket passes its pump); on
    timeout the AssertionError names `what` and `timeout`, plus `detail()` when given. The
    condition is checked once more after the deadline, so a slow last poll still counts.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() >= deadline:
            message = f"timed out after {timeout:g} s waiting for {what}"
            if detail is not None:
                message += f"; {detail()}"
            raise AssertionError(message)
        pause(step)
