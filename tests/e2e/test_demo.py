"""`switchboard demo` (what `make demo` runs) plays its conversation end to end, leaves nothing."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import psutil
import pytest

pytestmark = pytest.mark.timeout(240)


def _demo_processes() -> list[psutil.Process]:
    """Whatever names a demo dir in its command line or environment: run, workers, CLIs, tools."""
    found = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        try:
            text = " ".join(p.info["cmdline"] or []) + " ".join(p.environ().values())
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        if "sb-demo-" in text and p.pid != os.getpid():
            found.append(p)
    return found


def test_demo_plays_the_scripted_conversation() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEGRAM_")}
    env["NO_COLOR"] = "1"
    # After the script the person types as the Telegram user: here, three lines on stdin (one a
    # voice note, which the model sandbox transcribes).
    proc = subprocess.run(
        [sys.executable, "-m", "supervisor", "demo", "--interactive"],
        input="typed by the person tok-7\n/voice spoken by the person\n/status\n",
        capture_output=True, text=True, timeout=200, env=env,
    )
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    # Two sessions with different personas, each answered.
    assert "/new api planner" in out and "/new scratch default" in out
    assert "echo: Plan a small REST API for a todo list." in out
    # A tool use, approved from the chat, that really ran in the session's work dir.
    assert "asks to use Bash" in out and "[taps Allow]" in out
    assert "tool said: hello from work" in out
    # status before and after the crash: the worker came back with a new pid.
    tables = [block for block in out.split("$ switchboardctl status")[1:]]
    assert len(tables) == 2
    pid_before = tables[0].split("session:scratch")[1].split("pid ")[1].split(",")[0]
    pid_after = tables[1].split("session:scratch")[1].split("pid ")[1].split(",")[0]
    assert pid_before != pid_after
    assert "RUNNING" in tables[1].split("session:scratch")[1].splitlines()[0]
    # And the conversation went on after it.
    assert "echo: Still there after the crash?" in out
    assert "• api — RUNNING" in out or "api — RUNNING" in out
    # A session in the demo project works in its own worktree, on a branch named after it.
    project = out.split("/new feature @shop")[1]
    assert "Session feature is ready" in project
    assert re.search(r"/state/worktrees/shop/feature\n\s*feature\n", project), project
    assert "• shop — " in project and "sessions: feature" in project
    # The interactive part: what the person typed reached the stack and was answered.
    typed = out.split("your turn")[1]
    assert "you   typed by the person tok-7" in typed
    assert "echo: typed by the person tok-7" in typed
    assert "🎤 spoken by the person" in typed and "echo: spoken by the person" in typed
    assert "📌 Sessions, live" in typed and "scratch — " in typed  # /status: the live status
    assert not _demo_processes(), "the demo left processes behind"
