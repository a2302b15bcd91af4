"""Which real process holds a Claude session id (session_worker.terminal.holder): one outside
Switchboard that resumes it, never a process carrying the session's own markers (its CLI, which
resumes the same id), never one resuming another id; and it is found by psutil as it runs."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from session_worker.terminal import holder
from wire.names import INSTANCE_ENV, MARKER_ENV

pytestmark = pytest.mark.timeout(20)


@contextmanager
def process(*args: str, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", *args],
                            env={**os.environ, **(env or {})})
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait(10)
    assert proc.returncode is not None


def test_only_a_process_outside_the_session_holds_its_id() -> None:
    sid = str(uuid.uuid4())
    assert holder(sid, "api", "inst") is None
    ours = {MARKER_ENV: "api", INSTANCE_ENV: "inst"}
    with process("--resume", sid, env=ours), process(f"--resume={uuid.uuid4()}"):
        assert holder(sid, "api", "inst") is None  # our own CLI, and another id
        with process("-r", sid, env={MARKER_ENV: "api", INSTANCE_ENV: "other"}) as theirs:
            assert holder(sid, "api", "inst") == theirs.pid  # another installation's is not ours
        with process(f"--resume={sid}", "-p", "hi") as terminal:
            assert holder(sid, "api", "inst") == terminal.pid
    assert holder(sid, "api", "inst") is None
