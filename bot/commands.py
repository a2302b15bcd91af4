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

from bot import callbacks, meters, place, render
from bot import session_commands as sc
from bot.chat import ChatServer
from bot.command_table import ChatCommand, help_text
from bot.control import Refused, SupervisorClient
from bot.journal import Journal
from bot.live_status import LiveStatus
from bot.reply import NO_SESSION, chat_of
from bot.reply import say as reply
from bot.telegram_out import TelegramOut
from bot.topics import Topics
from wire import messages as m
from wire.names import BOT_PROGRAM, session_name_error

log = logging.getLogger(__name__)

Ctx = ContextTypes.DEFAULT_TYPE
# The worker answers a Cancel once the turn has ended: after its interrupt_timeout_seconds (10 s
# by default) it kills the CLI and waits a little more, so this leaves room for both.
CANCEL_TIMEOUT = 30.0
GRANTS_TIMEOUT = 10.0
HANDOFF_TIMEOUT = 60.0
GET_TIMEOUT = 10.0


def handoff_text(session: str) -> str:
    return (f"Session {session} is suspended. Continue it at a terminal with the command below;"
            f" while that claude runs, messages to {session} wait and are answered after it"
            " exits.")


@dataclass
class Commands:
    journal: Journal
    supervisor: SupervisorClient
    chat: ChatServer
    out: TelegramOut
    topics: Topics | None = None  # bot.topics: one topic per session where the chat has topics
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
        if self.topics is not None:
            where = self.topics.where(update)
            return (where.session, None) if where.session else (None, where.why)
        active = self.journal.active(chat_of(update))
        return (active, None) if active else (None, NO_SESSION)

    def here(self, update: Update) -> str | None:
        """The session a command without a name is about: the topic's, else the active one."""
        if self.topics is not None:
            return self.topics.where(update).session
        return self.journal.active(chat_of(update))

    async def _rows(self, chat: int) -> list[m.ProgramStatus] | None:
        try:
            return await self.supervisor.status()
        except Refused as exc:
            await self.say(chat, str(exc))
            return None

    # ----------------------------------------------------------------------- commands

    async def new(self, update: Update, ctx: Ctx) -> None:
        chat = chat_of(update)
        parsed = parse_new(ctx.args or [])
        if parsed is None:
            await self.say(chat, "Usage: /new NAME [PERSONA] [@PROJECT], for example /new api or"
                           " /new fix-login @web.")
            return
        name, persona, project = parsed
        if err := session_name_error(name):
            await self.say(chat, err)
            return
        try:
            await self.supervisor.call(m.NewSession(id=m.new_id(), name=name, persona=persona,
                                                    project=project), timeout=60.0)
        except Refused as exc:
            await self.say(chat, str(exc))
            return
        self.journal.set_active(chat, name)
        thread = None
        if self.topics is not None and update.effective_chat is not None \
                and self.topics.has_topics(update.effective_chat):
            thread = await self.topics.ensure(chat, name)
        if thread is None:
            await self.say(chat, f"Session {name} is ready and active: write to it.")
            return
        with place.in_thread(thread):
            await self.say(chat, f"Session {name} is ready: write here.")
        await self.say(chat, f"Session {name} is ready in its own topic: write there.")

    async def projects(self, update: Update, ctx: Ctx) -> None:
        chat = chat_of(update)
        try:
            result = await self.supervisor.call(m.ListProjects(id=m.new_id()))
        except Refused as exc:
            await self.say(chat, str(exc))
            return
        found = result.projects if isinstance(result, m.ProjectsResult) else []
        await self.say(chat, render.projects_text(found))

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
            await self.say(chat, "\n".join([render.status_table(rows),
                                            *meters.status_lines(rows)]), monospace=True)

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
        if kind is m.Stop and self.topics is not None:
            for name in targets:  # a stopped session's topic is closed; a message reopens it
                await self.topics.close(name)

    async def stop(self, update: Update, ctx: Ctx) -> None:
        await self._action(update, ctx, m.Stop, "stop")

    async def restart(self, update: Update, ctx: Ctx) -> None:
        await self._action(update, ctx, m.Restart, "restart")

    async def cancel(self, update: Update, ctx: Ctx) -> None:
        """Ask the worker to interrupt its turn, and say what it answered."""
        chat = chat_of(update)
        session = self.here(update)
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
        session = self.here(update)
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
                       " records of it (delivered answers, waiting messages, prompts). A"
                       " project's directory is never deleted, and its git worktree only when"
                       " nothing in it would be lost. This cannot be undone.",
                       callbacks.remove_confirm(name))

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

    async def handoff(self, update: Update, ctx: Ctx) -> None:
        """Suspend the session's CLI and give the command that continues it at a terminal."""
        chat = chat_of(update)
        session, err = self._target(update, ctx)
        if session is None:
            await self.say(chat, err or NO_SESSION)
            return
        try:
            result = await self.supervisor.call(m.Attach(id=m.new_id(), name=session),
                                                timeout=HANDOFF_TIMEOUT)
        except Refused as exc:
            await self.say(chat, str(exc))
            return
        if not isinstance(result, m.HandoffResult):
            await self.say(chat, "The supervisor gave an unexpected answer: try /handoff again.")
            return
        await self.say(chat, handoff_text(session))
        await self.say(chat, result.command, monospace=True)

    async def get(self, update: Update, ctx: Ctx) -> None:
        """A file of the active session's folders into the chat (the worker checks the path)."""
        chat = chat_of(update)
        msg = update.effective_message
        parts = (msg.text or "").split(maxsplit=1) if msg is not None else []
        path = parts[1].strip() if len(parts) > 1 else ""
        session = self.here(update)
        if not path:
            await self.say(chat, "Usage: /get PATH, relative to the session's working directory,"
                           " for example /get report.pdf.")
            return
        if session is None:
            await self.say(chat, NO_SESSION)
            return
        answer = await self.chat.request(session, m.GetFile(id=m.new_id(), path=path,
                                                            chat_id=chat), GET_TIMEOUT)
        if answer is None:
            await self.say(chat, f"Session {session} did not answer within {GET_TIMEOUT:.0f} s:"
                           " try /get again.")
        elif isinstance(answer, m.Error):
            await self.say(chat, f"Session {session} is not running: send it a message to start"
                           " it, then /get again." if answer.code == m.E_UNAVAILABLE
                           else answer.message)
        # Ok: the file itself follows, as the session's FileOut event.
    # The session's own commands: its worker answers them (bot.session_commands).
    async def model(self, update: Update, ctx: Ctx) -> None:
        await sc.model(self, update, ctx)

    async def context(self, update: Update, ctx: Ctx) -> None:
        await sc.context(self, update, ctx)

    async def compact(self, update: Update, ctx: Ctx) -> None:
        await sc.compact(self, update, ctx)

    async def clear(self, update: Update, ctx: Ctx) -> None:
        await sc.clear(self, update, ctx)

    async def history(self, update: Update, ctx: Ctx) -> None:
        await sc.history(self, update, ctx)

    async def help(self, update: Update, ctx: Ctx) -> None:
        await self.say(chat_of(update), HELP)

    async def unknown(self, update: Update, ctx: Ctx) -> None:
        msg = update.effective_message
        word = (msg.text or "").split()[0] if msg and msg.text else "that"
        await self.say(chat_of(update), f"Unknown command {word[:40]}: /help lists the"
                       " commands.")


def parse_new(args: list[str]) -> tuple[str, str | None, str | None] | None:
    """/new's arguments: (name, persona, project) from `NAME [PERSONA] [@PROJECT]` (the two
    optional ones in either order), or None when they do not fit."""
    if not args or len(args) > 3:
        return None
    name, rest = args[0], args[1:]
    projects = [a[1:] for a in rest if a.startswith("@")]
    personas = [a for a in rest if not a.startswith("@")]
    if len(projects) > 1 or len(personas) > 1 or any(not p for p in projects):
        return None
    return name, (personas[0] if personas else None), (projects[0] if projects else None)


# Every chat command, in the order of the menu and of /help. README.md's Commands section lists
# the same names (tests/unit/test_command_docs.py checks it).
CHAT_COMMANDS: tuple[ChatCommand, ...] = (
    ChatCommand("new", Commands.new, "create a session and switch to it (in a project with"
                " @PROJECT)", "Create a session and switch to it: /new NAME [PERSONA] [@PROJECT]",
                "NAME [PERSONA] [@PROJECT]"),
    ChatCommand("switch", Commands.switch, "make a session the active one",
                "Switch the active session", "[NAME]"),
    ChatCommand("sessions", Commands.sessions,
                "every session with state, persona, idle time and cost",
                "List sessions with state, persona, idle time, cost"),
    ChatCommand("projects", Commands.projects, "the configured projects and their sessions",
                "List projects and their sessions"),
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
    ChatCommand("handoff", Commands.handoff,
                "suspend a session and get the command that continues it at a terminal",
                "Continue a session at a terminal", "[NAME]"),
    ChatCommand("cost", Commands.cost, "what each session has cost", "Cost per session"),
    ChatCommand("get", Commands.get,
                "a file of the active session's working directory, sent to this chat",
                "Get a file from the session: /get PATH", "PATH"),
    ChatCommand("model", Commands.model, "show or change the active session's model (default: the"
                " persona's); it survives restarts", "Show or change the model", "[NAME]"),
    ChatCommand("context", Commands.context, "how full the active session's context is",
                "Context usage"),
    ChatCommand("compact", Commands.compact, "compact the active session's conversation",
                "Compact the conversation"),
    ChatCommand("clear", Commands.clear,
                "start a fresh conversation (the old one stays in /history)",
                "Start a fresh conversation"),
    ChatCommand("history", Commands.history,
                "the active session's earlier conversations (Claude session ids with dates)",
                "Earlier conversations"),
    ChatCommand("help", Commands.help, "this list", "What this bot can do", aliases=("start",)),
)
HELP = help_text(CHAT_COMMANDS)
