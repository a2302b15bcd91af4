"""The session worker's composition root: it builds the parts of one session and runs them.

`Worker.run` reads as its life: start-up (parent check, leftover sweep, metadata, sockets,
tasks), serve (until a signal, a lost parent or a failed task), shutdown (the CLI first, then
the tasks, a last sweep, metadata, sockets). The parts, one idea each:
- state.py: the session's status, Claude session id and cost (metadata.json, kv, usage);
- cli_lifecycle.py: the warm CLI (start after a marker sweep, suspend, recycle, stop, forget);
- router.py: every stdout line of the CLI, parsed (stream_json.py), translated (translate.py)
  and routed;
- prompts.py: the permission prompts Claude waits on;
- turns.py and policy.py: the turns, and every rule for retrying or giving one up;
- chat.py and emitter.py: the chat socket to the bot, and where events leave.

Tasks, each owned and cancelled here: chat (requests from the bot), hello (Hello(last_seq) at
every (re)connection), turns, watchdog (parent gone, prompt deadlines, idle suspend) and
register (Register and Pong on the supervisor's control socket, never waited for).
How a worker tells a user's stop from any other: SIGTERM carries nothing, so for a user's stop
or restart (`/stop`, `switchboardctl stop|restart`) the supervisor first writes the file
`wire.names.USER_STOP_FILE` into the session dir. Seeing it at the signal, the worker cancels the
running turn for good (turns.stop_by_user: not run again, the chat offers a Retry); without it (a
shutdown of the whole supervisor, a lost parent) the unfinished turn stays in the inbox for the
next start, and a crash or a kill -9 never gets here at all, so the message is tried again. The
file is removed at every start, so a stale one never turns a later shutdown into a user's stop.

It must never run two CLIs for one Claude session id, never leave a process with its marker
behind on stop (its tools survive only a crash of the worker or CLI), and never crash on
anything a peer or the CLI sends.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import msgspec
import zmq
import zmq.asyncio

from session_worker import procs
from session_worker.chat import ChatLink
from session_worker.cli_lifecycle import CliLifecycle
from session_worker.commands import SessionCommands
from session_worker.emitter import Emitter
from session_worker.ledger import Ledger
from session_worker.mcp_tools import SERVER, McpServer
from session_worker.prompts import Prompts
from session_worker.router import ControlWaiters, Router
from session_worker.sender import Sender
from session_worker.state import SessionState, Status
from session_worker.store import StorageError, Store
from session_worker.stream_json import Oversized
from session_worker.terminal import Terminal
from session_worker.translate import Translator
from session_worker.turns import TurnRunner
from wire import auth, names
from wire import messages as m
from wire.endpoints import Endpoints
from wire.names import program_name
from wire.rpc import Requester
from wire.settings import CliTuning, WorkerSettings

log = logging.getLogger(__name__)

WATCHDOG_INTERVAL = 0.25
# What a SIGHUP changes in a running worker (the rest is its identity: session, dirs, parent).
# The persona and the CLI's binary, env and argv take effect at the next CLI start.
RELOADABLE = (*CliTuning.__struct_fields__, "persona", "claude_binary", "claude_env",
              "recycle_rss_bytes", "stop_close_wait_seconds", "stop_term_wait_seconds",
              "stop_kill_wait_seconds")


class Worker:
    def __init__(self, settings: WorkerSettings, environ: dict[str, str] | None = None, *,
                 keys: auth.ChildKeys) -> None:
        self.s = settings
        self.keys = keys
        self.name = settings.session
        instance = names.instance_id(settings.state_dir)
        session_dir = Path(settings.state_dir) / "sessions" / self.name
        work_dir = Path(settings.work_dir) if settings.work_dir else session_dir / "work"
        session_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.user_stop_file = session_dir / names.USER_STOP_FILE
        work_dir.mkdir(parents=True, exist_ok=True)
        self.store = Store(session_dir / "session.db")
        self.state = SessionState(
            self.name, settings.persona.name, session_dir / "metadata.json", self.store
        )
        # The parts call each other through what is bound here (lambdas for the ones built
        # later), so each knows only what it is given and none reaches into the worker.
        self.out = Emitter(current=lambda: self.turns.current_item())
        self.translator = Translator(announced_session_id=self.state.claude_session_id)
        self.waiters = ControlWaiters()
        self.cli = CliLifecycle(
            settings,
            dict(os.environ if environ is None else environ),
            instance,
            work_dir,
            self.state,
            on_line=self._on_line,
            on_started=self.translator.new_process,
            on_gone=self.waiters.cancel_all,
            busy=lambda: self.turns.turn is not None,
        )
        self.prompts = Prompts(
            settings.permission_timeout_seconds,
            send=self.cli.write,
            publish=lambda body, chat_id, key: self.out.emit(body, chat_id=chat_id, key=key),
            store=self.store,
            cwd=str(work_dir.resolve()),
        )
        self.turns = TurnRunner(
            settings,
            self.store,
            self.state,
            self.translator,
            self.cli,
            self.prompts,
            self.waiters,
            self.out,
            spawn=self._spawn,
        )
        self.terminal = Terminal(settings, dict(os.environ if environ is None else environ),
                                 instance, work_dir, self.state, self.cli, self.out,
                                 busy=lambda: self.turns.turn is not None)
        self.turns.before_turn = self.terminal.wait_while_held
        # Files to the chat (send_file, /get): the working dir and the uploads the bot saves.
        self.sender = Sender(self.out, work_dir, session_dir / "work" / "uploads")
        self.ledger = Ledger(self.store, Path(settings.state_dir) / "sessions")
        self.turns.budget = lambda: self.ledger.hold(
            self.state.cost_usd, self.s.max_usd_per_session, self.s.max_usd_per_day)
        self.turns.on_finished = self.ledger.note_turn
        self.router = Router(
            self.translator, self.state, self.out, self.prompts, self.waiters, self.cli.write,
            self.turns, mcp={SERVER: McpServer(self.sender.tool).handle},
            on_rate_window=self._on_rate_window,
        )
        self.commands = SessionCommands(settings, self.store, self.state, self.translator,
                                        self.cli, self.waiters, self.turns, self.ledger)
        self.stop_requested = asyncio.Event()
        self.fast_stop = False
        self.user_stop = False
        self.exit_code = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._side_tasks: set[asyncio.Task[None]] = set()
        self.ctx: zmq.asyncio.Context | None = None
        self.chat: ChatLink | None = None
        self.control: Requester | None = None

    # ======================================================================= lifetime

    async def run(self) -> int:
        if not await self._startup():
            return 0
        try:
            await self._serve()
        finally:
            await self._shutdown()
        return self.exit_code

    async def _startup(self) -> bool:
        loop = asyncio.get_running_loop()
        self.user_stop_file.unlink(missing_ok=True)  # a stop of an earlier run, seen or not
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)
        if self._parent_gone():
            log.warning("event=parent_gone_at_start pid=%d", self.s.supervisor_pid)
            return False
        # A CLI left by a worker that was SIGKILLed must be gone before ours starts (one CLI per
        # Claude session id). The tools it started are the session's and keep running: a worker
        # crash is not a stop.
        found = await self.cli.sweep_stale()
        if found:
            log.warning("event=stale_clis_killed count=%d", found)
        self.state.set_status(Status.RUNNING)
        self._prune()
        chat = self._open_sockets()
        self._tasks = [
            loop.create_task(self._guard(self._chat_loop()), name="chat"),
            loop.create_task(self._guard(chat.hello_loop()), name="hello"),
            loop.create_task(self._guard(self.turns.loop()), name="turns"),
            loop.create_task(self._guard(self._watchdog()), name="watchdog"),
            loop.create_task(self._guard(self._register()), name="register"),
        ]
        log.info(
            "event=worker_started pid=%d persona=%s last_seq=%d open=%d",
            os.getpid(),
            self.s.persona.name,
            self.store.last_seq,
            self.store.open_count(),
        )
        return True

    async def _serve(self) -> None:
        await self.stop_requested.wait()

    async def _shutdown(self) -> None:
        self.cli.close()
        log.info("event=stopping fast=%s user=%s", self.fast_stop, self.user_stop)
        if self.user_stop and not self.fast_stop:
            await self.turns.stop_by_user()
        # Stop the CLI first, with the turn runner still listening: a result that arrives while
        # stdin closes still finishes its message, and an unfinished one stays in the inbox.
        await self.cli.stop(fast=self.fast_stop)
        turns = next(t for t in self._tasks if t.get_name() == "turns")
        self.turns.wake.set()
        await asyncio.wait([turns], timeout=1.0)
        for task in self._tasks + list(self._side_tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, *self._side_tasks, return_exceptions=True)
        await self.cli.sweep()
        self.state.set_status(Status.STOPPED)
        if self.control is not None:
            await self.control.close()
        if self.chat is not None:
            self.chat.close()
        if self.ctx is not None:
            self.ctx.destroy(linger=0)
        self.store.close()
        log.info("event=stopped")

    def _parent_gone(self) -> bool:
        pid = self.s.supervisor_pid
        return pid is not None and not procs.pid_alive(pid)

    def _on_signal(self, sig: int) -> None:
        log.info("event=signal sig=%s", signal.Signals(sig).name)
        if self._parent_gone():
            self.fast_stop = True
        if self.user_stop_file.exists():
            self.user_stop = True
            self.user_stop_file.unlink(missing_ok=True)
        self.stop_requested.set()

    async def _guard(self, coro: Coroutine[Any, Any, None]) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("event=task_failed")
            self.exit_code = 1
            self.stop_requested.set()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)

    async def _on_line(self, line: bytes | Oversized) -> None:
        await self.router.on_line(line)

    async def _watchdog(self) -> None:
        while True:
            await asyncio.sleep(WATCHDOG_INTERVAL)
            if self._parent_gone():
                log.warning("event=parent_gone pid=%d", self.s.supervisor_pid)
                self.fast_stop = True
                self.stop_requested.set()
                return
            await self.prompts.expire()
            await self.terminal.watch_warm()
            if (
                self.cli.cli is not None
                and self.turns.turn is None
                and not self.cli.closing
                and time.monotonic() - self.turns.last_activity >= self.s.idle_suspend_seconds
            ):
                await self.cli.suspend("idle")

    # ======================================================================= sockets

    def _open_sockets(self) -> ChatLink:
        self.ctx = zmq.asyncio.Context()
        ends = Endpoints(Path(self.s.runtime_dir))
        assert self.keys.chat is not None, "a worker's keys carry its chat key"
        self.chat = ChatLink(self.ctx, ends.chat, self.name, self.store, self.keys.chat)
        self.out.chat = self.chat
        # The supervisor knows us by our key (wire.auth), not by a routing id we could claim.
        self.control = Requester(self.ctx, ends.control, keys=self.keys.control,
                                 on_ping=self._pong, on_reload=self._on_reload,
                                 on_detach=self.terminal.detach)
        self.control.start()
        return self.chat

    async def _register(self) -> None:
        assert self.control is not None
        msg = m.Register(id=m.new_id(), program=program_name(self.name), pid=os.getpid())
        try:
            await asyncio.wait_for(self.control.send(msg), 2.0)
        except (TimeoutError, zmq.ZMQError) as exc:
            log.info("event=register_not_sent reason=%r", str(exc) or type(exc).__name__)

    def _on_reload(self, msg: m.Reload) -> m.Ok | m.Error:
        """A SIGHUP's settings: applied to self.s in place (every part reads it at use)."""
        try:
            new = msgspec.json.decode(msg.settings_json, type=WorkerSettings)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.error("event=reload_bad_settings error=%r", str(exc))
            return m.Error(id=msg.id, code=m.E_BAD_REQUEST,
                           message=f"the worker cannot read its new settings ({exc}): restart it.")
        if new.session != self.name:
            return m.Error(id=msg.id, code=m.E_BAD_REQUEST,
                           message=f"settings for session {new.session}, not {self.name}.")
        changed = [f for f in RELOADABLE if getattr(self.s, f) != getattr(new, f)]
        for f in changed:
            setattr(self.s, f, getattr(new, f))
        self.prompts.timeout_seconds = self.s.permission_timeout_seconds  # prompts from now on
        self.state.persona = self.s.persona.name
        log.info("event=reloaded changed=%s", ",".join(changed) or "-")
        return m.Ok(id=msg.id)

    def _prune(self) -> None:
        """Keep session.db small: what the bot has (its last Replay said so) and old finished
        messages go (session_worker.store.Store.prune); the cost rows stay."""
        events, turns = self.store.prune()
        if events or turns:
            log.info("event=pruned events=%d messages=%d", events, turns)

    def _pong(self, ping: m.Ping) -> m.Pong:
        if ping.notice:  # the supervisor killed one of our processes: the chat hears why
            self.out.notice("warning", ping.notice)
        # A session.db that no longer answers must not silence the heartbeat: it is reported.
        try:
            stats: m.WorkerStats | None = self.stats()
        except StorageError:
            stats = None
        return m.Pong(id=ping.id, stats=stats, unhealthy=self.store.failure.why)

    def _on_rate_window(self, window: m.RateWindow) -> None:
        sentence = self.ledger.note_window(window)
        if sentence is not None:
            self.out.notice("warning", sentence)

    def stats(self) -> m.WorkerStats:
        cli = self.cli.warm
        busy = self.turns.turn is not None
        last = self.ledger.last
        return m.WorkerStats(
            session=self.name,
            claude_pid=cli.pid if cli is not None else None,
            busy=busy,
            queued=max(0, self.store.open_count() - (1 if busy else 0)),
            cost_usd=self.state.cost_usd,
            idle_seconds=0.0 if busy else time.monotonic() - self.turns.last_activity,
            claude_session_id=self.state.claude_session_id,
            persona=self.s.persona.name,
            last_seq=self.store.last_seq,
            model=self.commands.model() or last.model,
            tokens_in=last.tokens_in,
            tokens_out=last.tokens_out,
            context_percent=last.context_percent,
            rate_limits=list(self.ledger.windows.values()),
        )

    # ======================================================================= chat: bot -> worker

    def _reply(self, msg: m.Msg) -> None:
        assert self.chat is not None
        self.chat.reply(msg)

    async def _chat_loop(self) -> None:
        assert self.chat is not None
        while True:
            msg = await self.chat.recv()
            if msg is None:
                continue
            try:
                await self._dispatch(msg)
            except Exception:
                log.exception("event=dispatch_failed type=%s", type(msg).__name__)
                self._reply(
                    m.Error(
                        id=msg.id,
                        code=m.E_INTERNAL,
                        message="The worker failed on that request; see its log.",
                    )
                )

    async def _dispatch(self, msg: m.ChatToWorker) -> None:
        if isinstance(msg, m.UserTurn):
            self._on_user_turn(msg)
        elif isinstance(msg, m.Cancel):
            self._spawn(self._on_cancel(msg))
        elif isinstance(msg, m.EditTurn):
            self._reply(self._on_edit(msg))
        elif isinstance(msg, m.PermissionAnswer):
            self._reply(await self.prompts.reply_to(msg))
        elif isinstance(msg, m.ListGrants):
            self._reply(self.prompts.list_grants(msg))
        elif isinstance(msg, m.RevokeGrant):
            self._reply(self.prompts.revoke(msg))
        elif isinstance(msg, m.GetFile):
            self._reply(self.sender.get(msg))
        elif isinstance(msg, m.SessionCommand):
            self._spawn(self._on_command(msg))
        elif isinstance(msg, m.Replay):
            assert self.chat is not None
            self.store.note_replayed_after(msg.after_seq)
            self._spawn(self.chat.replay(msg))
            self._prune()

    def _on_user_turn(self, msg: m.UserTurn) -> None:
        # Stored without waiting for the disk, so the turn starts at once; Accepted (which lets
        # the bot forget the message) goes only once it is fsynced (_accept). A power cut before
        # that loses nothing: the bot still has the message and sends it again.
        fresh = self.store.add_turn(msg.key, msg.chat_id, msg.text, msg.message_id, msg.attachments,
                                    images=msg.images, durable=False)
        if fresh:
            self.turns.wake.set()
            self.terminal.announce(msg.chat_id, msg.key)  # if a terminal holds the conversation
        self._spawn(self._accept(msg, fresh))

    async def _accept(self, msg: m.UserTurn, fresh: bool) -> None:
        try:
            await asyncio.to_thread(self.store.sync)
        except StorageError:
            return  # no Accepted: the bot keeps the message; the heartbeat says unhealthy
        item = self.store.item(msg.key)  # how many came before it and are not answered yet
        ahead = 0
        if item is not None and item.state in ("queued", "running"):
            ahead = self.store.open_count(before=item.id)
        self._reply(m.Accepted(id=msg.id, key=msg.key, duplicate=not fresh, queued=max(0, ahead)))
        log.info("event=turn_accepted key=%s duplicate=%s ahead=%d", msg.key, not fresh, ahead)

    def _on_edit(self, msg: m.EditTurn) -> m.Ok | m.Error:
        outcome = self.store.replace_text(msg.key, msg.text)
        log.info("event=turn_edit key=%s outcome=%s", msg.key, outcome)
        if outcome == "replaced":
            return m.Ok(id=msg.id)
        if outcome == "unknown":
            return m.Error(id=msg.id, code=m.E_UNKNOWN_NAME,
                           message="This session never received that message.")
        return m.Error(id=msg.id, code=m.E_STATE,
                       message="That message was already being answered, so the edit was not"
                       " applied: send the new text as a new message.")

    async def _on_command(self, msg: m.SessionCommand) -> None:
        try:
            reply: m.Ok | m.Error = await self.commands.run(msg)
        except StorageError as exc:
            reply = m.Error(id=msg.id, code=m.E_INTERNAL, message=str(exc))
        self._reply(reply)

    async def _on_cancel(self, msg: m.Cancel) -> None:
        self._reply(await self.turns.cancel(msg))
