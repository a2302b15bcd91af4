"""Every command, as the owner types it, against the real supervisor, workers and CLI."""
from __future__ import annotations

from pathlib import Path

import pytest

from bot.command_table import menu
from bot.commands import CHAT_COMMANDS
from tests.support.stack import OWNER, bot_stack
from tests.support.waits import wait_until

GROUP = -900


@pytest.mark.timeout(90)
def test_every_command(tmp_path: Path, telegram_api, claude_bin, cli_env) -> None:
    tg = telegram_api
    with bot_stack(tmp_path, tg, claude_bin, cli_env) as st:
        registered = tg.commands()[0]["commands"]
        assert [c["command"] for c in registered] == [n for n, _ in menu(CHAT_COMMANDS)]

        assert "/new NAME" in st.ask("/help")
        assert "/new NAME" in st.ask("/start")
        assert "Unknown command /frobnicate" in st.ask("/frobnicate now")
        assert "No active session" in st.ask("hello?")
        assert "No active session" in st.ask("/cancel")
        assert "not a valid session name" in st.ask("/new Bad*Name")
        assert "Usage: /new" in st.ask("/new")

        assert "Session alpha is ready" in st.ask("/new alpha")
        assert "exist" in st.ask("/new alpha").lower()
        assert "persona" in st.ask("/new gamma nosuchpersona").lower()
        assert "Session beta is ready" in st.ask("/new beta research")
        st.sup.wait_state("session:beta", "RUNNING", 15)

        sessions = st.ask("/sessions")
        lines = sessions.splitlines()
        assert lines[0].startswith("• alpha — RUNNING") and "· persona default · idle" in lines[0]
        assert lines[1].startswith("▶ beta — RUNNING") and "· persona research · idle" in lines[1]

        # /status: the live status of every session, pinned (tests/integration/
        # test_bot_live_status.py follows it as things change).
        msg = st.ask_msg("/status", expect=lambda t: t.startswith("📌 Sessions, live"))
        status = msg["text"]
        assert "\n• alpha — " in status and "\n▶ beta — " in status and "persona research" in status
        wait_until(lambda: next(m for m in tg.chat(OWNER)
                                if m["message_id"] == msg["message_id"])["pinned"], 10, "pinned")

        # /switch alone: one button per session; a tap switches.
        picker = st.ask_msg("/switch", expect=lambda t: "Switch to" in t)
        datas = [b["callback_data"] for row in picker["reply_markup"]["inline_keyboard"]
                 for b in row]
        assert datas == ["sw:alpha", "sw:beta"]
        tg.tap(OWNER, picker["message_id"], "sw:alpha")
        st.wait_text(lambda t: t == "Active session: alpha.", after=picker["message_id"])
        assert "no session zzz" in st.ask("/switch zzz")
        assert "Active session: beta." == st.ask("/switch beta")

        personas = st.ask("/persona")
        assert "▶ research" in personas and "• default" in personas
        assert "persona" in st.ask("/persona nosuch").lower()
        assert "now uses the persona planner" in st.ask("/persona planner", timeout=30)
        wait_until(lambda: st.sup.status()["session:beta"].persona == "planner", 15,
                   "persona planner")

        assert "Total: $" in st.ask("/cost")
        assert "beta" in st.ask("/stop", timeout=30)
        st.sup.wait_state("session:beta", "STOPPED", 15)
        assert "alpha" in st.ask("/restart alpha", timeout=30)
        st.sup.wait_state("session:alpha", "RUNNING", 15)

        # A message to a stopped session starts it again (EnsureRunning) and is answered.
        assert st.ask("wake up", timeout=40, expect=lambda t: "echo: wake up" in t)
        assert st.sup.state("session:beta") == "RUNNING"

        # A document and a photo are saved in the session's work folder; Claude is told where.
        tg.send_document(OWNER, "notes.txt", b"hello file", caption="read this")
        reply = st.wait_text(lambda t: "echo: read this" in t and "notes.txt" in t, timeout=30)
        assert reply
        uploads = st.state_dir / "sessions" / "beta" / "work" / "uploads"
        (saved,) = [p for p in uploads.iterdir() if p.name.endswith("notes.txt")]
        assert saved.read_bytes() == b"hello file"
        tg.send_photo(OWNER, b"\xff\xd8\xff\xe0fakejpeg")
        st.wait_text(lambda t: "echo:" in t and "photo.jpg" in t, timeout=30)
        assert len(list(uploads.iterdir())) == 2
        # Telegram failing once (502) on getFile: retried, the file is not lost.
        tg.fault("5xx", method="getFile", count=1, status=502)
        tg.send_document(OWNER, "retry.txt", b"second try")
        st.wait_text(lambda t: "echo:" in t and "retry.txt" in t, timeout=30)
        # Telegram refusing it (as for a file over 20 MB): one sentence, nothing for Claude.
        tg.fault("5xx", method="getFile", count=1, status=400,
                 description="Bad Request: file is too big")
        mid = tg.send_document(OWNER, "big.bin", b"x")["message"]["message_id"]
        st.wait_text(lambda t: "would not hand over big.bin" in t, after=mid, timeout=30)
        assert sorted(p.name.split("-", 1)[1] for p in uploads.iterdir()) == [
            "notes.txt", "photo.jpg", "retry.txt"]

        # /cancel with nothing running: the worker says so; then it interrupts a running turn.
        assert st.ask("/cancel", timeout=30) == (
            "Nothing is running, so there is nothing to cancel.")
        slow = st.say("#sb:slow=300 #sb:words=200")
        wait_until(lambda: any(d["text"].startswith("w1 w2") for d in tg.drafts(OWNER)), 30,
                   "the answer streaming into its draft")
        st.ask("/cancel", expect=lambda t: "Interrupting" in t)
        st.wait_text(lambda t: "✗ " in t, after=slow, timeout=30)
        assert not any("w200" in (m["text"] or "") for m in tg.chat(OWNER))

        # /remove asks first; "Keep it" keeps, "Remove" removes.
        confirm = st.ask_msg("/remove beta", expect=lambda t: "cannot be undone" in t)
        tg.tap(OWNER, confirm["message_id"], "rm:n:beta")
        wait_until(lambda: "Kept" in next(m for m in tg.chat(OWNER)
                                      if m["message_id"] == confirm["message_id"])["text"],
                   10, "kept")
        confirm = st.ask_msg("/remove beta", expect=lambda t: "cannot be undone" in t)
        tg.tap(OWNER, confirm["message_id"], "rm:y:beta")
        wait_until(lambda: "removed" in next(m for m in tg.chat(OWNER)
                                         if m["message_id"] == confirm["message_id"])["text"],
                   30, "removed")
        assert "session:beta" not in st.sup.status()
        assert "No active session" in st.ask("still there?")

        # Group chats of the owner work the same; a group starts with no active session.
        tg.send(OWNER, "hi group", GROUP, chat_type="group")
        st.wait_text(lambda t: "No active session" in t, GROUP)
