"""README.md's Commands section lists exactly the commands the tables declare.

Chat commands are the backticked `/name ...` spans of the section; switchboardctl commands are
the backticked usages that open each bullet of its list. Aliases (like /start) may be mentioned
but need not be: Telegram sends /start on its own, and /help is what the user is told about.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.command_table import names
from bot.commands import CHAT_COMMANDS
from supervisor.ctl import COMMANDS as CTL_COMMANDS

README = Path(__file__).resolve().parents[2] / "README.md"


def commands_section(text: str) -> str:
    found = re.search(r"^## Commands\n(.*?)(?=^## )", text, re.S | re.M)
    assert found, "README.md has no '## Commands' section"
    return found.group(1)


def chat_names(section: str) -> set[str]:
    return {m.group(1) for m in re.finditer(r"`/([a-z0-9_]+)[^`]*`", section)}


def ctl_names(section: str) -> set[str]:
    """The first word of every backticked usage at the start of a bullet (before its colon)."""
    out: set[str] = set()
    for bullet in re.findall(r"^- (.*?):", section, re.M):
        out.update(m.group(1) for m in re.finditer(r"`([a-z]+)[^`]*`", bullet))
    return out


@pytest.mark.timeout(5)
@pytest.mark.parametrize(("section", "chat", "ctl"), [
    ("In the chat: `/new NAME`, `/help` (`/start` too).\n\n- `status [-l]`: rows with `x`\n"
     "- `start NAME`, `stop NAME`: go\n", {"new", "help", "start"}, {"status", "start", "stop"}),
    ("Nothing here.\n", set(), set()),
])
def test_the_section_parsers(section: str, chat: set[str], ctl: set[str]) -> None:
    assert (chat_names(section), ctl_names(section)) == (chat, ctl)


@pytest.mark.timeout(5)
def test_readme_lists_every_chat_command_and_nothing_else() -> None:
    listed = chat_names(commands_section(README.read_text()))
    primary = {c.name for c in CHAT_COMMANDS}
    assert primary - listed == set(), "chat commands missing from README.md's Commands section"
    assert listed - set(names(CHAT_COMMANDS)) == set(), "README.md lists unknown chat commands"


@pytest.mark.timeout(5)
def test_readme_lists_every_switchboardctl_command_and_nothing_else() -> None:
    listed = ctl_names(commands_section(README.read_text()))
    declared = {c.name for c in CTL_COMMANDS}
    assert declared - listed == set(), "switchboardctl commands missing from README.md"
    assert listed - declared == set(), "README.md lists unknown switchboardctl commands"
