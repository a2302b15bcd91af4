"""`switchboard run` under systemd's notify protocol: READY=1 once up, STATUS= on changes,
WATCHDOG=1 from its own loop, STOPPING=1 on shutdown (against a local NOTIFY_SOCKET)."""
from __future__ import annotations

import shutil
import socket
import tempfile
import time
from pathlib import Path

import pytest

from tests.support.supervisor import SupervisorHarness
from wire import messages as m

pytestmark = pytest.mark.timeout(60)


def _messages(sock: socket.socket, until, timeout: float = 15.0) -> list[dict[str, str]]:
    got: list[dict[str, str]] = []
    deadline = time.monotonic() + timeout
    while not until(got):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"timed out; received {got}")
        sock.settimeout(left)
        data = sock.recv(4096).decode()
        got.append(dict(line.split("=", 1) for line in data.splitlines()))
    return got


def test_notify_protocol_end_to_end(tmp_path: Path) -> None:
    d = tempfile.mkdtemp(prefix="sb-n-", dir="/tmp")
    path = f"{d}/notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sup = SupervisorHarness(tmp_path, env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"})
    try:
        sup.start()
        ready = _messages(sock, lambda g: any("READY" in x for x in g))
        msg = next(x for x in ready if "READY" in x)
        assert msg["READY"] == "1" and msg["MAINPID"] == str(sup.proc.pid)
        assert msg["STATUS"] == "no bot; 0 sessions"
        # The watchdog is fed from the supervisor's loop, at half the interval.
        _messages(sock, lambda g: sum(1 for x in g if x.get("WATCHDOG") == "1") >= 3)
        sup.ok(m.NewSession(id=m.new_id(), name="alpha"))
        sup.wait_state("session:alpha", "RUNNING")
        status = _messages(sock, lambda g: any("RUNNING 1" in x.get("STATUS", "") for x in g))
        assert any(x.get("STATUS") == "no bot; 1 session (RUNNING 1)" for x in status)
        sup.stop()
        stopping = _messages(sock, lambda g: any("STOPPING" in x for x in g))
        assert any(x.get("STOPPING") == "1" for x in stopping)
        assert sup.proc.returncode == 0
    finally:
        sup.close()
        sock.close()
        shutil.rmtree(d, ignore_errors=True)
