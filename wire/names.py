"""Names every role agrees on: session names and program names.

Pure functions, no I/O. A session name becomes a directory, a ZeroMQ identity and part of a
process marker, so it is validated here once and refused everywhere else with the same sentence.
A few words mean something else to the commands (`stop all`, `tail supervisor`, the `bot`
program, `/help`): they are never session names, or a command could not tell them apart.
"""
from __future__ import annotations

import hashlib
import os
import re

SESSION_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
BOT_PROGRAM = "bot"
SESSION_PREFIX = "session:"
MARKER_ENV = "SWITCHBOARD_SESSION"
# Which Switchboard the marked process belongs to: two instances of one user (a demo next to a
# real deployment, parallel test runs) may both have a session called "api".
INSTANCE_ENV = "SWITCHBOARD_INSTANCE"
# The file a supervisor writes into `<state_dir>/sessions/<name>/` just before it sends SIGTERM
# for a user's stop or restart: the worker then cancels the running turn instead of keeping it
# for the next start (SIGTERM itself carries nothing; a shutdown of the whole supervisor, a
# heartbeat kill or a crash leave no such file, and the message is tried again).
USER_STOP_FILE = "stop-by-user"
# Words the chat commands and switchboardctl read as something other than a session.
RESERVED_NAMES = frozenset({"all", "bot", "supervisor", "help", "none"})


class InvalidName(ValueError):
    """A session or program name that is not allowed; str() is the sentence for the user."""


def session_name_error(name: str) -> str | None:
    """Return None for a valid session name, else one sentence that says what to use instead."""
    if name in RESERVED_NAMES:
        return (
            f"'{name}' is a reserved word, not a session name: pick another name, for example"
            f" '{name}-1'."
        )
    if SESSION_NAME_RE.fullmatch(name):
        return None
    shown = name if len(name) <= 40 else name[:37] + "..."
    return (
        f"'{shown}' is not a valid session name: use 1-32 characters of a-z, 0-9, '-' and '_',"
        " starting with a letter or digit."
    )


def check_session_name(name: str) -> str:
    """Return the name if valid, else raise InvalidName with the user-facing sentence."""
    err = session_name_error(name)
    if err:
        raise InvalidName(err)
    return name


def instance_id(state_dir: str) -> str:
    """A short stable id for one Switchboard installation: a hash of its real state dir."""
    real = os.path.realpath(os.path.expanduser(state_dir))
    return hashlib.sha256(real.encode()).hexdigest()[:16]


def program_name(session: str) -> str:
    return SESSION_PREFIX + session


def parse_program(name: str) -> tuple[str, str | None]:
    """Split a program name into (kind, session): ('bot', None) or ('session', 'demo').

    A bare valid session name is accepted as shorthand for `session:<name>`.
    """
    if name == BOT_PROGRAM:
        return ("bot", None)
    session = name[len(SESSION_PREFIX):] if name.startswith(SESSION_PREFIX) else name
    return ("session", check_session_name(session))


# The flags every worker starts its CLI with (session_worker.claude_process.BASE_FLAGS): among
# the processes that carry a session's marker, the ones whose argv has them are CLIs, the rest
# are the tools those CLIs started. Only a CLI is ever stale (one CLI per Claude session id).
CLI_SIGNATURE = (("--input-format", "stream-json"), ("--permission-prompt-tool", "stdio"))


def is_session_cli(cmdline: list[str]) -> bool:
    """Whether a marked process's argv is a session's CLI rather than one of its tools."""
    pairs = set(zip(cmdline, cmdline[1:], strict=False))
    return all(pair in pairs for pair in CLI_SIGNATURE)
