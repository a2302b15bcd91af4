"""Claude's own file tools are fenced off from Switchboard's controls and secrets, like its Bash:
through the sandbox Telegram user and the real CLI, a session's Read of the config, of the env
file with the bot token, of bot.db, of a session.db and metadata.json, of the logs, of the
supervisor's lock, of the runtime dir's key and of another session's work dir is denied, and so
are its Write and Edit of the config, of the sessions' registry and of another session's dir;
the same tools work in its own work dir. A session working in a project's directory is denied
Switchboard's state the same way, and may write nothing anywhere in the state dir.

Each deny is proven by trying it: a prompt, if the CLI shows one, is allowed, so what refuses is
the deny rule and not a missing approval. What a denied target holds (a secret planted in it, or
a marker of its real content) appears neither in the chat nor in any request the CLI sent to
the model API. Where bubblewrap or socat is missing this test skips, naming the install command.
"""
from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
from conftest import unique

from tests.support.chat import (
    bot_texts,
    button,
    last_id,
    message_text,
    new_session,
    prompt_for,
    wait_text,
)
from tests.support.stack import OWNER, Stack
from tests.support.waits import wait_until
from wire import sandbox

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(bool(sandbox.missing_programs()),
                       reason=f"Claude Code's sandbox needs bwrap and socat: {sandbox.INSTALL}"),
]

CONFIG_SECRET = "CONFIG-SECRET-41d9"
LOG_SECRET = "LOG-SECRET-c07e"
OTHER_SECRET = "OTHER-SESSION-SECRET-9b2a"
MINE = "MY-OWN-NOTE-5e11"
PROJECT_NOTE = "PROJECT-NOTE-a3f0"
UPLOAD_NOTE = "UPLOADED-NOTE-77c2"
# The CLI's words for a path its permission rules deny (Read, Write and Edit alike).
DENIED = "File is in a directory that is denied by your permission settings."


def tool(tg: Any, name: str, **tool_input: str) -> str:
    """Have Claude use tool `name` with `tool_input`, tap Allow on a prompt if one comes, and
    return what the tool said (its result or its error)."""
    after = last_id(tg, OWNER)
    tg.send(OWNER, f"#sb:tool={name} {json.dumps(tool_input)}")
    first = wait_text(tg, OWNER, r"asks to use|tool said", 60, after=after)
    if "tool said" not in message_text(first):
        prompt = prompt_for(tg, OWNER, tool=name, after=after)
        tg.tap(OWNER, prompt["message_id"], button(prompt, "Allow"))
        first = wait_text(tg, OWNER, r"tool said", 60, after=prompt["message_id"])
    return message_text(first)


def leaves(value: Any) -> list[str]:
    """Every string in a JSON value."""
    if isinstance(value, dict):
        return [s for v in value.values() for s in leaves(v)]
    if isinstance(value, list):
        return [s for v in value for s in leaves(v)]
    return [value] if isinstance(value, str) else []


def denied(tg: Any, name: str, **tool_input: str) -> str:
    said = tool(tg, name, **tool_input)
    assert DENIED in said, f"{name} {tool_input} was not denied: {said}"
    return said


def test_claudes_file_tools_cannot_reach_the_secrets_or_another_sessions_dir(
        make_stack: Callable[..., Stack], tg: Any, model: Any) -> None:
    st = make_stack(start=False, token_in_env_file=True)
    project = st.tmp / "proj"
    project.mkdir()
    (project / "plan.txt").write_text(f"{PROJECT_NOTE}\n")
    st.sections["projects.proj"] = {"path": str(project)}
    repo = st.tmp / "web"
    repo.mkdir()
    (repo / "README").write_text("web\n")
    for args in (["init", "-q", "-b", "main"], ["add", "README"], ["commit", "-qm", "first"]):
        subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t",
                        *args], check=True, capture_output=True, timeout=30)
    st.sections["projects.web"] = {"path": str(repo), "worktrees": True}
    st.write_config()
    with st.config.open("a") as f:
        f.write(f"# {CONFIG_SECRET}\n")
    st.start()
    env_file = st.config.parent / "env"
    assert tg.token in env_file.read_text()

    # Another session with a file of its own, then this one (the active session).
    other, name = unique("other"), unique("fence")
    new_session(tg, OWNER, other)
    other_work = st.state_dir / "sessions" / other / "work"
    (other_work / "notes.txt").write_text(f"its notes {OTHER_SECRET}\n")
    new_session(tg, OWNER, name)
    own = st.state_dir / "sessions" / name
    (own / "work" / "mine.txt").write_text(f"{MINE}\n")
    logs = st.state_dir / "logs"
    wait_until(lambda: (logs / "supervisor.log").exists(), 10, "the supervisor's log")
    with (logs / "supervisor.log").open("a") as f:
        f.write(f"test-marker {LOG_SECRET}\n")
    key_file = st.runtime_dir / "owner.key"
    owner_keys = [v for v in leaves(json.loads(key_file.read_text())) if len(v) >= 20]
    assert owner_keys, "the owner's key file holds its keys"

    # Its own work dir: Read works.
    said = tool(tg, "Read", file_path=str(own / "work" / "mine.txt"))
    assert MINE in said, said
    wait_until((own / "metadata.json").exists, 10, "the session's metadata.json")

    # Every one of Switchboard's files, and the other session's dir: Read is denied.
    for target in (st.config, env_file, st.state_dir / "bot.db", own / "session.db",
                   own / "metadata.json", logs / "supervisor.log", key_file,
                   st.state_dir / "supervisor.lock", other_work / "notes.txt",
                   other_work.parent / "session.db"):
        assert target.exists(), target
        denied(tg, "Read", file_path=str(target))

    # Write and Edit of the config, the sessions' registry and the other session's dir are
    # refused, and nothing changes.
    config_before = st.config.read_bytes()
    registry_before = (st.state_dir / "sessions.json").read_bytes()
    denied(tg, "Write", file_path=str(st.config), content="[telegram]\n")
    denied(tg, "Edit", file_path=str(st.config), old_string="state_dir", new_string="x")
    denied(tg, "Write", file_path=str(st.state_dir / "sessions.json"), content="{}")
    assert st.config.read_bytes() == config_before
    assert (st.state_dir / "sessions.json").read_bytes() == registry_before
    denied(tg, "Write", file_path=str(other_work / "planted.txt"), content="x\n")
    denied(tg, "Edit", file_path=str(other_work / "notes.txt"), old_string="its notes",
           new_string="x")
    assert not (other_work / "planted.txt").exists()
    assert (other_work / "notes.txt").read_text() == f"its notes {OTHER_SECRET}\n"

    # Write in its own work dir works (after the owner's approval).
    said = tool(tg, "Write", file_path=str(own / "work" / "new.txt"), content="written\n")
    assert (own / "work" / "new.txt").read_text() == "written\n", said

    # A session in a project's directory: its own files are readable, Switchboard's state not.
    in_project = unique("pj")
    new_session(tg, OWNER, in_project, "@proj")
    said = tool(tg, "Read", file_path=str(project / "plan.txt"))
    assert PROJECT_NOTE in said, said
    for target in (st.config, env_file, st.state_dir / "bot.db",
                   st.state_dir / "sessions" / in_project / "session.db",
                   logs / "supervisor.log", other_work / "notes.txt", key_file):
        denied(tg, "Read", file_path=str(target))
    denied(tg, "Write", file_path=str(st.state_dir / "sessions" / "planted.json"), content="{}")
    assert not (st.state_dir / "sessions" / "planted.json").exists()

    # A session in its own worktree (under the state dir) reads the chat's uploads kept in its
    # session's folder, but writes nothing there, nor reads another session's files.
    in_tree = unique("wt")
    new_session(tg, OWNER, in_tree, "@web")
    mid = tg.send_document(OWNER, "todo.txt", f"{UPLOAD_NOTE}\n".encode())["message"]["message_id"]
    upload = st.state_dir / "sessions" / in_tree / "work" / "uploads" / f"{mid}-todo.txt"
    wait_until(upload.exists, 30, "the upload saved")
    said = tool(tg, "Read", file_path=str(upload))
    assert UPLOAD_NOTE in said, said
    denied(tg, "Write", file_path=str(upload.parent / "planted.txt"), content="x\n")
    denied(tg, "Read", file_path=str(other_work / "notes.txt"))
    assert not (upload.parent / "planted.txt").exists()

    # Nothing any denied target holds reached the chat or the model.
    seen = "\n".join(bot_texts(tg, OWNER))
    sent = json.dumps(model.requests())
    for secret in (CONFIG_SECRET, tg.token, LOG_SECRET, OTHER_SECRET, *owner_keys,
                   "SQLite format", "claude_session_id"):
        assert secret not in seen, f"{secret!r} shown in the chat"
        assert secret not in sent, f"{secret!r} sent to the model"
