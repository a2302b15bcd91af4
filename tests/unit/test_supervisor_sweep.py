"""The sweep's pure decisions: which marked processes die, which process a fat session loses,
and which marked process is a CLI rather than one of its tools."""
from __future__ import annotations

import pytest

from session_worker.claude_process import build_argv
from supervisor import config
from supervisor.watcher import Marked, Member, Target, doomed, victim
from wire import messages as m
from wire.names import is_session_cli


def owner(*, keeps_tree: bool, pid: int | None = 100) -> Target:
    return Target(program="session:api", session="api", pid=pid, alive=keeps_tree and bool(pid),
                  keeps_tree=keeps_tree)


RUNNING = owner(keeps_tree=True)
BACKOFF = owner(keeps_tree=True, pid=None)  # its worker crashed and comes back
STOPPED = owner(keeps_tree=False, pid=None)  # stopped, exited or FATAL


@pytest.mark.parametrize(("proc", "target", "why"), [
    # A running session keeps its tools, in its worker's tree or detached and reparented to us.
    (Marked(1, "api", cli=False, in_worker=True), RUNNING, None),
    (Marked(1, "api", cli=False, in_worker=False), RUNNING, None),
    # Its current CLI stays; a CLI outside its worker's tree is stale (one CLI per session id).
    (Marked(1, "api", cli=True, in_worker=True), RUNNING, None),
    (Marked(1, "api", cli=True, in_worker=False), RUNNING, "a stale CLI"),
    # A crashed worker coming back: its tools wait for it, its old CLI does not.
    (Marked(1, "api", cli=False, in_worker=False), BACKOFF, None),
    (Marked(1, "api", cli=True, in_worker=False), BACKOFF, "a stale CLI"),
    # A session that is not running, or no longer exists, keeps nothing.
    (Marked(1, "api", cli=False, in_worker=False), STOPPED, "not running"),
    (Marked(1, "api", cli=True, in_worker=False), STOPPED, "not running"),
    (Marked(1, "api", cli=False, in_worker=False), None, "removed"),
])
def test_which_marked_processes_die(proc: Marked, target: Target | None, why: str | None) -> None:
    got = doomed(proc, target)
    assert (got is None) if why is None else (got is not None and why in got)


W = Member(1, "python", "worker", 60)
C = Member(2, "node", "CLI", 200)
T = Member(3, "python3", "tool", 500)


@pytest.mark.parametrize(("members", "killed"), [
    ([W, C, T], T),  # the tool that grew goes, the session keeps running
    ([W, C], C),  # the CLI goes; the worker resumes the conversation
    ([Member(1, "python", "worker", 900), C, T], Member(1, "python", "worker", 900)),
    # A tie: not the worker.
    ([W, Member(3, "python3", "tool", 60)], Member(3, "python3", "tool", 60)),
    ([W], W),
    ([], None),
])
def test_which_process_a_session_over_its_memory_limit_loses(members: list[Member],
                                                             killed: Member | None) -> None:
    assert victim(members) == killed


@pytest.mark.parametrize(("argv", "cli"), [
    (build_argv("claude", m.Persona(name="d"), [], None), True),
    (["node", "/x/cli.js", *build_argv("claude", m.Persona(name="d", allowed_tools=["Bash"]),
                                       ["--debug"], "abc")[1:]], True),
    (["python3", "-m", "http.server", "8080"], False),
    (["sleep", "300"], False),
    (["bash", "-c", "echo --input-format stream-json"], False),
    ([], False),
])
def test_a_cli_is_told_from_its_tools_by_its_argv(argv: list[str], cli: bool) -> None:
    assert is_session_cli(argv) is cli


def test_max_sessions_has_a_default_and_is_validated() -> None:
    assert config.parse("").supervisor.max_sessions == 50
    assert config.parse("[supervisor]\nmax_sessions = 3").supervisor.max_sessions == 3
    for bad in (0, -1, 1001):
        with pytest.raises(config.ConfigError, match="supervisor.max_sessions"):
            config.parse(f"[supervisor]\nmax_sessions = {bad}")
