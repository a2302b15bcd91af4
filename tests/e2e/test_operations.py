"""Operations that cannot hurt: a second supervisor, a SIGHUP, as a user does them.

A second `switchboard run` on the same state dir (another runtime dir) is refused and leaves
the first one's session and CLI alone; a SIGHUP after editing `telegram.allowed_user_ids` takes
effect in the running bot at once: a user taken off is a stranger at the next message, a user
added is answered.
"""
from __future__ import annotations

import os
import shutil
import signal
from typing import Any

import psutil
import pytest

from tests.e2e.conftest import unique
from tests.support.chat import journal_rows, texts
from tests.support.config import render_config, short_dir
from tests.support.stack import OWNER, Stack
from tests.support.waits import wait_until

FRIEND = 2002
NEWCOMER = 3003
REFUSAL = "This is a private bot."


def cli_pid(stack: Stack, session: str) -> int:
    row = wait_until(lambda: (r := stack.row(f"session:{session}")) and r.get("claude_pid") and r,
                     20, f"the warm CLI of {session} in status")
    return int(row["claude_pid"])


@pytest.mark.timeout(150)
def test_a_second_supervisor_on_one_state_dir_is_refused_and_touches_nothing(
        make_stack: Any) -> None:
    stack = make_stack()
    name = unique("keep")
    stack.new_session(name)
    assert "echo: first" in stack.ask("first", expect=lambda t: "first" in t, timeout=60)
    worker = stack.session_pid(name)
    cli = cli_pid(stack, name)
    assert stack.proc is not None

    other_run = short_dir()
    try:
        second = render_config({**stack.top, "runtime_dir": str(other_run)}, stack.sections)
        rc, said = stack.run_briefly(stack.write_config(second, stack.tmp / "second.toml"))
        assert rc == 1, said
        assert (f"another supervisor (pid {stack.proc.pid}) is already running on state_dir"
                f" {stack.state_dir}") in said, said
        assert not list(other_run.glob("*.sock")), "the second supervisor bound sockets"
    finally:
        shutil.rmtree(other_run, ignore_errors=True)

    # The first one's session, worker and CLI are untouched, and it still answers.
    assert psutil.pid_exists(cli) and psutil.Process(cli).status() != psutil.STATUS_ZOMBIE
    assert stack.session_pid(name) == worker
    assert "echo: second" in stack.ask("second", expect=lambda t: "second" in t, timeout=60)
    assert cli_pid(stack, name) == cli
    assert "leftover_killed" not in (stack.logs_dir() / "supervisor.log").read_text()


def reload(stack: Stack, allowed: list[int]) -> None:
    """Edit the allow-list, SIGHUP the supervisor, wait until the bot said it applied it."""
    log = stack.logs_dir() / "supervisor.log"
    before = log.read_text().count("event=reload_applied program=bot")
    stack.sections["telegram"]["allowed_user_ids"] = allowed
    stack.write_config()
    assert stack.proc is not None
    os.kill(stack.proc.pid, signal.SIGHUP)
    wait_until(lambda: log.read_text().count("event=reload_applied program=bot") > before, 15,
               "the bot to apply the reload")


def help_answered(stack: Stack, user: int) -> None:
    mid = stack.say("/help", user)
    stack.wait_text(lambda t: "/new NAME" in t, user, 15, after=mid)


@pytest.mark.timeout(150)
def test_sighup_takes_a_user_off_the_allow_list_and_adds_one_at_once(make_stack: Any) -> None:
    stack = make_stack(users=[OWNER, FRIEND])
    tg = stack.tg
    help_answered(stack, FRIEND)
    # The newcomer is a stranger before the reload.
    tg.send(NEWCOMER, "/help")
    tg.wait_for(lambda c: REFUSAL in texts(c), NEWCOMER, 15)
    bot = stack.bot_pid()

    reload(stack, [OWNER, NEWCOMER])
    assert stack.bot_pid() == bot  # applied to the running bot, not by a restart

    # The friend is now a stranger: refused, and nothing happens.
    evil = unique("evil")
    tg.send(FRIEND, f"/new {evil}")
    tg.send(FRIEND, "do something, secret-friend-text")
    tg.wait_for(lambda c: REFUSAL in texts(c), FRIEND, 15)
    help_answered(stack, OWNER)  # every update before it was handled
    wait_until(lambda: not tg.pending_updates(), 10, "all updates confirmed")
    assert texts(tg.chat(FRIEND)).count(REFUSAL) == 1
    assert not any(evil in t for t in texts(tg.chat(FRIEND)))
    assert not (stack.state_dir / "sessions" / evil).exists()
    assert f"session:{evil}" not in {r["name"] for r in stack.status()}
    assert journal_rows(stack.state_dir, "SELECT * FROM handoffs") == []
    bodies = journal_rows(stack.state_dir, "SELECT body FROM updates")
    assert not any("secret-friend-text" in body for (body,) in bodies)

    # The newcomer is answered now.
    help_answered(stack, NEWCOMER)
    assert texts(tg.chat(NEWCOMER)).count(REFUSAL) == 1
