"""bot.draft: the edit-in-place draft and the per-chat throttle."""
from __future__ import annotations

from bot.draft import Draft, Edit, Send, Throttle


def _drain(draft: Draft, ids: list[int]) -> list[object]:
    """Apply every action as if Telegram accepted it; return them."""
    actions: list[object] = []
    while (a := draft.next_action()) is not None:
        actions.append(a)
        draft.done(a, ids.pop(0) if isinstance(a, Send) else None)
        assert len(actions) < 100
    return actions


def test_first_delta_sends_then_edits() -> None:
    d = Draft()
    d.append("Hello")
    assert _drain(d, [10]) == [Send("Hello")]
    d.append(" world")
    assert _drain(d, []) == [Edit(10, "Hello world")]
    assert d.message_ids() == [10]


def test_never_an_identical_edit() -> None:
    d = Draft()
    d.append("Hi")
    _drain(d, [1])
    assert d.next_action() is None
    d.append("   ")  # Telegram trims: this would be "message is not modified"
    assert d.next_action() is None
    d.append("\n")
    assert d.next_action() is None


def test_whitespace_only_start_sends_nothing() -> None:
    d = Draft()
    d.append("\n ")
    assert d.next_action() is None
    d.append("x")
    assert d.next_action() == Send("\n x")


def test_rolls_over_before_the_limit() -> None:
    d = Draft(limit=100)
    d.append("word " * 30)  # 150 characters
    actions = _drain(d, [1, 2])
    assert isinstance(actions[0], Send) and len(actions[0].text) <= 100
    assert isinstance(actions[-1], Send)
    assert d.message_ids() == [1, 2]
    shown = "".join(s.shown for s in d.messages)
    assert shown == d.text
    d.append("more")
    assert _drain(d, []) == [Edit(2, d.text[d.messages[1].start:])]


def test_roll_over_finishes_the_full_message_first() -> None:
    d = Draft(limit=50)
    d.append("a" * 30)
    _drain(d, [1])
    d.append(" " + "b" * 40)
    # The full message already shows its part (Telegram trims the space): no edit, a new message.
    assert _drain(d, [2]) == [Send("b" * 40)]
    d.append("c" * 30)
    assert _drain(d, [3]) == [Edit(2, "b" * 40 + "c" * 10), Send("c" * 20)]


def test_lost_message_is_sent_again() -> None:
    d = Draft()
    d.append("abc")
    _drain(d, [5])
    d.lost()
    assert d.next_action() == Send("abc")


def test_throttle() -> None:
    t = Throttle(1.5)
    assert t.delay(100.0) == 0.0
    t.mark(100.0)
    assert t.delay(100.5) == 1.0
    assert t.delay(102.0) == 0.0
