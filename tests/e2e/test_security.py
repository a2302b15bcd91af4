"""Security from the outside: strangers change nothing, the sockets are private, the token leaks
nowhere.

A stranger is any Telegram user not in `allowed_user_ids`. Whatever they send or tap (in their
own chat, or in a group they share with the owner) makes no session, no file, no process, no
model request, and earns at most one short refusal.
"""
from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import unique

from tests.support.chat import ask, bot_messages, last_id, message_text, new_session, wait_text
from tests.support.stack import OWNER, Stack
from tests.support.waits import wait_until
from wire import dbfiles

pytestmark = pytest.mark.timeout(180)

STRANGER = 6666
GROUP = -100777


def snapshot(stack: Stack, model: Any) -> dict[str, Any]:
    sessions = stack.state_dir / "sessions"
    return {
        "session_dirs": sorted(os.listdir(sessions)) if sessions.exists() else [],
        "programs": {r["name"]: (r["state"], r["pid"]) for r in stack.status()},
        "processes": sorted(p.pid for p in stack.tagged()),
        "model_requests": len(model.requests()),
    }


def buttons(msg: dict[str, Any]) -> list[str]:
    rows = (msg.get("reply_markup") or {}).get("inline_keyboard") or []
    return [b.get("callback_data", "") for row in rows for b in row]


def test_a_strangers_messages_commands_and_taps_change_nothing(
        stack: Stack, tg: Any, model: Any) -> None:
    name = unique("own")
    new_session(tg, OWNER, name)
    ask(tg, OWNER, "owner warms up tok-s0")
    # The owner in a group with the stranger: messages with buttons the stranger can tap.
    tg.send(OWNER, "/switch", chat_id=GROUP, chat_type="group")
    switch = wait_text(tg, GROUP, r"Switch to", timeout=20)
    tg.send(OWNER, f"/remove {name}", chat_id=GROUP, chat_type="group")
    remove = wait_text(tg, GROUP, r"Remove session", timeout=20)
    tg.send(OWNER, "/new grp", chat_id=GROUP, chat_type="group")  # the group's own session
    wait_text(tg, GROUP, r"Session grp is ready", timeout=45)
    marker = stack.tmp / "stranger-was-here"
    tg.send(OWNER, f"#sb:bash=touch {marker}", chat_id=GROUP, chat_type="group")
    prompt = wait_text(tg, GROUP, r"asks to use Bash", timeout=60)
    assert any(d.startswith("p:") for d in buttons(prompt)), prompt
    wait_until(lambda: len(model.requests()) >= 1, 10, "the prompt's model request",
               step=0.05)

    before = snapshot(stack, model)
    group_before = last_id(tg, GROUP)
    secret = "STRANGER-TEXT-d41d8"

    # In their own chat: text, every command, a new session, a file.
    for text in [f"hello {secret}", f"/new evil-{secret[-5:].lower()}", "/sessions", "/status",
                 "/switch", f"/switch {name}", f"/stop {name}", f"/restart {name}", "/cancel",
                 f"/remove {name}", "/persona planner", "/cost", "/help", "/start",
                 f"#sb:bash=touch {marker}", "/unknowncommand"]:
        tg.send(STRANGER, text)
    tg.send_document(STRANGER, "evil.sh", b"#!/bin/sh\necho " + secret.encode())
    # In the group: text and commands, then taps on the owner's buttons.
    tg.send(STRANGER, f"group text {secret}", chat_id=GROUP, chat_type="group")
    tg.send(STRANGER, f"/new evil2-{secret[-5:].lower()}", chat_id=GROUP, chat_type="group")
    tg.send(STRANGER, "/cancel", chat_id=GROUP, chat_type="group")
    for msg in (switch, remove, prompt):
        for data in buttons(msg):
            tg.tap(STRANGER, msg["message_id"], data, chat_id=GROUP)

    # Every stranger update has been taken from the server (so the bot has seen it all) ...
    wait_until(lambda: not tg.pending_updates(), 30, "the bot to confirm every update",
               step=0.05)

    def stranger_taps() -> list[dict[str, Any]] | None:
        cbs = [c for c in tg.callbacks() if c.get("user_id") == STRANGER]
        return cbs if cbs and all(c.get("answered") for c in cbs) else None
    taps = wait_until(stranger_taps, 20,
                      "every tap answered (a tap that is not answered spins forever)",
                      step=0.05)
    # ... and a message from the owner after them is answered: the bot is done with them.
    ask(tg, OWNER, "owner after the stranger tok-s1")

    after = snapshot(stack, model)
    after["model_requests"] -= 1  # the owner's own message just now
    assert after == before
    assert not marker.exists()
    bodies = str(model.requests())
    assert secret not in bodies
    # At most one short refusal in the stranger's chat, nothing else.
    replies = bot_messages(tg, STRANGER)
    assert len(replies) <= 1, [message_text(m) for m in replies]
    assert all(len(message_text(m)) <= 200 for m in replies)
    # Nothing new in the group from the bot for the stranger's messages there; the owner's
    # prompt is still waiting and still has its buttons.
    new_in_group = [m for m in bot_messages(tg, GROUP) if m["message_id"] > group_before]
    assert not new_in_group, [message_text(m) for m in new_in_group]
    current = next(m for m in tg.chat(GROUP) if m["message_id"] == prompt["message_id"])
    assert buttons(current) == buttons(prompt)
    assert all(len(str((t.get("answer") or {}).get("text") or "")) <= 200 for t in taps), taps
    # The stranger leaves no trace in the logs beyond a line without the text.
    logs = "".join(p.read_text(errors="replace") for p in stack.logs_dir().glob("*"))
    assert secret not in logs
    # The owner denies the prompt: the command never ran.
    tg.tap(OWNER, prompt["message_id"], next(d for d in buttons(prompt) if d.endswith(":d")),
           chat_id=GROUP)
    wait_text(tg, GROUP, r"(?i)tool said|denied|deny", timeout=60, after=prompt["message_id"])
    assert not marker.exists()


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_runtime_dir_is_0700_and_its_sockets_0600(stack: Stack, tg: Any) -> None:
    new_session(tg, OWNER, unique("perm"))
    ask(tg, OWNER, "socket check tok-p1")
    run = stack.runtime_dir
    assert mode(run) == 0o700, oct(mode(run))
    socks = [p for p in run.iterdir() if stat.S_ISSOCK(os.lstat(p).st_mode)]
    assert {p.name for p in socks} >= {"control.sock", "chat.sock", "events.sock"}
    bad = {p.name: oct(mode(p)) for p in socks if mode(p) != 0o600}
    assert not bad, bad


def test_the_state_dir_is_private(stack: Stack, tg: Any) -> None:
    """It holds the conversations, the bot's journal and the logs (switchboard.example.toml:
    "private to you: 0700")."""
    new_session(tg, OWNER, unique("priv"))
    ask(tg, OWNER, "state check tok-p2")
    assert mode(stack.state_dir) & 0o077 == 0, oct(mode(stack.state_dir))
    sessions = stack.state_dir / "sessions"
    assert mode(sessions) & 0o077 == 0, oct(mode(sessions))

    # Nothing another user can read: a file is reachable only through directories they may
    # enter, so a 0644 SQLite -wal file inside a 0700 directory is private all the same.
    def reachable(path: Path) -> bool:
        for d in [stack.state_dir, *reversed(path.relative_to(stack.state_dir).parents[:-1])]:
            if not mode(stack.state_dir / d) & 0o001:
                return False
        return True
    exposed = [f"{p.relative_to(stack.state_dir)} {oct(mode(p))}"
               for p in stack.state_dir.rglob("*")
               if not p.is_symlink() and mode(p) & 0o004 and reachable(p)]
    assert not exposed, exposed


def test_the_token_is_in_no_log_file_and_no_argv(stack: Stack, tg: Any) -> None:
    token = tg.token
    # Traffic that makes every part of the bot talk, including its error paths.
    new_session(tg, OWNER, unique("tok"))
    ask(tg, OWNER, "plain tok-t1")
    tg.fault("5xx", method="sendMessage", count=2)
    tg.fault("429", method="editMessageText", count=1, retry_after=1)
    after = last_id(tg, OWNER)
    tg.send(OWNER, "through faults #sb:slow=50 #sb:words=30 tok-t2")
    wait_text(tg, OWNER, r"w1 w2 .* w30", timeout=90, after=after)
    tg.fault("drop_after", method="getUpdates", count=1)
    ask(tg, OWNER, "after a dropped poll tok-t3", timeout=90)
    tg.send(OWNER, "/status")
    wait_text(tg, OWNER, r"📌 Sessions, live", timeout=20)  # the live status
    out = stack.ctl("status", "-l")
    assert token not in out.stdout + out.stderr
    tail = stack.ctl("tail", "-n", "500", "bot")
    assert token not in tail.stdout + tail.stderr

    secret_part = token.split(":", 1)[1]
    leaks = []
    for path in stack.state_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            if token.encode() in data or secret_part.encode() in data:
                leaks.append(str(path.relative_to(stack.state_dir)))
    assert not leaks, f"the token is in: {leaks}"
    assert list(stack.logs_dir().glob("*.log")), "no log files at all?"

    stack.note_processes()
    procs = stack.tagged()
    assert len(procs) >= 4  # run, bot, worker, CLI
    in_argv = []
    in_environ = []
    for p in procs:
        try:
            cmd = " ".join(p.cmdline())
            env = p.environ()
        except Exception:  # noqa: BLE001 - it exited meanwhile
            continue
        if secret_part in cmd:
            in_argv.append(cmd[:100])
        holders = [k for k, v in env.items() if secret_part in v]
        # The user exported it for `switchboard run`, which takes it out of its own environment
        # and hands it to the bot through a pipe: no process holds it, `run` and the bot neither.
        if holders:
            in_environ.append(f"{cmd[:80]}: {holders}")
    assert not in_argv, in_argv
    assert not in_environ, in_environ


def raw_environ(pid: int) -> bytes:
    """The exec-time environment block, as any process of the same user can read it."""
    try:
        return Path(f"/proc/{pid}/environ").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return b""  # it exited meanwhile


@pytest.mark.parametrize("token_in_env_file", [True, False], ids=["env-file", "token-env"])
def test_no_process_environment_holds_the_token(
        make_stack: Callable[..., Stack], tg: Any, token_in_env_file: bool) -> None:
    """Given in the env file next to the config, or exported in the variable the config's
    token_env names: the bot logs in, and no /proc/<pid>/environ of the stack (run, bot, worker,
    CLI) holds the token or its secret half."""
    stack = make_stack(token_in_env_file=token_in_env_file)
    if token_in_env_file:
        assert stack.tg.token not in " ".join(f"{k}={v}" for k, v in stack.env().items())
    name = unique("env")
    new_session(tg, OWNER, name)
    ask(tg, OWNER, "environ check tok-e1")
    stack.note_processes()
    procs = stack.tagged()
    assert stack.proc is not None and stack.proc.pid in {p.pid for p in procs}
    assert len(procs) >= 4, procs  # run, bot, worker, CLI
    secret = tg.token.split(":", 1)[1].encode()
    holders = [" ".join(p.cmdline())[:80] for p in procs if secret in raw_environ(p.pid)]
    assert not holders, holders


WRONG_TOKEN = "42:not-this-bot-tok"  # a shape no pattern knows: only the exact secret is redacted


def test_a_refused_token_reaches_neither_bot_stdio_nor_the_logs(
        make_stack: Callable[..., Stack], tg: Any) -> None:
    """PTB's InvalidToken quotes the token it was given; the bot stops with one sentence and is
    retried, and neither its .stdio, its log nor `switchboardctl status` shows the token."""
    stack = make_stack(start=False, telegram={"token": WRONG_TOKEN})
    stack.start(bot_running=False)
    stdio = stack.logs_dir() / "bot.stdio"

    def refused_twice() -> bool:
        text = stdio.read_text(errors="replace") if stdio.exists() else ""
        return text.count("Telegram refused the bot token") >= 2
    wait_until(refused_twice, 60, "the bot refused and retried", step=0.2)
    assert [c["status"] for c in tg.calls("getMe")][:1] in ([401], [404])
    secret = WRONG_TOKEN.split(":", 1)[1]
    leaks = [p.name for p in stack.logs_dir().glob("*") if secret in p.read_text(errors="replace")]
    assert not leaks, leaks
    out = stack.ctl("status", "-l")
    assert secret not in out.stdout + out.stderr
    assert secret not in stack.run_output()


def test_every_sqlite_file_and_its_side_files_are_0600(stack: Stack, tg: Any) -> None:
    new_session(tg, OWNER, unique("db"))
    ask(tg, OWNER, "db modes tok-d1")
    dbs = sorted(stack.state_dir.rglob("*.db"))
    assert {p.name for p in dbs} >= {"bot.db", "session.db"}, dbs
    files = [f for db in dbs for f in (db, *dbfiles.side_files(db)) if f.exists()]
    assert any(f.name.endswith("-wal") for f in files) and any(
        f.name.endswith("-shm") for f in files), files
    loose = {str(f.relative_to(stack.state_dir)): oct(mode(f)) for f in files if mode(f) != 0o600}
    assert not loose, loose


def test_an_upload_into_a_planted_link_is_refused(stack: Stack, tg: Any, model: Any) -> None:
    """A link the session's tools put at work/uploads would carry the file anywhere: the bot
    refuses in one sentence and writes nothing through it; Claude is not asked."""
    name = unique("up")
    new_session(tg, OWNER, name)
    ask(tg, OWNER, "before the link tok-u1")
    outside = stack.tmp / "outside"
    outside.mkdir()
    uploads = stack.state_dir / "sessions" / name / "work" / "uploads"
    if uploads.is_dir() and not uploads.is_symlink():
        uploads.rmdir()
    uploads.symlink_to(outside)
    requests = len(model.requests())
    mid = tg.send_document(OWNER, "evil.txt", b"through the link")["message"]["message_id"]
    reply = wait_text(tg, OWNER, r"evil\.txt was not saved", timeout=30, after=mid)
    assert "work/uploads" in message_text(reply) and "link" in message_text(reply)
    assert os.listdir(outside) == []
    assert len(model.requests()) == requests


def test_a_persona_with_an_option_for_a_tool_is_refused_by_check_config_and_doctor(
        make_stack: Callable[..., Stack]) -> None:
    personas = Path(__file__).resolve().parents[2] / "personas"
    stack = make_stack(start=False, top={"personas_dir": "personas"})
    mine = stack.tmp / "personas"
    mine.mkdir()
    for p in personas.glob("*.json"):
        (mine / p.name).write_text(p.read_text())
    evil = mine / "evil.json"
    evil.write_text(json.dumps({"name": "evil",
                                "allowed_tools": ["Read", "--dangerously-skip-permissions"]}))
    for argv in (["check-config"], ["doctor"]):
        r = stack.switchboard(*argv)
        out = r.stdout + r.stderr
        assert r.returncode != 0, (argv, out)
        assert str(evil) in out and "allowed_tools" in out, (argv, out)
        assert "--dangerously-skip-permissions" in out, (argv, out)
    rc, out = stack.run_briefly(stack.config)
    assert rc not in (None, 0) and "allowed_tools" in out, out


def test_a_stranger_adding_the_bot_to_a_group_makes_it_leave(stack: Stack, tg: Any) -> None:
    group = -100555
    tg.add_bot(STRANGER, group, title="not yours")
    wait_until(lambda: not tg.is_member(group), 30, "the bot to leave the stranger's group",
               step=0.1)
    assert not bot_messages(tg, group), "the bot said something in the stranger's group"
    assert not list((stack.state_dir / "sessions").glob("*"))
    # The owner's own group is kept: adding it there leaves it in.
    mine = -100556
    tg.add_bot(OWNER, mine, title="mine")
    wait_until(lambda: not tg.pending_updates(), 30, "the bot to take the update", step=0.05)
    tg.send(OWNER, "/help", chat_id=mine, chat_type="group")
    wait_text(tg, mine, r"/new", timeout=20)
    assert tg.is_member(mine)


def test_groups_false_refuses_the_owners_group_with_a_sentence(
        make_stack: Callable[..., Stack], tg: Any, model: Any) -> None:
    stack = make_stack(telegram={"groups": False})
    group = -100557
    tg.send(OWNER, "hello from the group", chat_id=group, chat_type="group")
    reply = wait_text(tg, group, r"does not work in groups", timeout=30)
    assert "groups" in message_text(reply) and message_text(reply).endswith(".")
    wait_until(lambda: not tg.is_member(group), 30, "the bot to leave the group", step=0.1)
    assert len(bot_messages(tg, group)) == 1
    assert model.requests() == [] and not list((stack.state_dir / "sessions").glob("*"))
    # The owner's private chat still works.
    new_session(tg, OWNER, unique("priv"))
    ask(tg, OWNER, "private still works tok-g1")
