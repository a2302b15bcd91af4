"""Every command, as the owner types it, against the real supervisor, workers and CLI."""
from __future__ import annotations

from pathlib import Path

import pytest
from bot_helpers import OWNER, Stack, ask, ask_msg, wait_until

from bot.command_table import menu
from bot.commands import CHAT_COMMANDS

GROUP = -900


@pytest.mark.timeout(90)
def test_every_command(tmp_path: Path, telegram_api, claude_bin, cli_env) -> None:
    tg = telegram_api
    with Stack(tmp_path, tg, claude_bin, cli_env) as st:
        registered = tg.commands()[0]["commands"]
        assert [c["command"] for c in registered] == [n for n, _ in menu(CHAT_COMMANDS)]

        assert "/new NAME" in ask(st, "/help")
        assert "/new NAME" in ask(st, "/start")
        assert "Unknown command /frobnicate" in ask(st, "/frobnicate now")
        assert "No active session" in ask(st, "hello?")
        assert "No active session" in ask(st, "/cancel")
        assert "not a valid session name" in ask(st, "/new Bad*Name")
        assert "Usage: /new" in ask(st, "/new")

        assert "Session alpha is ready" in ask(st, "/new alpha")
        assert "exist" in ask(st, "/new alpha").lower()
        assert "persona" in ask(st, "/new gamma nosuchpersona").lower()
        assert "Session beta is ready" in ask(st, "/new beta research")
        st.sup.wait_state("session:beta", "RUNNING", 15)

        sessions = ask(st, "/sessions")
        lines = sessions.splitlines()
        assert lines[0].startswith("• alpha — RUNNING") and "· persona default · idle" in lines[0]
        assert lines[1].startswith("▶ beta — RUNNING") and "· persona research · idle" in lines[1]

        msg = ask_msg(st, "/status", expect=lambda t: "session:alpha" in t)
        status = msg["text"]
        assert msg["entities"] and msg["entities"][0]["type"] == "pre"
        assert "bot" in status and "RUNNING" in status and "pid " in status

        # /switch alone: one button per session; a tap switches.
        picker = ask_msg(st, "/switch", expect=lambda t: "Switch to" in t)
        datas = [b["callback_data"] for row in picker["reply_markup"]["inline_keyboard"]
                 for b in row]
        assert datas == ["sw:alpha", "sw:beta"]
        tg.tap(OWNER, picker["message_id"], "sw:alpha")
        st.wait_text(lambda t: t == "Active session: alpha.", after=picker["message_id"])
        assert "no session zzz" in ask(st, "/switch zzz")
        assert "Active session: beta." == ask(st, "/switch beta")

        personas = ask(st, "/persona")
        assert "▶ research" in personas and "• default" in personas
        assert "persona" in ask(st, "/persona nosuch").lower()
        assert "now uses the persona planner" in ask(st, "/persona planner", timeout=30)
        wait_until(lambda: st.sup.status()["session:beta"].persona == "planner", 15,
                   "persona planner")

        assert "Total: $" in ask(st, "/cost")
        assert "beta" in ask(st, "/stop", timeout=30)
        st.sup.wait_state("session:beta", "STOPPED", 15)
        assert "alpha" in ask(st, "/restart alpha", timeout=30)
        st.sup.wait_state("session:alpha", "RUNNING", 15)

        # A message to a stopped session starts it again (EnsureRunning) and is answered.
        assert ask(st, "wake up", timeout=40, expect=lambda t: "echo: wake up" in t)
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
        assert ask(st, "/cancel", timeout=30) == (
            "Nothing is running, so there is nothing to cancel.")
        slow = st.say("#sb:slow=300 #sb:words=200")
        st.wait_text(lambda t: t.startswith("w1 w2"), after=slow, timeout=30)
        ask(st, "/cancel", expect=lambda t: "Interrupting" in t)
        st.wait_text(lambda t: "✗ " in t, after=slow, timeout=30)
        assert not any("w200" in (m["text"] or "") for m in tg.chat(OWNER))

        # /remove asks first; "Keep it" keeps, "Remove" removes.
        confirm = ask_msg(st, "/remove beta", expect=lambda t: "cannot be undone" in t)
        tg.tap(OWNER, confirm["message_id"], "rm:n:beta")
        wait_until(lambda: "Kept" in next(m for m in tg.chat(OWNER)
                                      if m["message_id"] == confirm["message_id"])["text"],
                   10, "kept")
        confirm = ask_msg(st, "/remove beta", expect=lambda t: "cannot be undone" in t)
        tg.tap(OWNER, confirm["message_id"], "rm:y:beta")
        wait_until(lambda: "removed" in next(m for m in tg.chat(OWNER)
                                         if m["message_id"] == confirm["message_id"])["text"],
                   30, "removed")
        assert "session:beta" not in st.sup.status()
        assert "No active session" in ask(st, "still there?")

        # Group chats of the owner work the same; a group starts with no active session.
        tg.send(OWNER, "hi group", GROUP, chat_type="group")
        st.wait_text(lambda t: "No active session" in t, GROUP)
