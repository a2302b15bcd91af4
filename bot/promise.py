"""The outbound promise as pure decisions: how a refused message is still shown, and how long a
network failure is retried before the chat is told what it missed.

- The fallback ladder (`LADDER`): a message Telegram refuses (400) goes out again as plain text
  (bot.render.render_plain), and if that is refused too, as a file with the text; only after the
  last rung is an event given up, so a seq is never marked delivered while a rung was untried.
- The retry bound (`retry_delay`): network errors and flood waits are retried with capped
  exponential backoff until `budget` seconds have passed in all; then the caller gives up on
  that one event (the line moves on, no wedge) and the chat hears about it in one sentence
  (`missed_sentence`) once Telegram answers again.

This module must never do I/O, read a clock or sleep: the shell (bot.telegram_out and
bot.delivery) passes `elapsed` in and does the waiting.
"""
from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

FIRST_DELAY = 0.5
MAX_DELAY = 10.0
# While Telegram is known to be out (an event was just given up), later events get this much
# instead of the full budget each, so a backlog does not cost minutes per event.
OUTAGE_BUDGET = 5.0


class Rung(enum.Enum):
    RICH = "rich"  # the rendered text with its entities (and its buttons)
    PLAIN = "plain"  # the same text without entities
    FILE = "file"  # the text as a document


LADDER: tuple[Rung, ...] = (Rung.RICH, Rung.PLAIN, Rung.FILE)


def next_rung(rung: Rung) -> Rung | None:
    """The rung to try after Telegram refused `rung`; None: nothing is left to try."""
    i = LADDER.index(rung)
    return LADDER[i + 1] if i + 1 < len(LADDER) else None


def retry_delay(attempt: int, elapsed: float, budget: float, *, first: float = FIRST_DELAY,
                cap: float = MAX_DELAY) -> float | None:
    """How long to wait before try `attempt + 1` (attempt 1 just failed), or None to give up.

    The wait doubles from `first` up to `cap`; the last wait is cut so the total stays within
    `budget` (a try is never scheduled past it)."""
    if attempt < 1:
        raise ValueError("attempt counts the tries that failed, from 1")
    left = budget - elapsed
    if left <= 0:
        return None
    delay: float = min(cap, first * 2.0 ** (attempt - 1))
    return min(delay, left)


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def missed_sentence(session: str, what: Sequence[str], seconds: float, error: str) -> str:
    """The one sentence a chat gets for the events given up while Telegram was unreachable."""
    kinds = ", ".join(dict.fromkeys(what))
    return (f"Session {session}: {plural(len(what), 'message')} ({kinds}) could not be delivered"
            f" because Telegram did not answer for {seconds:.0f} s ({error}); ask the session"
            " again if you need them.")


@dataclass
class Missed:
    """What one session's line gave up during an outage, until the chat is told."""

    what: list[str] = field(default_factory=list)  # view.what of each event given up
    chat: int | None = None  # the chat of the latest one: where the sentence goes
    why: str = ""
    seconds: float = 0.0  # the longest bound spent

    def add(self, what: str, chat: int, why: str, seconds: float) -> None:
        self.what.append(what)
        self.chat, self.why = chat, why
        self.seconds = max(self.seconds, seconds)

    def sentence(self, session: str) -> str:
        return missed_sentence(session, self.what, self.seconds, self.why)
