"""The chat commands a session's worker answers itself: /model, /context, /compact, /clear and
/history (each a wire.messages.SessionCommand to the chat's active session), and the budget
button's tap.

Each handler takes the bot's `Commands` (bot.commands lists them in CHAT_COMMANDS) and says the
worker's answer, or one sentence when the session is not running or does not answer.
"""
from __future__ import annotations

import logging
from typing import Any, Protocol

from telegram import InlineKeyboardMarkup, Update

from bot.chat import ChatServer
from bot.journal import Journal
from bot.reply import NO_SESSION, chat_of
from wire import messages as m

log = logging.getLogger(__name__)

COMMAND_TIMEOUT = 30.0


class Host(Protocol):
    """What these handlers need of bot.commands.Commands."""

    journal: Journal
    chat: ChatServer

    async def say(self, chat_id: int, text: str, markup: InlineKeyboardMarkup | None = None,
                  *, monospace: bool = False) -> None: ...

    def here(self, update: Update) -> str | None: ...


async def ask(chat: ChatServer, session: str, verb: str, arg: str = "", chat_id: int = 0
              ) -> str:
    """The worker's answer to one SessionCommand, as the sentence the chat shows."""
    answer = await chat.request(session, m.SessionCommand(id=m.new_id(), verb=verb, arg=arg,
                                                          chat_id=chat_id), COMMAND_TIMEOUT)
    if answer is None:
        log.warning("event=session_command_unanswered session=%s verb=%s", session, verb)
        return (f"Session {session} did not answer within {COMMAND_TIMEOUT:.0f} s: try again,"
                f" or /restart {session}.")
    if isinstance(answer, m.Ok):
        result = answer.result
        return result.text if isinstance(result, m.CommandResult) else "Done."
    if answer.code == m.E_UNAVAILABLE:  # its worker is not connected
        return (f"Session {session} is not running: send it a message to start it, then try"
                " again.")
    return answer.message


async def _run(host: Host, update: Update, verb: str, arg: str = "") -> None:
    chat = chat_of(update)
    session = host.here(update)  # the topic's session, else the chat's active one
    if session is None:
        await host.say(chat, NO_SESSION)
        return
    await host.say(chat, await ask(host.chat, session, verb, arg, chat))


async def model(host: Host, update: Update, ctx: Any) -> None:
    args = list(ctx.args or [])
    if len(args) > 1:
        await host.say(chat_of(update), "Usage: /model [NAME], for example /model"
                       " claude-sonnet-4-5 (or /model default).")
        return
    await _run(host, update, "model", args[0] if args else "")


async def context(host: Host, update: Update, ctx: Any) -> None:
    await _run(host, update, "context")


async def compact(host: Host, update: Update, ctx: Any) -> None:
    await _run(host, update, "compact")


async def clear(host: Host, update: Update, ctx: Any) -> None:
    await _run(host, update, "clear")


async def history(host: Host, update: Update, ctx: Any) -> None:
    await _run(host, update, "history")
