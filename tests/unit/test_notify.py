"""systemd's notify protocol against a real NOTIFY_SOCKET, and the shipped units' syntax."""
from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from supervisor.notify import Notifier

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def notify_socket():
    d = tempfile.mkdtemp(prefix="sb-n-", dir="/tmp")
    path = os.path.join(d, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    yield path, sock
    sock.close()
    shutil.rmtree(d)


def _recv(sock: socket.socket) -> dict[str, str]:
    data = sock.recv(4096).decode()
    return dict(line.split("=", 1) for line in data.splitlines())


def test_ready_status_stopping_reach_the_socket(notify_socket) -> None:
    path, sock = notify_socket
    n = Notifier({"NOTIFY_SOCKET": path})
    assert n.enabled
    n.ready("bot RUNNING, 2 sessions RUNNING")
    msg = _recv(sock)
    assert msg["READY"] == "1" and msg["STATUS"] == "bot RUNNING, 2 sessions RUNNING"
    assert msg["MAINPID"] == str(os.getpid())
    n.status("1 session FATAL")
    assert _recv(sock) == {"STATUS": "1 session FATAL"}
    n.stopping()
    assert _recv(sock)["STOPPING"] == "1"
    n.close()


def test_abstract_socket_address() -> None:
    name = f"sb-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(5)
    try:
        Notifier({"NOTIFY_SOCKET": "@" + name}).status("x")
        assert _recv(sock) == {"STATUS": "x"}
    finally:
        sock.close()


def test_without_systemd_everything_is_a_no_op() -> None:
    n = Notifier({})
    assert not n.enabled and n.watchdog_interval is None
    assert n.send(ready=1) is False


def test_a_missing_socket_is_logged_not_raised(tmp_path: Path) -> None:
    n = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone")})
    assert n.send(status="x") is False


@pytest.mark.parametrize(
    "env, expected",
    [
        ({"WATCHDOG_USEC": "2000000"}, 2.0),
        ({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"}, None),  # meant for another process
        ({"WATCHDOG_USEC": "nope"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
    ],
)
def test_watchdog_interval(env: dict[str, str], expected: float | None) -> None:
    assert Notifier(env).watchdog_interval == expected


async def test_watchdog_pings_at_half_the_interval_while_healthy(notify_socket) -> None:
    path, sock = notify_socket
    sock.setblocking(False)
    n = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000",
                  "WATCHDOG_PID": str(os.getpid())})
    task = asyncio.create_task(n.watchdog_loop())
    loop = asyncio.get_running_loop()
    try:
        got = []
        while len(got) < 3:
            got.append(await asyncio.wait_for(loop.sock_recv(sock, 4096), 5))
        assert all(g == b"WATCHDOG=1" for g in got)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_an_unhealthy_loop_stops_feeding_the_watchdog(notify_socket) -> None:
    path, sock = notify_socket
    sock.setblocking(False)
    n = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "100000"})
    healthy = [False]
    task = asyncio.create_task(n.watchdog_loop(lambda: healthy[0]))
    loop = asyncio.get_running_loop()
    try:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(loop.sock_recv(sock, 4096), 0.3)
        healthy[0] = True
        assert await asyncio.wait_for(loop.sock_recv(sock, 4096), 5) == b"WATCHDOG=1"
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


UNITS = ["switchboard.service", "switchboard@.service"]


@pytest.mark.parametrize("unit", UNITS)
def test_units_have_the_promised_settings(unit: str) -> None:
    text = (ROOT / "systemd" / unit).read_text()
    for line in ["Type=notify", "KillMode=mixed", "Restart=on-failure", "NoNewPrivileges=yes",
                 "PrivateTmp=yes", "ExecReload=/bin/kill -HUP $MAINPID"]:
        assert line in text.splitlines(), f"{unit} lacks {line}"
    assert re.search(r"^WatchdogSec=\d+", text, re.M)
    assert "TELEGRAM_BOT_TOKEN=" not in text
    # The supervisor reads the env file itself: systemd would put the token in its environment.
    assert not re.search(r"^\s*EnvironmentFile=", text, re.M), f"{unit} loads an EnvironmentFile"
    assert not re.search(r"^\s*Environment=.*TOKEN", text, re.M)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is not installed")
@pytest.mark.parametrize("unit", UNITS)
def test_units_pass_systemd_analyze_verify(unit: str, tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "switchboard"
    if not exe.exists():
        pytest.skip("the switchboard console script is not installed in this environment")
    text = (ROOT / "systemd" / unit).read_text()
    text = re.sub(r"^ExecStart=\S+", f"ExecStart={exe}", text, flags=re.M)
    name = unit.replace("@.", f"@{os.environ.get('USER', 'root')}.")
    target = tmp_path / name
    target.write_text(text)
    proc = subprocess.run(["systemd-analyze", "verify", str(target)], capture_output=True,
                          text=True, timeout=30)
    problems = [line for line in proc.stderr.splitlines()
                if target.name in line or "Unknown" in line]
    assert proc.returncode == 0 and not problems, proc.stderr
