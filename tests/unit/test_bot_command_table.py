"""The chat command table: the menu and /help it makes, and the handler each entry names."""
from __future__ import annotations

import inspect

import pytest

from bot.command_table import HELP_INTRO, HELP_OUTRO, ChatCommand, help_text, menu, names
from bot.commands import CHAT_COMMANDS, HELP, Commands


async def _noop(owner: object, update: object, ctx: object) -> None:
    return None


@pytest.mark.timeout(5)
@pytest.mark.parametrize(("table", "help_lines", "menu_pairs", "all_names"), [
    ((), [], [], []),
    ((ChatCommand("x", _noop, "does x", "Do x"),), ["/x — does x"], [("x", "Do x")], ["x"]),
    ((ChatCommand("x", _noop, "does x", "Do x", "NAME [N]", aliases=("y",)),
      ChatCommand("z", _noop, "hidden", "Z", in_menu=False)),
     ["/x NAME [N] — does x", "/z — hidden"], [("x", "Do x")], ["x", "y", "z"]),
])
def test_table_to_help_and_menu(table: tuple[ChatCommand, ...], help_lines: list[str],
                                menu_pairs: list[tuple[str, str]], all_names: list[str]) -> None:
    assert help_text(table) == f"{HELP_INTRO}\n\n" + "\n".join(help_lines) + f"\n\n{HELP_OUTRO}"
    assert menu(table) == menu_pairs
    assert names(table) == all_names


@pytest.mark.timeout(5)
def test_the_bots_table() -> None:
    assert [n for n, _ in menu(CHAT_COMMANDS)] == [
        "new", "switch", "sessions", "projects", "status", "stop", "restart", "cancel", "persona",
        "remove", "permissions", "handoff", "cost", "get", "model", "context", "compact", "clear",
        "history", "help"]
    assert "start" in names(CHAT_COMMANDS)
    assert HELP.startswith("Switchboard runs your Claude Code sessions.\n\n/new NAME [PERSONA]"
                           " [@PROJECT] —")
    assert "\n/help — this list\n\nAnything else you write" in HELP
    # Telegram's rules for the menu: lowercase names up to 32, descriptions up to 256.
    for name, description in menu(CHAT_COMMANDS):
        assert name.islower() and len(name) <= 32 and 0 < len(description) <= 256
    assert len(set(names(CHAT_COMMANDS))) == len(names(CHAT_COMMANDS))
    for cmd in CHAT_COMMANDS:
        assert inspect.iscoroutinefunction(cmd.handler)
        assert getattr(Commands, cmd.handler.__name__) is cmd.handler
