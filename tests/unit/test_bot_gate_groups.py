"""bot.gate.group_action: which groups the bot stays in (pure, table-tested)."""
from __future__ import annotations

import pytest

from bot.gate import LEAVE, SAY_AND_LEAVE, STAY, group_action


@pytest.mark.parametrize("chat_type, allowed, groups, added, expected", [
    ("private", False, True, False, STAY),       # a stranger's own chat: the refusal, no leave
    ("private", True, False, False, STAY),       # groups off never touches private chats
    ("group", False, True, True, LEAVE),         # a stranger added the bot: out, silently
    ("supergroup", False, True, True, LEAVE),
    ("group", False, True, False, STAY),         # a stranger talking in the owner's group
    ("group", True, True, True, STAY),           # the owner added it: it stays
    ("group", True, True, False, STAY),
    ("group", True, False, False, SAY_AND_LEAVE),  # groups off: one sentence, then out
    ("supergroup", True, False, True, SAY_AND_LEAVE),
    ("group", False, False, True, LEAVE),        # a stranger is never told anything
    (None, True, False, False, STAY),
])
def test_group_action(chat_type: str | None, allowed: bool, groups: bool, added: bool,
                      expected: str) -> None:
    assert group_action(chat_type, allowed, groups, added) == expected
