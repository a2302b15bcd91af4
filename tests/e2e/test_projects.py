"""Sessions in projects, as the owner uses them: through the sandbox Telegram user, the real CLI
in Claude Code's sandbox, `switchboardctl` and git.

A session on a plain project answers `pwd` with the project's directory and reads a file sent
from the chat, which stays under state_dir; two sessions on a
worktrees project work in two worktrees of one repository (one commits from inside the
sandbox, so the repository's .git is writable to it); `/projects`, `status -l` and `--json` name
each session's project and directory, across a restart of the supervisor; a bad project or
directory gets one sentence and creates nothing; `/remove` removes the clean worktree, keeps the
one with an unpushed commit with a sentence saying where and why, and never touches the
project's directory.
"""
from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import unique
from tests.support.chat import last_id, message_text, new_session, wait_text
from tests.support.stack import OWNER, Stack
from tests.support.waits import wait_until
from wire import sandbox

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(bool(sandbox.missing_programs()),
                       reason=f"Claude Code's sandbox needs bwrap and socat: {sandbox.INSTALL}"),
]


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t",
                           *args], capture_output=True, text=True, timeout=30, check=True)
    return done.stdout


def approved(tg: Any, command: str, timeout: float = 90, tool: str = "") -> str:
    """Send `#sb:bash=COMMAND` (or `#sb:tool=TOOL`), tap Allow on its prompt (a read-only
    command like `pwd` has none), and return what the tool said."""
    after = last_id(tg, OWNER)
    tg.send(OWNER, f"#sb:tool={tool}" if tool else f"#sb:bash={command}")
    prompt = wait_text(tg, OWNER, r"asks to use|tool said", timeout, after=after)
    if "tool said" in message_text(prompt):
        return message_text(prompt)
    allow = next(b["callback_data"] for row in prompt["reply_markup"]["inline_keyboard"]
                 for b in row if b["text"] == "Allow")
    tg.tap(OWNER, prompt["message_id"], allow)
    return message_text(wait_text(tg, OWNER, r"tool said", timeout, after=prompt["message_id"]))


def said(tg: Any, text: str, pattern: str, timeout: float = 60) -> str:
    after = last_id(tg, OWNER)
    tg.send(OWNER, text)
    return message_text(wait_text(tg, OWNER, pattern, timeout, after=after))


def removed(tg: Any, name: str) -> str:
    """`/remove NAME`, confirmed; the final text of the confirmation message."""
    after = last_id(tg, OWNER)
    tg.send(OWNER, f"/remove {name}")
    confirm = wait_text(tg, OWNER, r"cannot be undone", 20, after=after)
    assert "project's directory is never deleted" in message_text(confirm)
    tg.tap(OWNER, confirm["message_id"], f"rm:y:{name}")

    def final() -> str | None:
        text = next(m for m in tg.chat(OWNER) if m["message_id"] == confirm["message_id"])["text"]
        return str(text) if "removed" in text else None

    return wait_until(final, 60, f"the removal of {name} confirmed")


def test_sessions_work_in_their_project_and_their_own_worktrees(
        make_stack: Callable[..., Stack], tg: Any) -> None:
    st = make_stack(start=False)
    plain = st.tmp / "notes"
    plain.mkdir()
    (plain / "keep.txt").write_text("the user's file\n")
    repo = st.tmp / "web"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "README").write_text("web\n")
    git(repo, "add", "README")
    git(repo, "commit", "-qm", "first")
    st.sections["projects.notes"] = {"path": str(plain)}
    st.sections["projects.web"] = {"path": "web", "worktrees": True}  # relative to the config
    st.write_config()
    st.start()

    # Bad names and directories: one sentence each, nothing created.
    text = said(tg, "/new lost @nope", r"no project 'nope'")
    assert "configured: notes, web" in text and "[projects.nope]" in text, text
    out = st.ctl("new", "gone", "--dir", str(st.tmp / "missing"))
    assert out.returncode != 0 and "does not exist" in out.stderr, out
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    out = st.ctl("new", "state", "--dir", str(st.state_dir))
    assert out.returncode != 0 and "inside state_dir" in out.stderr, out
    out = st.ctl("new", "lost", "--project", "nope")
    assert out.returncode != 0 and "ERROR: no project 'nope' in the config" in out.stderr, out
    assert [r["name"] for r in st.status()] == ["bot"]
    assert not (st.state_dir / "worktrees").exists()

    # A plain project: the CLI runs in the project's directory.
    notes = unique("nt")
    new_session(tg, OWNER, notes, "@notes")
    assert re.search(rf"tool said: {re.escape(str(plain))}\b", approved(tg, "pwd"))
    # A file sent from the chat stays under state_dir, and the session can still read it.
    mid = tg.send_document(OWNER, "todo.txt", b"buy milk tok-up7")["message"]["message_id"]
    upload = st.state_dir / "sessions" / notes / "work" / "uploads" / f"{mid}-todo.txt"
    wait_until(upload.exists, 30, "the upload saved")
    read = approved(tg, "x", tool=f'Read {{"file_path": "{upload}"}}')
    assert "buy milk tok-up7" in read, read
    assert not (plain / "uploads").exists() and not (plain / "work").exists()

    # A worktrees project: two sessions, two worktrees of the one repository.
    one, two = unique("wa"), unique("wb")
    new_session(tg, OWNER, one, "@web")
    tree_one = st.state_dir / "worktrees" / "web" / one
    assert re.search(rf"tool said: {re.escape(str(tree_one))}\b", approved(tg, "pwd"))
    new_session(tg, OWNER, two, "@web")
    tree_two = st.state_dir / "worktrees" / "web" / two
    answer = approved(tg, "echo draft > plan.txt && git add plan.txt && git -c user.name=s"
                      " -c user.email=s@s commit -qm plan && git log --oneline | wc -l && pwd")
    assert re.search(rf"\b2\b.*{re.escape(str(tree_two))}", answer, re.S), answer
    trees = git(repo, "worktree", "list", "--porcelain")
    assert f"worktree {tree_one}\n" in trees and f"worktree {tree_two}\n" in trees, trees
    assert f"branch refs/heads/{one}" in trees and f"branch refs/heads/{two}" in trees, trees
    assert not (repo / "plan.txt").exists(), "the main checkout is not touched"

    # Where each works, in the chat and at the terminal, across a restart of the supervisor.
    listed = said(tg, "/projects", r"• web")
    assert re.search(rf"• notes — {re.escape(str(plain))} · sessions: {notes}", listed), listed
    assert re.search(rf"• web — {re.escape(str(repo))} · a git worktree per session · sessions:"
                     rf" {one}, {two}", listed), listed
    out = st.ctl("projects").stdout
    assert re.search(rf"^web +{re.escape(str(repo))} worktrees sessions={one},{two}$", out,
                     re.M), out
    sessions = said(tg, "/sessions", re.escape(two))
    assert f"project web · dir {tree_one}" in sessions, sessions
    st.stop()
    st.restart()
    long = st.ctl("status", "-l").stdout
    assert f"project=notes dir={plain}" in long and f"project=web dir={tree_two}" in long, long
    rows = {r["name"]: r for r in json.loads(st.ctl("status", "--json").stdout)}
    assert rows[f"session:{one}"]["project"] == "web", rows
    assert rows[f"session:{one}"]["work_dir"] == str(tree_one), rows
    # The active session resumes in the same worktree (its CLI's --resume needs that cwd).
    assert re.search(rf"tool said: {re.escape(str(tree_two))}\b", approved(tg, "pwd"))

    # /remove: the clean worktree goes, the one with an unpushed commit stays and says why,
    # the plain project's directory is the user's.
    text = removed(tg, one)
    assert f"Its worktree {tree_one} was removed." in text, text
    assert not tree_one.exists() and one not in git(repo, "branch")
    text = removed(tg, two)
    assert f"Its worktree {tree_two} (branch {two}) was kept because it has 1 unpushed" in text
    assert (tree_two / "plan.txt").read_text() == "draft\n"
    removed(tg, notes)
    assert (plain / "keep.txt").read_text() == "the user's file\n"
    assert [r["name"] for r in st.status()] == ["bot"]
