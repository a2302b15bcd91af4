"""The session worker: one asyncio loop that turns user messages into Claude turns and Claude's
output into events on the chat socket.

Tasks, each owned and cancelled by `Worker.run`:
- chat: requests from the bot (chat.ChatLink); UserTurn is stored in the inbox, then
  acknowledged; Cancel, PermissionAnswer and Replay are answered.
- hello: Hello(last_seq) at every (re)connection to the bot (chat.ChatLink.hello_loop).
- turns: takes the oldest unfinished inbox message, makes sure a warm CLI is running (resuming
  the Claude session by id), writes the message and waits for the turn's result, a crash of the
  CLI or a hang; then the next one.
- watchdog: parent gone, idle suspend, permission prompts that timed out.
- control: Register and Pong on the supervisor's control socket (never waited for).

Every durable event is stored in the outbox before it is sent (chat.ChatLink.publish).
It must never run two CLIs for one Claude session id, never leave a process with its marker
behind on stop, and never crash on anything a peer or the CLI sends.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
import shutil
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq
import zmq.asyncio

from session_worker import notices, procs
from session_worker import stream_json as stream
from session_worker.chat import ChatLink
from session_worker.claude_process import ClaudeProcess, CliGone, build_argv, build_env
from session_worker.store import InboxItem, Store, read_json, write_json_atomic
from wire import messages as m
from wire import names
from wire.endpoints import Endpoints
from wire.names import program_name
from wire.rpc import Requester
from wire.settings import WorkerSettings

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
WATCHDOG_INTERVAL = 0.25
FAST_STOP = (0.3, 0.5, 0.5)  # parent gone: the whole tree must be gone within ~2 s


@dataclass
class Turn:
    item: InboxItem
    attempt: int
    done: asyncio.Future[m.TurnResult]
    cancel_requested: bool = False
    retry_noticed: bool = False


@dataclass
class Prompt:
    tool_name: str
    tool_input: dict[str, Any]
    deadline: float
    chat_id: int | None
    key: str


@dataclass
class ExitInfo:
    rc: int | None
    had_output: bool
    stderr_tail: list[str] = field(default_factory=list)


class Worker:
    def __init__(self, settings: WorkerSettings, environ: dict[str, str] | None = None) -> None:
        self.s = settings
        self.name = settings.session
        self.instance = names.instance_id(settings.state_dir)
        self.environ = dict(os.environ if environ is None else environ)
        self.session_dir = Path(settings.state_dir) / "sessions" / self.name
        self.work_dir = Path(settings.work_dir) if settings.work_dir else self.session_dir / "work"
        self.meta_path = self.session_dir / "metadata.json"
        self.session_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.store = Store(self.session_dir / "session.db")
        meta = read_json(self.meta_path)
        self.created = str(meta.get("created") or _now_iso())
        self.claude_session_id: str | None = self.store.get("claude_session_id") or (
            meta.get("claude_session_id")
            if isinstance(meta.get("claude_session_id"), str)
            else None
        )
        self.translator = stream.Translator()
        self.translator.session_id = self.claude_session_id
        self.cost_usd = self.store.total_cost()
        self.cli: ClaudeProcess | None = None
        self.turn: Turn | None = None
        self.turns_on_cli = 0
        self.always_allow: set[str] = set()
        self.prompts: dict[str, Prompt] = {}
        self._control_waiters: dict[str, asyncio.Future[stream.ControlReply]] = {}
        self.last_activity = time.monotonic()
        self.wake = asyncio.Event()
        self.stop_requested = asyncio.Event()
        self.shutting_down = False
        self.fast_stop = False
        self.exit_code = 0
        self._cli_lock = asyncio.Lock()
        self._side_tasks: set[asyncio.Task[Any]] = set()
        self._status = "running"
        self._start_failure = ""
        self.ctx: zmq.asyncio.Context | None = None
        self.chat: ChatLink | None = None
        self.control: Requester | None = None

    # ======================================================================= lifetime

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)
        if self.s.supervisor_pid is not None and not procs.pid_alive(self.s.supervisor_pid):
            log.warning("event=parent_gone_at_start pid=%d", self.s.supervisor_pid)
            return 0
        # A CLI left by a worker that was SIGKILLed must be gone before ours starts.
        found = await asyncio.to_thread(procs.sweep_marker, self.name, self.instance)
        if found:
            log.warning("event=leftovers_killed count=%d", found)
        self._write_meta()
        chat = self._open_sockets()
        tasks = [
            loop.create_task(self._guard(self._chat_loop()), name="chat"),
            loop.create_task(self._guard(chat.hello_loop()), name="hello"),
            loop.create_task(self._guard(self._turn_loop()), name="turns"),
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
        try:
            await self.stop_requested.wait()
        finally:
            await self._shutdown(tasks)
        return self.exit_code

    def _on_signal(self, sig: int) -> None:
        log.info("event=signal sig=%s", signal.Signals(sig).name)
        if self.s.supervisor_pid is not None and not procs.pid_alive(self.s.supervisor_pid):
            self.fast_stop = True
        self.stop_requested.set()

    async def _guard(self, coro: Any) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("event=task_failed")
            self.exit_code = 1
            self.stop_requested.set()

    async def _shutdown(self, tasks: list[asyncio.Task[None]]) -> None:
        self.shutting_down = True
        log.info("event=stopping fast=%s", self.fast_stop)
        # Stop the CLI first, with the turn loop still listening: a result that arrives while
        # stdin closes still finishes its message, and an unfinished one stays in the inbox.
        await self._stop_cli(fast=self.fast_stop)
        turns = next(t for t in tasks if t.get_name() == "turns")
        self.wake.set()
        await asyncio.wait([turns], timeout=1.0)
        for task in tasks + list(self._side_tasks):
            task.cancel()
        await asyncio.gather(*tasks, *self._side_tasks, return_exceptions=True)
        await asyncio.to_thread(procs.sweep_marker, self.name, self.instance)
        self._status = "stopped"
        self._write_meta()
        if self.control is not None:
            await self.control.close()
        if self.chat is not None:
            self.chat.close()
        if self.ctx is not None:
            self.ctx.destroy(linger=0)
        self.store.close()
        log.info("event=stopped")

    # ======================================================================= sockets

    def _open_sockets(self) -> ChatLink:
        self.ctx = zmq.asyncio.Context()
        ends = Endpoints(Path(self.s.runtime_dir))
        self.chat = ChatLink(self.ctx, ends.chat, self.name, self.store)
        self.control = Requester(
            self.ctx, ends.control, identity=program_name(self.name).encode(), on_ping=self._pong
        )
        self.control.start()
        return self.chat

    async def _register(self) -> None:
        assert self.control is not None
        msg = m.Register(id=m.new_id(), program=program_name(self.name), pid=os.getpid())
        try:
            await asyncio.wait_for(self.control.send(msg), 2.0)
        except (TimeoutError, zmq.ZMQError) as exc:
            log.info("event=register_not_sent reason=%r", str(exc) or type(exc).__name__)

    def _pong(self, ping: m.Ping) -> m.Pong:
        return m.Pong(id=ping.id, stats=self.stats())

    def stats(self) -> m.WorkerStats:
        cli = self.cli
        busy = self.turn is not None
        return m.WorkerStats(
            session=self.name,
            claude_pid=cli.pid if cli is not None and cli.running else None,
            busy=busy,
            queued=max(0, self.store.open_count() - (1 if busy else 0)),
            cost_usd=self.cost_usd,
            idle_seconds=0.0 if busy else time.monotonic() - self.last_activity,
            claude_session_id=self.claude_session_id,
            persona=self.s.persona.name,
            last_seq=self.store.last_seq,
        )

    def _reply(self, msg: m.Msg) -> None:
        assert self.chat is not None
        self.chat.reply(msg)

    # ======================================================================= chat: bot -> worker

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
            await self._on_user_turn(msg)
        elif isinstance(msg, m.Cancel):
            self._spawn(self._on_cancel(msg))
        elif isinstance(msg, m.PermissionAnswer):
            await self._on_permission_answer(msg)
        elif isinstance(msg, m.Replay):
            self._spawn(self._on_replay(msg))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)

    async def _on_user_turn(self, msg: m.UserTurn) -> None:
        fresh = self.store.add_turn(msg.key, msg.chat_id, msg.text, msg.message_id, msg.attachments)
        item = self.store.item(msg.key)
        ahead = 0
        if item is not None and item.state in ("queued", "running"):
            ahead = self.store.open_count() - 1
        self._reply(m.Accepted(id=msg.id, key=msg.key, duplicate=not fresh, queued=max(0, ahead)))
        log.info("event=turn_accepted key=%s duplicate=%s ahead=%d", msg.key, not fresh, ahead)
        if fresh:
            self.wake.set()

    async def _on_replay(self, msg: m.Replay) -> None:
        assert self.chat is not None
        await self.chat.replay(msg)

    def _on_api_retry(self, retry: stream.ApiRetry) -> None:
        """The CLI retries a failed API call (for minutes, by default). A rejected key will not
        get better: say so at once and end the turn. Anything else: say once why it is slow."""
        turn = self.turn
        if turn is None or turn.retry_noticed:
            return
        turn.retry_noticed = True
        if retry.status in (401, 403):
            self._notice("error", notices.api_error(retry.status, ""))
            self._spawn(self._interrupt(turn))
        else:
            self._notice("info", notices.api_retrying(retry.status, retry.max_retries))

    async def _on_cancel(self, msg: m.Cancel) -> None:
        turn = self.turn
        if turn is None:
            self._reply(
                m.Error(
                    id=msg.id,
                    code=m.E_STATE,
                    message="Nothing is running, so there is nothing to cancel.",
                )
            )
            return
        await self._interrupt(turn)
        self._reply(m.Ok(id=msg.id))

    async def _interrupt(self, turn: Turn) -> None:
        """Interrupt the running turn; kill the CLI if it does not end the turn in time."""
        turn.cancel_requested = True
        cli = self.cli
        rid = m.new_id()
        ack: asyncio.Future[stream.ControlReply] = asyncio.get_running_loop().create_future()
        self._control_waiters[rid] = ack
        try:
            if cli is not None:
                await cli.write(stream.interrupt_line(rid))
            log.info("event=interrupt_sent key=%s", turn.item.key)
        except CliGone:
            pass
        waits: list[asyncio.Future[Any]] = [turn.done]
        if cli is not None:
            waits.append(cli.exited)
        await asyncio.wait(
            waits, timeout=self.s.interrupt_timeout_seconds, return_when=asyncio.FIRST_COMPLETED
        )
        self._control_waiters.pop(rid, None)
        if not turn.done.done() and cli is not None and cli.running:
            log.warning("event=interrupt_timeout key=%s", turn.item.key)
            cli.kill_now()
            both: list[asyncio.Future[Any]] = [turn.done, cli.exited]
            await asyncio.wait(
                both, timeout=self.s.stop_kill_wait_seconds, return_when=asyncio.FIRST_COMPLETED
            )

    async def _on_permission_answer(self, msg: m.PermissionAnswer) -> None:
        prompt = self.prompts.get(msg.prompt_id)
        if prompt is None:
            self._reply(
                m.Error(
                    id=msg.id,
                    code=m.E_STATE,
                    message="That permission prompt is no longer waiting"
                    " (it was answered, timed out or its turn ended).",
                )
            )
            return
        reason = msg.message
        if msg.allow and msg.always:
            self.always_allow.add(prompt.tool_name)
            reason = reason or f"{prompt.tool_name} allowed for the rest of this session"
        ok = await self._answer_prompt(msg.prompt_id, msg.allow, msg.message, reason)
        if ok:
            self._reply(m.Ok(id=msg.id))
        else:
            self._reply(
                m.Error(
                    id=msg.id,
                    code=m.E_STATE,
                    message="Claude stopped before the answer reached it; send your message again.",
                )
            )

    async def _answer_prompt(self, prompt_id: str, allow: bool, message: str, reason: str) -> bool:
        prompt = self.prompts.pop(prompt_id, None)
        if prompt is None:
            return False
        sent = True
        try:
            if self.cli is None:
                raise CliGone("no CLI")
            await self.cli.write(
                stream.permission_line(prompt_id, allow, prompt.tool_input, message)
            )
        except CliGone:
            sent = False
        self._emit(
            m.PermissionResolved(prompt_id=prompt_id, allowed=allow, reason=reason),
            chat_id=prompt.chat_id,
            key=prompt.key,
        )
        log.info(
            "event=permission_answered tool=%s allow=%s sent=%s", prompt.tool_name, allow, sent
        )
        return sent

    # ======================================================================= events out

    def _emit(
        self,
        body: m.EventBody,
        *,
        ephemeral: bool = False,
        chat_id: int | None = None,
        key: str | None = None,
    ) -> None:
        turn = self.turn
        if chat_id is None and turn is not None:
            chat_id = turn.item.chat_id
        if key is None:
            key = turn.item.key if turn is not None else ""
        assert self.chat is not None
        self.chat.publish(body, chat_id, key, ephemeral)

    def _notice(self, level: str, message: str, **kw: Any) -> None:
        log.info("event=notice level=%s message=%r", level, message)
        self._emit(m.Notice(level=level, message=message), **kw)

    # ======================================================================= CLI output

    async def _on_line(self, line: bytes | stream.Oversized) -> None:
        parsed = stream.parse_line(line)
        if isinstance(parsed, stream.Skipped):
            if parsed.preview:
                log.info("event=cli_debug_line line=%r", parsed.preview)
            return
        if isinstance(parsed, stream.BadLine):
            log.warning("event=cli_bad_line reason=%r size=%d", parsed.reason, parsed.size)
            self._notice("warning", notices.unreadable_line(parsed.reason))
            return
        if isinstance(parsed, stream.Repaired):
            log.warning("event=cli_line_repaired reason=%r", parsed.reason)
            self._notice("warning", notices.repaired_line(parsed.reason))
            parsed = parsed.obj
        out = self.translator.translate(parsed)
        if out.session_id and out.session_id != self.claude_session_id:
            self._set_session_id(out.session_id)
        for e in out.emits:
            self._emit(e.body, ephemeral=e.ephemeral)
        if out.permission is not None:
            await self._on_permission_ask(out.permission)
        if out.control_reply is not None:
            fut = self._control_waiters.pop(out.control_reply.request_id, None)
            if fut is not None and not fut.done():
                fut.set_result(out.control_reply)
        if out.other_request is not None and self.cli is not None:
            log.info("event=control_request_unsupported subtype=%s", out.other_request.subtype)
            try:
                await self.cli.write(
                    stream.control_error_line(
                        out.other_request.request_id, f"unsupported: {out.other_request.subtype}"
                    )
                )
            except CliGone:
                pass
        if out.cancelled_request is not None and out.cancelled_request in self.prompts:
            prompt = self.prompts.pop(out.cancelled_request)
            self._emit(
                m.PermissionResolved(
                    prompt_id=out.cancelled_request, allowed=False, reason="withdrawn by Claude"
                ),
                chat_id=prompt.chat_id,
                key=prompt.key,
            )
        if out.api_retry is not None:
            self._on_api_retry(out.api_retry)
        if out.result is not None:
            turn = self.turn
            if turn is not None and not turn.done.done():
                turn.done.set_result(out.result)
            else:
                log.warning("event=result_without_turn subtype=%s", out.result.subtype)

    def _set_session_id(self, sid: str) -> None:
        log.info("event=claude_session_id id=%s", sid)
        self.claude_session_id = sid
        self.store.put("claude_session_id", sid)
        self._write_meta()

    async def _on_permission_ask(self, ask: stream.PermissionAsk) -> None:
        if ask.tool_name in self.always_allow and self.cli is not None:
            try:
                await self.cli.write(stream.permission_line(ask.request_id, True, ask.input, ""))
            except CliGone:
                pass
            log.info("event=permission_always_allowed tool=%s", ask.tool_name)
            return
        turn = self.turn
        timeout = self.s.permission_timeout_seconds
        self.prompts[ask.request_id] = Prompt(
            tool_name=ask.tool_name,
            tool_input=ask.input,
            deadline=time.monotonic() + timeout,
            chat_id=turn.item.chat_id if turn else None,
            key=turn.item.key if turn else "",
        )
        self._emit(
            m.PermissionRequest(
                prompt_id=ask.request_id,
                tool_name=ask.tool_name,
                summary=ask.summary,
                input_json=ask.input_json,
                timeout_seconds=timeout,
            )
        )

    def _drop_prompts(self, reason: str) -> None:
        for pid, prompt in list(self.prompts.items()):
            del self.prompts[pid]
            self._emit(
                m.PermissionResolved(prompt_id=pid, allowed=False, reason=reason),
                chat_id=prompt.chat_id,
                key=prompt.key,
            )

    # ======================================================================= turns

    async def _turn_loop(self) -> None:
        while not self.shutting_down:
            self.wake.clear()
            item = self.store.next_open()
            if item is None:
                await self.wake.wait()
                continue
            await self._run_turn(item)

    async def _run_turn(self, item: InboxItem) -> None:
        attempt = self.store.mark_running(item.id)
        done: asyncio.Future[m.TurnResult] = asyncio.get_running_loop().create_future()
        turn = Turn(item=item, attempt=attempt, done=done)
        self.turn = turn
        self.last_activity = time.monotonic()
        log.info("event=turn_start key=%s attempt=%d", item.key, attempt)
        try:
            if attempt > MAX_ATTEMPTS:
                self._fail_turn(item, "error_attempts", notices.too_many_attempts(attempt - 1))
                return
            self._emit(m.TurnStarted(key=item.key))
            cli = await self._ensure_cli()
            if cli is None:
                if self.shutting_down:
                    self.store.mark_queued(item.id)
                else:
                    self._fail_turn(item, "error_cli_start", self._start_failure)
                return
            self.turns_on_cli += 1
            try:
                await asyncio.wait_for(
                    cli.write(stream.user_line(_prompt_text(item))), self.s.hang_timeout_seconds
                )
            except (TimeoutError, CliGone) as exc:
                log.warning("event=write_failed reason=%r", str(exc))
            await self._wait_turn(turn, cli)
        finally:
            self.turn = None
            self.last_activity = time.monotonic()
            self._drop_prompts("the turn ended")
        await self._maybe_recycle()

    async def _wait_turn(self, turn: Turn, cli: ClaudeProcess) -> None:
        hang = self.s.hang_timeout_seconds
        while True:
            waiting_on_user = bool(self.prompts)
            left = None if waiting_on_user else max(0.05, cli.last_output + hang - time.monotonic())
            # Re-check now and then while a prompt is open: its deadline may pass.
            timeout = 1.0 if waiting_on_user else left
            either: list[asyncio.Future[Any]] = [turn.done, cli.exited]
            await asyncio.wait(either, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            if turn.done.done():
                result = turn.done.result()
                if self._resume_failed(cli, result):
                    await self._restart_fresh(turn, cli)
                    return
                self._finish_turn(turn, result)
                return
            if cli.exited.done():
                await self._on_cli_exit_in_turn(turn, cli)
                return
            if not self.prompts and time.monotonic() - cli.last_output >= hang:
                log.warning("event=cli_hung key=%s seconds=%s", turn.item.key, hang)
                cli.kill_now()
                await asyncio.wait([cli.exited], timeout=self.s.stop_kill_wait_seconds)
                await self._forget_cli(cli)
                self._fail_turn(turn.item, "error_hang", notices.hung(hang))
                return

    def _finish_turn(self, turn: Turn, result: m.TurnResult) -> None:
        self.cost_usd += result.cost_usd
        result.key = turn.item.key
        result.session_cost_usd = self.cost_usd
        self.store.add_usage(turn.item.key, result.cost_usd, result.duration_ms, result.num_turns)
        if result.api_error_status is not None or (result.is_error and result.subtype == "success"):
            self._notice("error", notices.api_error(result.api_error_status, result.text))
        self._emit(result)
        self.store.finish(turn.item.id, ok=not result.is_error)
        log.info(
            "event=turn_done key=%s subtype=%s is_error=%s cost=%.6f duration_ms=%d",
            turn.item.key,
            result.subtype,
            result.is_error,
            result.cost_usd,
            result.duration_ms,
        )

    async def _on_cli_exit_in_turn(self, turn: Turn, cli: ClaudeProcess) -> None:
        info = ExitInfo(
            rc=cli.returncode, had_output=cli.stdout_lines > 0, stderr_tail=list(cli.stderr_tail)
        )
        await self._forget_cli(cli)
        item = turn.item
        log.warning(
            "event=cli_exit_in_turn key=%s rc=%s had_output=%s", item.key, info.rc, info.had_output
        )
        if self.shutting_down:
            self.store.mark_queued(item.id)  # answered after the restart
            return
        if turn.cancel_requested:
            self._fail_turn(item, "error_interrupt_forced", notices.interrupt_forced(), "warning")
            return
        if not info.had_output and info.rc is not None and info.rc > 0:
            if self.claude_session_id and any(
                "No conversation found" in line for line in info.stderr_tail
            ):
                self._notice("warning", notices.resume_lost())
                self._set_session_id_none()
                self.store.mark_queued(item.id)
                return
            self._fail_turn(
                item, "error_cli_exit", notices.exited_at_start(info.rc, info.stderr_tail)
            )
            return
        if turn.attempt < MAX_ATTEMPTS:
            self._notice("warning", notices.crashed_retrying(info.rc))
            self.store.mark_queued(item.id)
        else:
            self._fail_turn(
                item, "error_cli_crash", notices.crashed_giving_up(info.rc, turn.attempt)
            )

    def _fail_turn(self, item: InboxItem, subtype: str, message: str, level: str = "error") -> None:
        """End a turn the CLI could not finish: the sentence for the user, then the TurnResult
        that closes the turn (every TurnStarted that is not retried ends with one)."""
        self._notice(level, message)
        result = m.TurnResult(
            key=item.key,
            subtype=subtype,
            is_error=True,
            text=message,
            session_cost_usd=self.cost_usd,
        )
        self._emit(result)
        self.store.finish(item.id, ok=False)
        log.info("event=turn_failed key=%s subtype=%s", item.key, subtype)

    def _resume_failed(self, cli: ClaudeProcess, result: m.TurnResult) -> bool:
        """A CLI started with --resume that ends the turn before any init could not load the
        conversation (its transcript is written lazily, so a kill -9 can lose it)."""
        return (
            any(a.startswith("--resume=") for a in cli.argv)
            and not self.translator.init_seen
            and result.subtype == "error_during_execution"
            and result.num_turns == 0
        )

    async def _restart_fresh(self, turn: Turn, cli: ClaudeProcess) -> None:
        log.warning("event=resume_failed id=%s", self.claude_session_id)
        await self._stop_this_cli(cli)
        self._notice("warning", notices.resume_lost())
        self._set_session_id_none()
        self.store.mark_queued(turn.item.id)

    async def _stop_this_cli(self, cli: ClaudeProcess) -> None:
        await cli.stop(
            self.s.stop_close_wait_seconds,
            self.s.stop_term_wait_seconds,
            self.s.stop_kill_wait_seconds,
        )
        await self._forget_cli(cli)

    def _set_session_id_none(self) -> None:
        self.claude_session_id = None
        self.translator.session_id = None
        self.store.put("claude_session_id", "")
        self._write_meta()

    # ======================================================================= the CLI

    async def _ensure_cli(self) -> ClaudeProcess | None:
        async with self._cli_lock:
            if self.cli is not None and self.cli.running:
                return self.cli
            if self.cli is not None:
                await self._forget_cli(self.cli)
            if self.shutting_down:
                return None
            # Never two CLIs for one Claude session: whatever carries our marker goes first.
            await asyncio.to_thread(procs.sweep_marker, self.name, self.instance)
            argv = build_argv(
                self.s.claude_binary,
                self.s.persona,
                self.s.extra_args,
                self.claude_session_id or None,
            )
            env = build_env(self.environ, self.s.claude_env, self.name, self.instance)
            cli = ClaudeProcess(argv, env, str(self.work_dir), self._on_line)
            try:
                await cli.start()
            except FileNotFoundError as exc:
                log.error("event=cli_missing binary=%r error=%r", self.s.claude_binary, str(exc))
                found = shutil.which(self.s.claude_binary, path=env.get("PATH"))
                self._start_failure = (
                    notices.not_startable(self.s.claude_binary, str(exc))
                    if found
                    else notices.missing_binary(self.s.claude_binary)
                )
                return None
            except OSError as exc:
                log.error(
                    "event=cli_start_failed binary=%r error=%r", self.s.claude_binary, str(exc)
                )
                self._start_failure = notices.not_startable(
                    self.s.claude_binary, exc.strerror or str(exc)
                )
                return None
            self.cli = cli
            self.translator.new_process()
            self.turns_on_cli = 0
            self._status = "running"
            self._write_meta()
            return cli

    async def _forget_cli(self, cli: ClaudeProcess) -> None:
        """After the CLI exited: wait for it, sweep what it left, clear any prompt."""
        if not cli.exited.done():
            await cli.stop(0, self.s.stop_term_wait_seconds, self.s.stop_kill_wait_seconds)
        await cli.aclose()
        if self.cli is cli:
            self.cli = None
        for fut in self._control_waiters.values():
            if not fut.done():
                fut.cancel()
        self._control_waiters.clear()
        await asyncio.to_thread(procs.sweep_marker, self.name, self.instance)

    async def _stop_cli(self, fast: bool = False) -> None:
        async with self._cli_lock:
            cli = self.cli
            if cli is None:
                return
            waits = (
                FAST_STOP
                if fast
                else (
                    self.s.stop_close_wait_seconds,
                    self.s.stop_term_wait_seconds,
                    self.s.stop_kill_wait_seconds,
                )
            )
            rc = await cli.stop(*waits)
            log.info("event=cli_stopped rc=%s", rc)
            # The turn loop, if a turn was running, sees the exit and forgets the CLI itself;
            # give it the chance so the inbox is left right.
            if self.turn is not None:
                await asyncio.sleep(0)
            await self._forget_cli(cli)

    async def _suspend(self, why: str) -> None:
        if self.cli is None or self.turn is not None:
            return
        log.info("event=suspend reason=%s", why)
        await self._stop_cli()
        self._status = "suspended"
        self._write_meta()

    async def _maybe_recycle(self) -> None:
        cli = self.cli
        if cli is None or not cli.running or self.shutting_down:
            return
        rss = cli.rss()
        if self.turns_on_cli >= self.s.recycle_turns:
            await self._suspend(f"turns={self.turns_on_cli}")
        elif rss > self.s.recycle_rss_bytes:
            await self._suspend(f"rss={rss}")

    async def _watchdog(self) -> None:
        while True:
            await asyncio.sleep(WATCHDOG_INTERVAL)
            if self.s.supervisor_pid is not None and not procs.pid_alive(self.s.supervisor_pid):
                log.warning("event=parent_gone pid=%d", self.s.supervisor_pid)
                self.fast_stop = True
                self.stop_requested.set()
                return
            now = time.monotonic()
            for pid, prompt in list(self.prompts.items()):
                if now >= prompt.deadline:
                    log.info("event=permission_timeout tool=%s", prompt.tool_name)
                    msg = notices.permission_timeout(self.s.permission_timeout_seconds)
                    await self._answer_prompt(pid, False, msg, "timeout")
            cli = self.cli
            if (
                cli is not None
                and self.turn is None
                and not self.shutting_down
                and now - self.last_activity >= self.s.idle_suspend_seconds
            ):
                await self._suspend("idle")

    # ======================================================================= metadata

    def _write_meta(self) -> None:
        data = {
            "name": self.name,
            "created": self.created,
            "last_active": _now_iso(),
            "persona": self.s.persona.name,
            "pid": os.getpid(),
            "status": self._status,
            "claude_session_id": self.claude_session_id,
        }
        try:
            write_json_atomic(self.meta_path, data)
        except OSError as exc:
            log.error("event=metadata_write_failed error=%r", str(exc))


def _prompt_text(item: InboxItem) -> str:
    """The user's text, with the files the bot saved for this message named at the end."""
    if not item.attachments:
        return item.text
    files = "\n".join(f"[attached file: {path}]" for path in item.attachments)
    return f"{item.text}\n\n{files}" if item.text else files


def _now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
