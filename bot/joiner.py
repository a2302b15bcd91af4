"""Which waiting hand-offs go to the worker as one turn: an album, or a long paste Telegram split.

Telegram delivers each photo of an album as its own message (one `media_group_id` for all), and
splits a text over 4096 characters into several messages that arrive within about a second. Both
are one thing the user sent, so they become one turn. Every part is a hand-off in bot.db before
its update is confirmed (bot.inbound), and the joining happens here, at the courier, when the
parts are read back from bot.db: a bot that crashes inside the window finds the same rows with
the same times after its restart and joins them the same way, and a part that only arrives
later goes as a turn of its own. Nothing is held only in memory.

`tag` marks a hand-off as it is written; `plan` looks at a session's waiting hand-offs (oldest
first) and says either which ones to send now as one turn or how long to wait for more;
`merge` makes the one turn. Pure: no I/O, the clock is an argument.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from bot.journal import Handoff

WINDOW = 1.0  # seconds after the newest part that a next part may still arrive
# How long an album waits for a part whose update is still being handled (its photo still
# downloading) before it goes without it.
ALBUM_MAX_WAIT = 60.0
LONG = 3500  # a text this long may be the first part of a split paste (Telegram cuts at 4096)
ALBUM = "album:"
TEXT = "text"
LONG_TEXT = "long"


def tag(text: str | None, media_group_id: str | None) -> str:
    """What a new hand-off may be joined with (Handoff.joins)."""
    if media_group_id:
        return ALBUM + media_group_id
    if text is None:
        return ""
    return LONG_TEXT if len(text) >= LONG else TEXT


def plan(pending: list[Handoff], now: float, window: float = WINDOW,
         coming: Callable[[Handoff], bool] = lambda h: False) -> list[Handoff] | float:
    """The hand-offs to send now as one turn (the oldest first), or the seconds to wait before
    asking again, because a part may still be on its way. `coming(first part)`: whether another
    part of its album is still being handled (journaled, its photo not saved yet)."""
    first = pending[0]
    group = [first]
    if first.joins.startswith(ALBUM):
        for h in pending[1:]:
            if h.joins != first.joins or h.chat_id != first.chat_id:
                break
            group.append(h)
        newest = max(h.created for h in group)
        if now < newest + window:
            return newest + window - now
        if now < newest + ALBUM_MAX_WAIT and coming(first):
            return window / 4
        return group
    if first.joins == LONG_TEXT:
        for h in pending[1:]:
            prev = group[-1]
            if (prev.joins != LONG_TEXT or h.chat_id != first.chat_id
                    or h.joins not in (TEXT, LONG_TEXT) or h.created - prev.created > window):
                break
            group.append(h)
        last = group[-1]
        if last.joins == LONG_TEXT and now < last.created + window:
            return last.created + window - now
    return group


def merge(parts: list[Handoff]) -> Handoff:
    """One turn of the parts: the first one's key and message, every text, file and photo."""
    first = parts[0]
    if len(parts) == 1:
        return first
    album = first.joins.startswith(ALBUM)
    texts = [p.text for p in parts if p.text]
    return replace(
        first,
        text=("\n\n" if album else "\n").join(texts),
        attachments=[a for p in parts for a in p.attachments],
        images=[i for p in parts for i in p.images],
        joins="",
    )
