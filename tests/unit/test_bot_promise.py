"""bot.promise: the fallback ladder, the retry bound, and the sentence for what was missed."""
from __future__ import annotations

import pytest

from bot.promise import LADDER, Missed, Rung, missed_sentence, next_rung, retry_delay


@pytest.mark.parametrize(("refused", "then"), [
    (Rung.RICH, Rung.PLAIN),
    (Rung.PLAIN, Rung.FILE),
    (Rung.FILE, None),
])
def test_a_refused_rung_leads_to_the_next_one_until_the_file(refused: Rung,
                                                              then: Rung | None) -> None:
    assert next_rung(refused) is then


def test_the_ladder_starts_rich_and_ends_with_a_file() -> None:
    assert LADDER[0] is Rung.RICH and LADDER[-1] is Rung.FILE


@pytest.mark.parametrize(("attempt", "elapsed", "budget", "delay"), [
    (1, 0.0, 120.0, 0.5),  # first failure: a short wait
    (2, 0.5, 120.0, 1.0),  # doubling
    (3, 1.5, 120.0, 2.0),
    (6, 15.0, 120.0, 10.0),  # capped
    (40, 100.0, 120.0, 10.0),  # still capped, never growing past it
    (40, 115.0, 120.0, 5.0),  # the last wait is cut to the bound
    (40, 120.0, 120.0, None),  # the bound is spent: give up
    (2, 130.0, 120.0, None),
    (1, 0.0, 0.2, 0.2),  # a bound shorter than the first wait
])
def test_network_errors_are_retried_within_the_bound(attempt: int, elapsed: float,
                                                      budget: float, delay: float | None) -> None:
    assert retry_delay(attempt, elapsed, budget) == delay


def test_the_waits_of_a_long_outage_add_up_to_the_bound() -> None:
    elapsed, tries = 0.0, 0
    while (d := retry_delay(tries + 1, elapsed, 120.0)) is not None:
        tries += 1
        elapsed += d
    assert elapsed == pytest.approx(120.0)
    assert 12 < tries < 20  # a few quick tries, then every 10 s


def test_attempt_counts_from_one() -> None:
    with pytest.raises(ValueError):
        retry_delay(0, 0.0, 10.0)


@pytest.mark.parametrize(("what", "count"), [
    (["answer"], "1 message (answer)"),
    (["answer", "footer"], "2 messages (answer, footer)"),
    (["tool line", "tool line", "answer"], "3 messages (tool line, answer)"),
])
def test_the_missed_sentence_names_what_and_why(what: list[str], count: str) -> None:
    text = missed_sentence("api", what, 121.4, "Bad Gateway")
    assert text == (f"Session api: {count} could not be delivered because Telegram did not"
                    " answer for 121 s (Bad Gateway); ask the session again if you need them.")
    assert text.count(".") == 1  # one sentence


def test_missed_keeps_the_latest_chat_and_the_longest_wait() -> None:
    missed = Missed()
    missed.add("answer", 7, "Timed out", 120.0)
    missed.add("footer", 8, "Bad Gateway", 5.0)
    assert (missed.chat, missed.why, missed.seconds) == (8, "Bad Gateway", 120.0)
    assert "2 messages (answer, footer)" in missed.sentence("web")
