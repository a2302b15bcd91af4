"""The chat commands: one short handler each, and `CHAT_COMMANDS`, the one table that declares them.

From the table come the CommandHandlers (bot.app), Telegram's command menu and the /help text
(bot.command_table). Adding a command is one entry there plus its handler here. Handlers only
ever run for allowed users (bot.gate stops everyone else first). Each answers in one message;
anything that fails comes back as one sentence that says what to do.

From the chat, `all` means every session and never the bot: the bot must not stop or restart
itself from inside its own handler (the update would never be marked done and would run again
at every start), so `/stop bot` and `/restart bot` get a sentence that points to the host.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from telegram import InlineKeyboardMarkup, Update
from telegram.ext import ContextTypes

from bot import callbacks, render
from bot.chat import ChatServer
from bot.command_table import ChatCommand, help_text
from bot.control import Refused, SupervisorClient
from bot.journal import Journal
from bot.live_status import LiveStatus
from bot.reply import NO_SESSION, chat_of
from bot.reply import say as reply
from bot.telegram_out import TelegramOut
from wire import messages as m
from wire.names import BOT_PROGRAM, session_name_error

log = logging.getLogger(__name__)

Ctx = ContextTypes.DEFAULT_TYPE
# The worker answers a Cancel once the turn has ended: after its interrupt_timeout_seconds (10 s
# by default) it kills the CLI and waits a little more, so this leaves room for both.
CANCEL_TIMEOUT = 30.0
GRANTS_TIMEOUT = 10.0


@dataclass
class Commands:
    journal: Journal
    supervisor: SupervisorClient
    chat: ChatServer
    out: TelegramOut
    live: LiveStatus | None = None  # the pinned live status (/status)

    # ----------------------------------------------------------------------- helpers

    async def say(self, chat_id: int, text: str, markup: InlineKeyboardMarkup | None = None,
                  *, monospace: bool = False) -> None:
        await reply(self.out, chat_id, text, markup, monospace=monospace)

    def _target(self, update: Update, ctx: Ctx) -> tuple[str | None, str | None]:
        """(session, error sentence) from the first argument, else the chat's active session."""
        if ctx.args:
            name = ctx.args[0]
            return (None, session_name_error(name)) if session_name_error(name) else (name, None)
        active = self.journal.active(chat_of(update))
        return (active, None) if active else (None, NO_SESSION)

    async def _rows(self, chat: int) -> list[m.ProgramStatus] | None:
        try:
            return await self.supervisor.status()
        except Refused as exc:
            await self.say(chat, str(exc))
            return None

    # ----------------------------------------------------------------------- commands

    async def new(self, update: Update, ctx: Ctx) -> None:
        chat = chat_of(update)
        if not ctx.args or len(ctx.args) > 2:
            await self.say(chat, "Usage: /new NAME [PERSONA], for example /new api.")
            return
        name = ctx.args[0]
        if err := session_name_error(name):
            await self.say(chat, err)
            return
        persona = ctx.args[1] if len(ctx.args) > 1 else None
        try:
            await self.supervisor.call(m.NewSession(id=m.new_id(), name=name, persona=persona),
                                       timeout=30.0)
        except Refused as exc:
            await self.say(chat, str(exc))
            return
        self.journal.set_active(chat, name)
        await self.say(chat, f"Session {name} is ready and active: write to it.")

    async def switch(self, update: Update, ctx: Ctx) -> None:
        chat = chat_of(update)
        rows = await self._rows(chat)
        if rows is None:
            return
        names = [render.session_name(r) for r in render.session_rows(rows)]
        if not ctx.args:
            if not names:
                await self.say(chat, "No sessions yet: create one with /new NAME.")
                return
            active = self.journal.active(chat)
            await self.say(chat, f"Active: {active or 'none'}. Switch to:",
                           callbacks.switch_picker(names))
            return
        name = ctx.args[0]
        if err := session_name_error(name):
            await self.say(chat, err)
            return
        if name not in names:
            await self.say(chat, f"There is no session {name}: /sessions lists them, /new {name}"
                           " creates it.")
            return
        self.journal.set_active(chat, name)
        if self.live is not None:
            self.live.poke()  # the live status marks the new active session
        await self.say(chat, f"Active session: {name}.")

    async def sessions(self, update: Update, ctx: Ctx) -> None:
        chat = chat_of(update)
        if (rows := await self._rows(chat)) is not None:
            await self.say(chat, render.sessions_text(rows, self.journal.active(chat)))

    async def status(self, update: Update, ctx: Ctx) -> None:
        """The live status, brought to the bottom of the chat (bot.live_status); without one,
        the supervisor's table."""
        chat = chat_of(update)
        if self.live is not None:
            if (err := await self.live.bring_up(chat)) is not None:
                await self.say(chat, err)
            return
        if (rows := await self._rows(chat)) is not None:
            await self.say(chat, render.status_table(rows), monospace=True)

    async def cost(self, update: Update, ctx: Ctx) -> None:
        chat = chat_of(update)
        if (rows := await self._rows(chat)) is not None:
            await self.say(chat, render.cost_text(rows))

    async def _action(self, update: Update, ctx: Ctx, kind: type[m.Stop | m.Restart],
                      verb: str) -> None:
        chat = chat_of(update)
        first = ctx.args[0] if ctx.args else None
        if first == BOT_PROGRAM:
            await self.say(chat, f"The bot cannot {verb} itself from the chat: run"
                           f" `switchboardctl {verb} bot` on the host.")
            return
        if first == "all":
            rows = await self._rows(chat)
            if rows is None:
                return
            targets = [r.name for r in rows if r.name != BOT_PROGRAM]
            if not targets:
                await self.say(chat, f"There are no sessions to {verb}: create one with /new"
                               " NAME.")
                return
        else:
            session, err = self._target(update, ctx)
            if session is None:
                await self.say(chat, err or NO_SESSION)
                return
            targets = [session]
        try:
            result = await self.supervisor.call(kind(id=m.new_id(), names=targets),
                                                timeout=60.0 + 5.0 * len(targets))
        except Refused as exc:
            await self.say(chat, str(exc))
            return
        if isinstance(result, m.ActionResult):
            await self.say(chat, render.results_text(verb, result.results))
        else:
            await self.say(chat, f"{', '.join(targets)}: {verb} done.")

    async def stop(self, update: Update, ctx: Ctx) -> None:
        await self._action(update, ctx, m.Stop, "stop")

    async def restart(self, update: Update, ctx: Ctx) -> None:
        await self._action(update, ctx, m.Restart, "restart")

    async def cancel(self, update: Update, ctx: Ctx) -> None:
        """Ask the worker to interrupt its turn, and say what it answered."""
        chat = chat_of(update)
        session = self.journal.active(chat)
        if session is None:
            await self.say(chat, NO_SESSION)
            return
        answer = await self.chat.request(session, m.Cancel(id=m.new_id()), CANCEL_TIMEOUT)
        if answer is None:
            log.warning("event=cancel_unanswered session=%s", session)
            await self.say(chat, f"Session {session} did not answer the cancel within"
                           f" {CANCEL_TIMEOUT:.0f} s: try /cancel again, or /restart {session}.")
        elif isinstance(answer, m.Ok):
            await self.say(chat, f"Interrupting the running turn of {session}.")
        elif answer.code == m.E_UNAVAILABLE:
            await self.say(chat, f"Session {session} is not running: there is nothing to cancel.")
        else:
            await self.say(chat, answer.message)

    async def persona(self, update: Update, ctx: Ctx) -> None:
        chat = chat_of(update)
        session = self.journal.active(chat)
        try:
            if not ctx.args:
                result = await self.supervisor.call(m.ListPersonas(id=m.new_id()))
                names = result.personas if isinstance(result, m.PersonasResult) else []
                current = None
                if session is not None:
                    rows = await self.supervisor.status()
                    current = next((r.persona for r in rows if r.name == f"session:{session}"),
                                   None)
                lines = [f"{'▶' if p.name == current else '•'} {p.name}"
                         + (f" — {p.description}" if p.description else "") for p in names]
                lines.append("Change it with /persona NAME.")
                await self.say(chat, "\n".join(lines))
                return
            if session is None:
                await self.say(chat, NO_SESSION)
                return
            name = ctx.args[0]
            await self.supervisor.call(
                m.SetPersona(id=m.new_id(), name=session, persona=name), timeout=60.0)
        except Refused as exc:
            await self.say(chat, str(exc))
            return
        await self.say(chat, f"Session {session} now uses the persona {name}.")

    async def remove(self, update: Update, ctx: Ctx) -> None:
        chat = chat_of(update)
        if not ctx.args:
            await self.say(chat, "Usage: /remove NAME.")
            return
        name = ctx.args[0]
        if err := session_name_error(name):
            await self.say(chat, err)
            return
        await self.say(chat, f"Remove session {name}? This deletes its conversation history and"
                       " queued messages (session.db), its metadata (metadata.json), its work"
                       f" folder sessions/{name}/work with every file in it, and the bot's"
                       " records of it (delivered answers, waiting messages, prompts). This"
                       " cannot be undone.", callbacks.remove_confirm(name))

    async def permissions(self, update: Update, ctx: Ctx) -> None:
        """The session's "allow for this session" grants, each with a button to revoke it."""
        chat = chat_of(update)
        session, err = self._target(update, ctx)
        if session is None:
            await self.say(chat, err or NO_SESSION)
            return
        answer = await self.chat.request(session, m.ListGrants(id=m.new_id()), GRANTS_TIMEOUT)
        if answer is None:
            await self.say(chat, f"Session {session} did not answer within"
                           f" {GRANTS_TIMEOUT:.0f} s: try /permissions again.")
            return
        if isinstance(answer, m.Error):
            await self.say(chat, f"Session {session} is not running: send it a message to"
                           " start it, then /permissions again." if answer.code == m.E_UNAVAILABLE
                           else answer.message)
            return
        grants = answer.result.grants if isinstance(answer.result, m.GrantsResult) else []
        if not grants:
            await self.say(chat, f"Session {session} has no grants: every tool use it asks for"
                           " needs your approval.")
            return
        lines = [f"Session {session} may, without asking:"]
        lines += [f"• {g.label} ({g.rule})" for g in grants]
        await self.say(chat, "\n".join(lines),
                       callbacks.revoke_buttons(session, [(g.id, g.label) for g in grants]))

    async def help(self, update: Update, ctx: Ctx) -> None:
        await self.say(chat_of(update), HELP)

    async def unknown(self, update: Update, ctx: Ctx) -> None:
        msg = update.effective_message
        word = (msg.text or "").split()[0] if msg and msg.text else "that"
        await self.say(chat_of(update), f"Unknown command {word[:40]}: /help lists the"
                       " commands.")


# Every chat command, in the order of the menu and of /help. README.md's Commands section lists
# the same names (tests/unit/test_command_docs.py checks it).
CHAT_COMMANDS: tuple[ChatCommand, ...] = (
    ChatCommand("new", Commands.new, "create a session and switch to it",
                "Create a session and switch to it: /new NAME [PERSONA]", "NAME [PERSONA]"),
    ChatCommand("switch", Commands.switch, "make a session the active one",
                "Switch the active session", "[NAME]"),
    ChatCommand("sessions", Commands.sessions,
                "every session with state, persona, idle time and cost",
                "List sessions with state, persona, idle time, cost"),
    ChatCommand("status", Commands.status,
                "every session live, in one pinned message (brought to the bottom)",
                "Live status of every session"),
    ChatCommand("stop", Commands.stop,
                "stop a session (the active one by default, every session with all); its"
                " running turn is cancelled and offered for Retry", "Stop a session",
                "[NAME|all]"),
    ChatCommand("restart", Commands.restart, "restart a session (every session with all)",
                "Restart a session", "[NAME|all]"),
    ChatCommand("cancel", Commands.cancel, "interrupt the running turn",
                "Interrupt the running turn"),
    ChatCommand("persona", Commands.persona, "show or change the active session's persona",
                "Show or change the persona", "[NAME]"),
    ChatCommand("remove", Commands.remove,
                "delete a session with its history and work folder (asks first)",
                "Remove a session", "NAME"),
    ChatCommand("permissions", Commands.permissions,
                "what a session may do without asking, with buttons to revoke",
                "List and revoke a session's grants", "[NAME]"),
    ChatCommand("cost", Commands.cost, "what each session has cost", "Cost per session"),
    ChatCommand("help", Commands.help, "this list", "What this bot can do", aliases=("start",)),
)
HELP = help_text(CHAT_COMMANDS)
