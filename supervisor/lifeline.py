"""The lifeline's words: why the bot is being retried and since when, in one line.

The bot is the user's only way in, so the supervisor never gives it up (see supervisor.backoff).
What it can do is say, in `switchboardctl status`, systemd's STATUS= and `switchboard doctor`,
"retrying since 14:02: <why>". The why is the bot's own last sentence on stderr when it stopped
with one (a refused token, an unreachable Telegram), else its exit described.

Pure: text in, text out; the caller reads the stderr tail. Never prints a secret it was not
given: the bot's sentences carry none, and log lines (which could) are never taken.
"""
from __future__ import annotations

import datetime
import re

MAX_SENTENCE = 300
# A traceback's last line ("ValueError: ...", "zmq.error.ZMQError: ...") is not a sentence for
# the user: `tail` has the detail.
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Warning)\b")


def last_sentence(tail: str) -> str:
    """The last line of a stderr tail if it is one plain sentence, else ''."""
    lines = [ln.rstrip() for ln in tail.splitlines() if ln.strip()]
    if not lines:
        return ""
    line = lines[-1]
    if (line[0].isspace() or line.startswith(("time=", "Traceback", "During handling"))
            or _EXCEPTION_LINE.match(line) or len(line) > MAX_SENTENCE):
        return ""
    return line


def retrying_line(since_wall: float, why: str) -> str:
    """'retrying since 14:02: why' (local time, as `status` shows every other time)."""
    hhmm = datetime.datetime.fromtimestamp(since_wall).strftime("%H:%M")
    return f"retrying since {hhmm}: {why}" if why else f"retrying since {hhmm}"
