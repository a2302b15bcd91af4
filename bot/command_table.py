"""What a chat command is, and what is made from the table of them: the menu and /help.

The table itself (`bot.commands.CHAT_COMMANDS`) sits next to the handlers it names; this module
only knows the shape of an entry and turns a table into Telegram's command menu
(setMyCommands) and the /help text. Pure: no I/O, no handler is ever called here.
"""
from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from telegram import Update

HELP_INTRO = "Switchboard runs your Claude Code sessions."
HELP_OUTRO = ("Anything else you write goes to the active session (with topics: to the topic's"
              " session; a reply: to the session whose message it answers); photos and files"
              " are saved in its work folder, voice notes are transcribed.")

# An unbound handler method: (the handlers' object, the update, PTB's context).
Handler = Callable[[Any, Update, Any], Coroutine[Any, Any, None]]


@dataclass(frozen=True)
class ChatCommand:
    """One chat command: `/name args — help` in /help, `menu` in Telegram's command menu."""

    name: str
    handler: Handler
    help: str
    menu: str
    args: str = ""
    in_menu: bool = True
    aliases: tuple[str, ...] = ()  # also answer to these (e.g. /start), listed nowhere

    @property
    def usage(self) -> str:
        return f"/{self.name} {self.args}".rstrip()


def help_text(commands: Sequence[ChatCommand]) -> str:
    lines = "\n".join(f"{c.usage} — {c.help}" for c in commands)
    return f"{HELP_INTRO}\n\n{lines}\n\n{HELP_OUTRO}"


def menu(commands: Sequence[ChatCommand]) -> list[tuple[str, str]]:
    """(command, description) pairs for setMyCommands, in table order."""
    return [(c.name, c.menu) for c in commands if c.in_menu]


def names(commands: Sequence[ChatCommand]) -> list[str]:
    """Every name a command answers to, aliases included (one CommandHandler each)."""
    return [n for c in commands for n in (c.name, *c.aliases)]
