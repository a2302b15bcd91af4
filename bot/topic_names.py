"""A session's topic title, and a session name from a topic's title: pure, no I/O.

A topic is named after its session with an emoji for the session's state in front, so the list
of topics reads like `switchboardctl status`: 🟢 running, ✋ waiting for an approval, 💤 suspended
(its CLI stopped while idle; the next message resumes it), ⏹ stopped, ⛔ given up (FATAL).
A topic the user made by hand becomes a session named after its title: the title is turned into
a valid session name (lower case, other characters to '-'), or refused in one sentence.
"""
from __future__ import annotations

import re

from wire import messages as m
from wire.names import session_name_error

RUNNING, WAITING, SUSPENDED, STOPPED, FATAL = "running", "waiting", "suspended", "stopped", "fatal"
EMOJI: dict[str, str] = {RUNNING: "🟢", WAITING: "✋", SUSPENDED: "💤", STOPPED: "⏹",
                         FATAL: "⛔"}
MAX_NAME = 32
_NOT_NAME = re.compile(r"[^a-z0-9_-]+")


def state_of(row: m.ProgramStatus | None, prompt_open: bool) -> str:
    """The state a topic's title shows, from the session's status row and its open prompts."""
    if row is None or row.state in ("STOPPED", "EXITED", "STOPPING"):
        return STOPPED
    if row.state == "FATAL":
        return FATAL
    if prompt_open:
        return WAITING
    if row.suspended:
        return SUSPENDED
    return RUNNING


def title(session: str, state: str) -> str:
    return f"{EMOJI.get(state, EMOJI[RUNNING])} {session}"


def session_of_title(name: str) -> tuple[str | None, str | None]:
    """(session name, None) for a topic's title, or (None, the sentence that refuses it)."""
    text = name.strip()
    for emoji in EMOJI.values():  # a title of ours, or one the user copied from it
        if text.startswith(emoji):
            text = text[len(emoji):].strip()
    candidate = _NOT_NAME.sub("-", text.lower()).strip("-_")[:MAX_NAME].strip("-_")
    if not candidate:
        return None, (f"The topic name {name[:40]!r} has no letters or digits to name a session"
                      " after: rename the topic (for example to api), or use /new NAME in"
                      " General.")
    if err := session_name_error(candidate):
        return None, err
    return candidate, None
