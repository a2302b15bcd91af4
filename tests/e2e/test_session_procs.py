"""A session owns its processes, as a user sees it: a server started from a Bash tool with
`nohup … &` keeps running while the session runs (across a kill -9 of its worker), is listed by
`switchboardctl status -l`, and is gone after /stop; a session over its memory limit loses its
biggest process and the chat says which one and why; a session past max_sessions is refused.

Through the sandbox Telegram user, the real CLI against the sandbox model, and switchboardctl.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from conftest import unique

from tests.support.net import free_port
from tests.support.procs import alive, proc_env
from tests.support.stack import ROOT, Stack
from tests.support.waits import wait_until

pytestmark = pytest.mark.timeout(150)

SWEEP = 0.5  # the e2e profile's sweep_interval_seconds


def tools_personas(base: Path) -> Path:
    """The shipped personas plus one whose Bash runs without a prompt."""
    d = base / "personas"
    shutil.copytree(ROOT / "personas", d)
    # Unsandboxed: a sandboxed command has its own network and pid namespaces, so a server it
    # starts is neither reachable from here nor alive after it (see test_sandbox.py).
    (d / "tools.json").write_text(json.dumps({
        "name": "tools", "description": "Bash without prompts (tests).",
        "permission_mode": "bypassPermissions", "sandbox": False}))
    return d


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def server_pid(stack: Stack, session: str, port: int) -> int | None:
    for p in stack.clis(session):
        try:
            if "http.server" in p.cmdline() and str(port) in p.cmdline():
                return p.pid
        except psutil.Error:
            continue
    return None


def status_l(stack: Stack, session: str) -> str:
    out = stack.ctl("status", "-l", f"session:{session}")
    return out.stdout


def tools_stack(make_stack: Any, tmp_path: Path, **supervisor: Any) -> Stack:
    return make_stack(top={"personas_dir": str(tools_personas(tmp_path))},
                      claude_cfg={"default_persona": "tools", "idle_suspend_seconds": 300},
                      supervisor=supervisor or None)


def test_a_nohup_server_lives_with_its_session_and_dies_with_its_stop(
        make_stack: Any, tmp_path: Path) -> None:
    stack = tools_stack(make_stack, tmp_path)
    name = unique("srv")
    stack.new_session(name)
    port = free_port()
    stack.say(f"#sb:bash=nohup python3 -m http.server {port} --bind 127.0.0.1"
              " >/dev/null 2>&1 &")
    stack.wait_text(lambda t: "tool said" in t, timeout=60)
    wait_until(lambda: listening(port), 20, "the server to listen")
    pid = wait_until(lambda: server_pid(stack, name, port), 10, "the server's pid")
    # Detached: not the CLI's descendant any more (reparented to the supervisor, a subreaper).
    worker = stack.session_pid(name)
    assert worker and pid not in {c.pid for c in psutil.Process(worker).children(True)}
    assert proc_env(psutil.Process(pid)).get("SWITCHBOARD_SESSION") == name

    # Alive across at least ten sweeps and 10 s of wall time while the session runs (an orphan
    # is killed by the next sweep, within a second): checked at every sweep interval, failing at
    # the first check that finds it gone.
    sweeps = stack.sup.sweeps()
    started = time.monotonic()
    checks = 0

    def dead_or_done() -> str | None:
        nonlocal checks
        checks += 1
        if not (alive(pid) and listening(port)):
            return f"died after {time.monotonic() - started:.1f}s"
        if time.monotonic() - started >= 10 and stack.sup.sweeps() >= sweeps + 10:
            return "alive"
        return None

    verdict = wait_until(dead_or_done, 30, "10 s of the server alive", step=SWEEP)
    assert verdict == "alive" and checks >= 2, verdict

    # switchboardctl status -l lists it under its session.
    detail = status_l(stack, name)
    assert f"{pid}:python3" in detail and "tools=1" in detail, detail
    row = stack.row(f"session:{name}")
    assert row is not None and [t["pid"] for t in row["tools"]] == [pid]
    assert row["tools_rss_bytes"] > 0 and row["rss_bytes"] > row["tools_rss_bytes"]

    # A kill -9 of the worker is a crash, not a stop: the server stays, the session comes
    # back RUNNING with exactly one CLI.
    os.kill(worker, signal.SIGKILL)
    stack.wait_state(f"session:{name}", "RUNNING", new_pid_after=worker, timeout=30)
    stack.say("after the crash")
    stack.wait_text(lambda t: "echo: after the crash" in t, timeout=60)
    assert alive(pid) and listening(port)
    clis = [p for p in stack.cli_roots() if proc_env(p).get("SWITCHBOARD_SESSION") == name
            and "--input-format" in p.cmdline()]
    assert len(clis) == 1, clis

    # /stop takes the whole tree: the server is gone.
    mid = stack.say(f"/stop {name}")
    stack.wait_text(lambda t: "stopped" in t.lower(), timeout=30, after=mid)
    wait_until(lambda: not alive(pid), 10, "the server to be killed with its session")
    assert not listening(port)


def test_over_the_memory_limit_the_chat_says_which_process_was_killed(
        make_stack: Any, tmp_path: Path) -> None:
    stack = tools_stack(make_stack, tmp_path, worker_rss_limit_mb=1200)
    name = unique("fat")
    stack.new_session(name)
    worker = stack.session_pid(name)
    hog = "import time; x = b'1' * (1500 << 20); time.sleep(300)"
    stack.say(f'#sb:bash=nohup python3 -c "{hog}" >/dev/null 2>&1 &')
    chat = stack.wait_text(lambda t: "over its 1200 MB limit" in t, timeout=90)
    said = next(m["text"] for m in chat if "over its 1200 MB limit" in (m["text"] or ""))
    assert f"Session {name} used" in said and "killed its tool python3 (pid" in said, said
    # The hog is gone; the session kept running with the same worker.
    wait_until(lambda: not [p for p in stack.clis(name) if "time.sleep(300)" in
                            " ".join(p.cmdline())], 10, "the hog killed")
    wait_until(lambda: "event=memory_kill" in (stack.logs_dir() / "supervisor.log").read_text(),
               5, "the kill in the supervisor's log")
    row = stack.row(f"session:{name}")
    assert row is not None and row["state"] == "RUNNING" and row["pid"] == worker


def test_a_session_past_max_sessions_is_refused_in_the_chat_and_at_the_terminal(
        make_stack: Any) -> None:
    stack = make_stack(supervisor={"max_sessions": 1})
    first = unique("one")
    stack.new_session(first)
    mid = stack.say(f"/new {unique('two')}")
    chat = stack.wait_text(lambda t: "max_sessions" in t, timeout=30, after=mid)
    assert any("there are already 1 sessions" in (m["text"] or "") for m in chat)
    out = stack.ctl("new", unique("three"))
    assert out.returncode != 0
    assert "there are already 1 sessions, the most supervisor.max_sessions allows" in \
        out.stdout + out.stderr
    assert [r["name"] for r in stack.status() if r["name"].startswith("session:")] == \
        [f"session:{first}"]
