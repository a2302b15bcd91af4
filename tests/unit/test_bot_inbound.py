"""Which sentence a kind of message a session cannot take gets (bot/inbound.py's table)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from bot.inbound import UNSUPPORTED, unsupported_sentence


@pytest.mark.timeout(5)
@pytest.mark.parametrize(("fields", "expected"), [
    ({"voice": object()}, None),  # transcribed (bot.voice), or the sentence that enables it
    ({"video_note": object()}, "Video notes are not supported yet: send text."),
    ({"sticker": object()}, "Stickers are not supported: send text."),
    ({"location": object()}, "Locations are not supported: send the place as text."),
    ({"venue": object(), "location": object()}, "Venues are not supported: send the address as"
     " text."),
    ({"poll": object()}, "Polls are not supported: send the question as text."),
    ({"text": "hi"}, None),
])
def test_each_kind_gets_its_sentence(fields: dict[str, object], expected: str | None) -> None:
    assert unsupported_sentence(SimpleNamespace(**fields)) == expected  # type: ignore[arg-type]


@pytest.mark.timeout(5)
def test_every_sentence_is_one_sentence_that_says_what_to_send() -> None:
    for _attr, sentence in UNSUPPORTED:
        assert sentence.endswith(".") and sentence.count(".") == 1 and "send" in sentence
