"""The chat commands a worker carries out on its own session (wire.messages.SessionCommand).

- `model [NAME|default]`: show the model, or switch the warm CLI with the CLI's `set_model`
  control request and keep the choice, so a resumed or restarted CLI starts with `--model`;
- `context`: the CLI's `get_context_usage` control request, in a few lines;
- `compact`: the CLI's own `/compact`, sent as a turn (it queues behind the running one);
- `clear`: a fresh conversation (the old Claude session id goes to the history);
- `history`: the session's earlier Claude session ids, with dates;
- `raise_budget session|day`: raise today's budget so the waiting message runs.

Each answers `Ok(CommandResult)` or `Error` with one sentence naming the fix. It must never
start a second CLI (only cli_lifecycle starts one) and never clear a running conversation.
"""
from __future__ import annotations

import asyncio
import logging
import re

from session_worker import meter, stream_json
from session_worker.cli_lifecycle import CliLifecycle
from session_worker.ledger import Ledger
from session_worker.router import ControlWaiters
from session_worker.state import SessionState
from session_worker.store import Store
from session_worker.translate import ControlReply, Translator
from session_worker.turns import TurnRunner
from wire import messages as m
from wire.settings import WorkerSettings

log = logging.getLogger(__name__)

CONTROL_TIMEOUT = 15.0
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\[\]@-]{0,99}")
VERBS = ("model", "context", "compact", "clear", "history", "raise_budget")


class SessionCommands:
    def __init__(self, settings: WorkerSettings, store: Store, state: SessionState,
                 translator: Translator, cli: CliLifecycle, waiters: ControlWaiters,
                 turns: TurnRunner, ledger: Ledger) -> None:
        self.s = settings
        self._store = store
        self._state = state
        self._translator = translator
        self._cli = cli
        self._waiters = waiters
        self._turns = turns
        self._ledger = ledger

    @property
    def name(self) -> str:
        return self.s.session

    def model(self) -> str:
        """The model the session uses: /model's choice, else what the CLI said, else the
        persona's ("" when nothing is known yet)."""
        return (self._state.model_override or self._translator.model
                or self.s.persona.model or "")

    async def run(self, msg: m.SessionCommand) -> m.Ok | m.Error:
        verb = msg.verb
        log.info("event=session_command verb=%s arg=%r", verb, msg.arg[:100])
        if verb == "model":
            return await self._model(msg)
        if verb == "context":
            return await self._context(msg)
        if verb == "compact":
            return self._compact(msg)
        if verb == "clear":
            return await self._clear(msg)
        if verb == "history":
            return self._ok(msg, self._history_text())
        if verb == "raise_budget":
            return self._raise(msg)
        return self._error(msg, m.E_BAD_REQUEST, f"Unknown session command {verb[:40]!r}:"
                           f" the worker knows {', '.join(VERBS)}.")

    # ------------------------------------------------------------------- helpers

    @staticmethod
    def _ok(msg: m.SessionCommand, text: str) -> m.Ok:
        return m.Ok(id=msg.id, result=m.CommandResult(text=text))

    @staticmethod
    def _error(msg: m.SessionCommand, code: str, sentence: str) -> m.Error:
        return m.Error(id=msg.id, code=code, message=sentence)

    async def _control(self, request: dict[str, object]) -> ControlReply | None:
        """One control request to the warm CLI and its answer (None: no CLI, or no answer)."""
        if self._cli.warm is None:
            return None
        rid = m.new_id()
        fut = self._waiters.expect(rid)
        if not await self._cli.write(stream_json.control_line(rid, request)):
            self._waiters.forget(rid)
            return None
        await asyncio.wait([fut], timeout=CONTROL_TIMEOUT)
        self._waiters.forget(rid)
        if not fut.done() or fut.cancelled():
            log.warning("event=control_unanswered subtype=%s", request.get("subtype"))
            return None
        return fut.result()

    # ------------------------------------------------------------------- verbs

    async def _model(self, msg: m.SessionCommand) -> m.Ok | m.Error:
        arg = msg.arg.strip()
        if not arg:
            now = self.model() or "the CLI's default model"
            how = ("chosen with /model" if self._state.model_override
                   else "the persona's" if self.s.persona.model else "the default")
            return self._ok(msg, f"Session {self.name} uses {now} ({how}). Change it with"
                            " /model NAME; /model default goes back to the persona's.")
        if not MODEL_NAME.fullmatch(arg):
            return self._error(msg, m.E_BAD_REQUEST, f"{arg[:40]!r} is not a model name: use"
                               " one such as claude-sonnet-4-5, or /model default.")
        override = "" if arg == "default" else arg
        wanted = override or self.s.persona.model or "default"
        shown = wanted
        if self._cli.warm is not None:
            reply = await self._control({"subtype": "set_model", "model": wanted})
            if reply is None:
                return self._error(msg, m.E_STATE, f"Session {self.name}'s CLI did not"
                                   " answer the model change: try /model again.")
            if not reply.ok:
                return self._error(msg, m.E_BAD_REQUEST, f"The CLI refused the model {arg}"
                                   f" ({reply.error or 'no reason given'}): pick another.")
            said = reply.payload.get("model")
            if isinstance(said, str) and said:
                shown = said
                self._translator.model = said
        elif not override:
            self._translator.model = ""
        self._state.set_model_override(override)
        return self._ok(msg, f"Session {self.name} now uses {shown}; it keeps it after a"
                        " restart.")

    async def _context(self, msg: m.SessionCommand) -> m.Ok | m.Error:
        if self._cli.warm is None and await self._cli.ensure() is None:
            return self._error(msg, m.E_STATE, f"Session {self.name}'s CLI could not"
                               " start: send it a message to see why.")
        reply = await self._control({"subtype": "get_context_usage", "detail": "summary"})
        if reply is None or not reply.ok:
            why = reply.error if reply is not None and reply.error else "no answer"
            return self._error(msg, m.E_STATE, f"Session {self.name}'s CLI did not"
                               f" report its context ({why}): try /context again.")
        return self._ok(msg, f"{self.name} · {self.model() or 'model ?'}\n"
                        + meter.context_text(reply.payload))

    def _compact(self, msg: m.SessionCommand) -> m.Ok | m.Error:
        key = f"cmd:compact:{msg.id}"
        self._store.add_turn(key, msg.chat_id, "/compact")
        self._turns.wake.set()
        ahead = self._store.open_count() - 1
        when = "now" if ahead <= 0 else f"after the {ahead} message(s) before it"
        return self._ok(msg, f"Compacting session {self.name}'s conversation {when}.")

    async def _clear(self, msg: m.SessionCommand) -> m.Ok | m.Error:
        if self._turns.turn is not None:
            return self._error(msg, m.E_STATE, f"Session {self.name} is answering a message:"
                               " wait for it or /cancel it, then /clear.")
        await self._cli.suspend("clear")
        if self._turns.turn is not None or self._cli.warm is not None:
            # A queued message started while the CLI was being stopped: it keeps its talk.
            return self._error(msg, m.E_STATE, f"Session {self.name} started answering a"
                               " message: wait for it, then /clear again.")
        old = self._state.start_fresh()
        self._ledger.note_turn(m.TurnResult(model=self.model(), tokens_in=0, tokens_out=0,
                                            context_percent=0.0))
        if old is None:
            return self._ok(msg, f"Session {self.name} has no conversation yet: your next"
                            " message starts one.")
        return self._ok(msg, f"Session {self.name} starts a fresh conversation with your next"
                        f" message; the old one was {old} (/history lists it).")

    def _history_text(self) -> str:
        entries = self._state.history()
        now = self._state.claude_session_id
        lines = [f"Session {self.name}'s conversations:"]
        for e in entries:
            span = " to ".join(x for x in (e.get("started", ""), e.get("ended", "")) if x)
            lines.append(f"• {e['id']}" + (f" ({span})" if span else ""))
        lines.append(f"▶ now: {now}" if now else "▶ now: a fresh one, from your next message")
        if not entries:
            lines.insert(1, "• no earlier ones (/clear starts a fresh one)")
        return "\n".join(lines)

    def _raise(self, msg: m.SessionCommand) -> m.Ok | m.Error:
        kind = msg.arg
        base = {"session": self.s.max_usd_per_session, "day": self.s.max_usd_per_day}.get(kind)
        if base is None:
            return self._error(msg, m.E_BAD_REQUEST, "The budget to raise is session or day.")
        hold = self._ledger.hold(self._state.cost_usd, self.s.max_usd_per_session,
                                 self.s.max_usd_per_day)
        if hold is None or hold.kind != kind:
            return self._ok(msg, f"Session {self.name} is not waiting on that budget: nothing"
                            " to raise.")
        # Enough for the waiting message to run, and one more budget's worth after it.
        by = max(hold.spent - hold.limit, 0.0) + (base or 1.0)
        self._ledger.raise_budget(kind, by)
        self._turns.wake.set()
        what = "this session's" if kind == "session" else "today's"
        return self._ok(msg, f"Raised {what} budget to ${hold.limit + by:.2f} for today:"
                        f" session {self.name}'s waiting message runs now.")
