"""switchboardctl against a running supervisor: layout, exit codes, --json, tail, errors."""
from __future__ import annotations

import json
import os
import re
import selectors
import signal
import subprocess
import sys
import time

import pytest

from tests.support.supervisor import SupervisorHarness
from wire import messages as m

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def sup(tmp_path):
    s = SupervisorHarness(tmp_path)
    yield s
    s.close()


def test_not_running_supervisor_is_a_clear_error(sup):
    r = sup.ctl("status")
    assert r.returncode == 4
    assert "not running" in r.stderr and "switchboard run" in r.stderr
    assert sup.ctl("stop", "all").returncode == 1


def test_status_layout_exit_codes_and_json(sup):
    sup.start()
    assert sup.ctl("new", "web").stdout == "session:web: started\n"
    assert sup.ctl("new", "docs", "--persona", "planner").returncode == 0
    r = sup.ctl("stop", "docs")
    assert (r.returncode, r.stdout) == (0, "session:docs: stopped\n")

    r = sup.ctl("status")
    assert r.returncode == 3  # one listed program is STOPPED
    lines = r.stdout.splitlines()
    assert re.fullmatch(r"session:docs {21}STOPPED   \w{3} \d\d \d\d:\d\d [AP]M", lines[0]), lines
    assert re.fullmatch(r"session:web {22}RUNNING   pid \d+, uptime 0:00:0\d", lines[1]), lines

    assert sup.ctl("status", "web").returncode == 0
    r = sup.ctl("status", "web", "ghost")
    assert r.returncode == 4 and r.stdout.startswith("ghost: ERROR (no such process)\n")

    r = sup.ctl("status", "--json")
    data = json.loads(r.stdout)
    keys = {"name", "state", "pid", "uptime_seconds", "persona", "claude_pid", "rss_bytes",
            "cpu_percent", "cost_usd", "queued"}
    assert all(keys <= set(d) for d in data)
    assert {d["name"]: d["persona"] for d in data} == {"session:docs": "planner",
                                                       "session:web": "default"}
    r = sup.ctl("status", "-l", "web")
    assert r.stdout.splitlines()[1].startswith("    persona=default claude=")


def test_start_stop_restart_all_and_errors(sup):
    sup.start()
    sup.ok(m.NewSession(id=m.new_id(), name="a1"))
    sup.ok(m.NewSession(id=m.new_id(), name="a2"))
    r = sup.ctl("stop", "all")
    assert r.returncode == 0 and sorted(r.stdout.splitlines()) == [
        "session:a1: stopped", "session:a2: stopped"]
    assert sup.ctl("stop", "a1").stdout == "session:a1: ERROR (not running)\n"
    r = sup.ctl("start", "a1", "ghost")
    assert r.returncode == 1
    assert r.stdout.splitlines() == ["ghost: ERROR (no such process)", "session:a1: started"]
    r = sup.ctl("restart", "a1")
    assert r.stdout.splitlines() == ["session:a1: stopped", "session:a1: started"]
    r = sup.ctl("new", "Bad Name")
    assert r.returncode == 1 and "not a valid session name" in r.stderr
    r = sup.ctl("--json", "start", "a2")
    assert json.loads(r.stdout) == [{"name": "session:a2", "ok": True, "message": "started"}]
    assert sup.ctl("version").stdout.strip()
    assert "default" in sup.ctl("personas").stdout


def test_tail_reads_the_log_and_shutdown_stops_everything(sup):
    sup.start()
    sup.ok(m.NewSession(id=m.new_id(), name="t1"))
    r = sup.ctl("tail", "supervisor")
    assert "event=state program=session:t1" in r.stdout
    r = sup.ctl("tail", "--stdio", "-n", "5", "t1")
    assert r.returncode == 0
    assert sup.ctl("tail", "ghost").returncode == 1
    r = sup.ctl("shutdown")
    assert (r.returncode, r.stdout) == (0, "Shut down\n")
    assert sup.proc.wait(15) == 0
    sup.assert_nothing_left()


def test_tail_follow_prints_new_lines_until_interrupted(sup):
    sup.start()
    proc = subprocess.Popen(
        [sys.executable, "-m", "supervisor.ctl", "-c", str(sup.config), "tail", "-f", "-n", "1",
         "supervisor"], stdout=subprocess.PIPE, env=sup.env())
    try:
        seen = b""
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)

        def read_until(what: bytes) -> None:
            nonlocal seen
            deadline = time.monotonic() + 15
            while what not in seen:
                left = deadline - time.monotonic()
                assert left > 0, f"tail -f printed only {seen!r}"
                if sel.select(left):
                    seen += os.read(proc.stdout.fileno(), 65536)

        # The log's last line shows that tail has the file open, so a line written after it
        # can only arrive by following.
        read_until(b"\n")
        sup.ok(m.NewSession(id=m.new_id(), name="f1"))
        read_until(b"event=state program=session:f1")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
