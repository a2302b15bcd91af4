"""The lifeline's words: the bot's own last sentence, and the 'retrying since' line."""
from __future__ import annotations

import datetime

import pytest

from supervisor.lifeline import MAX_SENTENCE, last_sentence, retrying_line

TOKEN = "Telegram refused the bot token: check telegram.token, then restart."
LOG = "time=2026-01-01T00:00:00.000Z level=info program=bot logger=bot event=bot_started pid=1"


@pytest.mark.parametrize("tail,expected", [
    ("", ""),
    ("\n\n", ""),
    (TOKEN + "\n", TOKEN),
    (LOG + "\n" + TOKEN + "\n\n", TOKEN),
    (TOKEN + "\n" + LOG + "\n", ""),  # the last line is a log line: not a stop sentence
    ("Traceback (most recent call last):\n  File \"x\", line 1\nValueError: boom\n", ""),
    ("zmq.error.ZMQError: Address in use\n", ""),
    ("KeyboardInterrupt\n", ""),
    ("    indented continuation\n", ""),
    ("x" * (MAX_SENTENCE + 1) + "\n", ""),
    ("partial line without newline", "partial line without newline"),
])
def test_last_sentence(tail: str, expected: str) -> None:
    assert last_sentence(tail) == expected


@pytest.mark.parametrize("why,suffix", [("Telegram is down.", ": Telegram is down."), ("", "")])
def test_retrying_line(why: str, suffix: str) -> None:
    since = datetime.datetime(2026, 3, 4, 14, 2, 30).timestamp()
    assert retrying_line(since, why) == "retrying since 14:02" + suffix
