"""Streaming by edit-in-place: what to send or edit next, and when. Pure: no I/O, no clock.

A `Draft` holds the text streamed so far and the Telegram messages that show it. `next_action`
says what would make Telegram show the current text: send the first message, edit the current
one, or (when the current message would pass the limit) finish it and begin a new one. It never
proposes an edit that changes nothing, comparing texts the way Telegram does (trimmed).

A `Throttle` spaces the edits of one chat; the caller passes the time in.

The draft is plain text: Markdown is converted once, when the final text replaces the draft.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from bot.render import cut_ranges

# Roll over a bit before Telegram's 4096 so that a final edit never lands on a full message.
ROLL_AT = 4000


@dataclass(frozen=True)
class Send:
    text: str


@dataclass(frozen=True)
class Edit:
    message_id: int
    text: str


Action = Send | Edit


@dataclass
class Shown:
    """One message of the draft: where its text starts in the stream, and what it shows now."""

    start: int
    message_id: int | None = None
    shown: str = ""


@dataclass
class Draft:
    limit: int = ROLL_AT
    text: str = ""
    messages: list[Shown] = field(default_factory=lambda: [Shown(0)])

    def append(self, delta: str) -> None:
        self.text += delta

    @property
    def current(self) -> Shown:
        return self.messages[-1]

    def _target(self) -> tuple[str, bool]:
        """What the current message should show, and whether it is then full (roll over)."""
        seg = self.text[self.current.start:]
        ranges = cut_ranges(seg, (), self.limit)
        if len(ranges) <= 1:
            return seg, False
        return seg[: ranges[0][1]], True

    def next_action(self) -> Action | None:
        """The one call that brings Telegram closer to showing the whole text, or None."""
        while True:
            target, full = self._target()
            cur = self.current
            if target.strip() and target.strip() != cur.shown.strip():
                if cur.message_id is None:
                    return Send(target)
                return Edit(cur.message_id, target)
            if full and cur.message_id is not None:
                self.messages.append(Shown(cur.start + len(target)))
                continue
            return None

    def done(self, action: Action, message_id: int | None = None) -> None:
        """Telegram accepted `action` (for a Send, `message_id` is the new message's id)."""
        cur = self.current
        if isinstance(action, Send):
            cur.message_id = message_id
        cur.shown = action.text

    def lost(self) -> None:
        """The current message vanished (deleted by the user): show its text in a new one."""
        self.current.message_id = None
        self.current.shown = ""

    def message_ids(self) -> list[int]:
        return [s.message_id for s in self.messages if s.message_id is not None]

    @property
    def empty(self) -> bool:
        return not self.message_ids()


@dataclass
class Throttle:
    """At most one edit per `interval` seconds for one chat."""

    interval: float
    last: float | None = None

    def delay(self, now: float) -> float:
        if self.last is None:
            return 0.0
        return max(0.0, self.last + self.interval - now)

    def mark(self, now: float) -> None:
        self.last = now
