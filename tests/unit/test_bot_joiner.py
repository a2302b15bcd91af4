"""bot.joiner: the parts of an album, and of a paste Telegram split, become one turn; the rest go
as they are. Each case a row: the waiting hand-offs, the clock, what is sent or how long to wait.
"""
from __future__ import annotations

import pytest

from bot.joiner import LONG, merge, plan, tag
from bot.journal import Handoff

pytestmark = pytest.mark.timeout(5)
LONGTEXT = "L" * LONG


def h(n: int, created: float, text: str = "t", joins: str | None = None, chat: int = 1,
      images: list[str] | None = None) -> Handoff:
    return Handoff(f"tg:{chat}:{n}", "s", chat, text, n, list(images or []), created,
                   list(images or []), tag(text, None) if joins is None else joins)


@pytest.mark.parametrize(("text", "group", "want"), [
    ("hi", None, "text"),
    (LONGTEXT, None, "long"),
    ("L" * (LONG - 1), None, "text"),
    (None, None, ""),  # a document with no album
    (None, "g1", "album:g1"),
    ("caption", "g1", "album:g1"),
])
def test_tag(text: str | None, group: str | None, want: str) -> None:
    assert tag(text, group) == want


@pytest.mark.parametrize(("pending", "now", "want"), [
    # A plain message goes at once, whatever follows it.
    ([h(1, 0.0), h(2, 0.1)], 0.0, [1]),
    # A lone photo (no album) at once.
    ([h(1, 0.0, joins="")], 0.0, [1]),
    # An album: wait until a second after its newest part, then all its parts.
    ([h(1, 0.0, joins="album:a"), h(2, 0.3, joins="album:a")], 0.5, 0.8),
    ([h(1, 0.0, joins="album:a"), h(2, 0.3, joins="album:a")], 1.3, [1, 2]),
    # ...only consecutive parts of that album, from that chat.
    ([h(1, 0.0, joins="album:a"), h(2, 0.1, joins="album:b"), h(3, 0.2, joins="album:a")],
     5.0, [1]),
    ([h(1, 0.0, joins="album:a"), h(2, 0.1, joins="album:a", chat=2)], 5.0, [1]),
    # A long text waits for its next part; a part in time joins it.
    ([h(1, 0.0, LONGTEXT)], 0.4, 0.6),
    ([h(1, 0.0, LONGTEXT)], 1.0, [1]),
    ([h(1, 0.0, LONGTEXT), h(2, 0.5, "tail")], 0.6, [1, 2]),
    # Three parts: the second is long too, so the window runs on from it.
    ([h(1, 0.0, LONGTEXT), h(2, 0.5, LONGTEXT)], 1.2, 0.3),
    ([h(1, 0.0, LONGTEXT), h(2, 0.5, LONGTEXT), h(3, 0.9, "end")], 1.2, [1, 2, 3]),
    # A short text ends the paste: what follows is its own turn.
    ([h(1, 0.0, LONGTEXT), h(2, 0.5, "tail"), h(3, 0.6, "more")], 2.0, [1, 2]),
    # Too late, another chat, or a photo: not a part of the paste.
    ([h(1, 0.0, LONGTEXT), h(2, 1.5, "late")], 2.0, [1]),
    ([h(1, 0.0, LONGTEXT), h(2, 0.2, "other", chat=2)], 2.0, [1]),
    ([h(1, 0.0, LONGTEXT), h(2, 0.2, "", joins="album:x")], 2.0, [1]),
])
def test_plan(pending: list[Handoff], now: float, want: list[int] | float) -> None:
    got = plan(pending, now)
    if isinstance(want, float):
        assert isinstance(got, float) and got == pytest.approx(want)
    else:
        assert isinstance(got, list) and [p.message_id for p in got] == want


def test_a_restart_inside_the_window_joins_the_same_rows() -> None:
    # The rows keep their times in bot.db: the restarted courier finds the same group.
    rows = [h(1, 100.0, LONGTEXT), h(2, 100.4, "tail")]
    assert plan(rows, 100.5) == plan(rows, 900.0) == rows


def test_merge() -> None:
    album = merge([h(1, 0, "look\n\n[photo 1]", "album:a", images=["/u/1.jpg"]),
                   h(2, 0, "[photo 2]", "album:a", images=["/u/2.jpg"])])
    assert (album.key, album.message_id) == ("tg:1:1", 1)
    assert album.text == "look\n\n[photo 1]\n\n[photo 2]"
    assert album.images == ["/u/1.jpg", "/u/2.jpg"] == album.attachments
    paste = merge([h(1, 0, LONGTEXT), h(2, 0, "tail")])
    assert paste.text == LONGTEXT + "\ntail" and paste.key == "tg:1:1"
    one = h(3, 0)
    assert merge([one]) is one


def test_an_album_waits_for_a_part_still_being_fetched_but_not_forever() -> None:
    rows = [h(1, 0.0, joins="album:a")]
    assert plan(rows, 2.0, coming=lambda first: True) == pytest.approx(0.25)
    assert plan(rows, 2.0, coming=lambda first: False) == rows
    assert plan(rows, 61.0, coming=lambda first: True) == rows  # a stuck handler: go without it
