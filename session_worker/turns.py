"""The turn runner: the session's messages, one at a time, oldest unfinished first.

For each inbox row `TurnRunner` asks the policy (policy.py) whether to try it, makes sure the
warm CLI is up (cli_lifecycle.py), writes the user line, and waits for what ends the try: a
result (the router hands it over), the CLI's exit, or a hang. It turns that into `TurnFacts`,
asks the policy again and carries the decision out: finish, fail with one sentence and a closing
TurnResult, requeue, or start a fresh conversation. It also interrupts a turn (Cancel, a
rejected API key), with a forced kill when the CLI does not answer in time.

It must never decide a rule itself (they are all in policy.decide), never leave a running row
behind except for the next start to retry, and never end a TurnStarted without a TurnResult
unless the message is tried again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from session_worker import images, meter, policy, stream_json, translate
from session_worker.claude_process import ClaudeProcess
from session_worker.cli_lifecycle import CliLifecycle
from session_worker.emitter import Emitter
from session_worker.policy import Ending, TurnFacts
from session_worker.prompts import Prompts
from session_worker.router import ControlWaiters
from session_worker.state import SessionState
from session_worker.store import InboxItem, Store
from wire import messages as m
from wire.aio import wait_event
from wire.settings import WorkerSettings

log = logging.getLogger(__name__)

Spawn = Callable[[Coroutine[Any, Any, None]], None]
BudgetCheck = Callable[[], meter.Hold | None]
HOLD_RECHECK_SECONDS = 60.0  # a day budget frees itself at midnight without a wake


@dataclass
class Turn:
    item: InboxItem
    attempt: int
    done: asyncio.Future[m.TurnResult]
    cancel_requested: bool = False
    user_stop: bool = False
    retry_noticed: bool = False
    cli: ClaudeProcess | None = None


class TurnRunner:
    def __init__(
        self,
        settings: WorkerSettings,
        store: Store,
        state: SessionState,
        translator: translate.Translator,
        cli: CliLifecycle,
        prompts: Prompts,
        waiters: ControlWaiters,
        out: Emitter,
        spawn: Spawn,
    ) -> None:
        self.s = settings
        self._store = store
        self._state = state
        self._translator = translator
        self._cli = cli
        self._prompts = prompts
        self._waiters = waiters
        self._out = out
        self._spawn = spawn
        self.turn: Turn | None = None
        self.last_activity = time.monotonic()
        self.wake = asyncio.Event()
        # Waits before a turn while a CLI outside Switchboard holds the id (session_worker.
        # terminal); True when it waited.
        self.before_turn: Callable[[InboxItem], Coroutine[Any, Any, bool]] | None = None
        # Set by the worker: the budget the next turn would start past (session_worker.ledger),
        # and what to do with each finished turn's result (the ledger notes its usage).
        self.budget: BudgetCheck = lambda: None
        self.on_finished: Callable[[m.TurnResult], None] = lambda result: None
        self.held: str | None = None  # the budget kind the queue waits on, once announced

    # ------------------------------------------------------------------- for the router

    def current_item(self) -> InboxItem | None:
        return self.turn.item if self.turn is not None else None

    def on_result(self, result: m.TurnResult) -> None:
        turn = self.turn
        if turn is not None and not turn.done.done():
            turn.done.set_result(result)
        else:
            log.warning("event=result_without_turn subtype=%s", result.subtype)

    def on_api_retry(self, retry: translate.ApiRetry) -> None:
        turn = self.turn
        if turn is None:
            return
        react = policy.on_api_retry(retry.status, retry.max_retries, turn.retry_noticed)
        if react is None:
            return
        turn.retry_noticed = True
        self._out.notice(react.level, react.sentence)
        if react.interrupt:
            self._spawn(self.interrupt(turn))

    # ------------------------------------------------------------------- the loop

    async def loop(self) -> None:
        while not self._cli.closing:
            self.wake.clear()
            item = self._store.next_open()
            if item is None:
                await self.wake.wait()
                continue
            if self.before_turn is not None and await self.before_turn(item):
                continue
            if item.state == "queued" and self._hold(item):
                await wait_event(self.wake, HOLD_RECHECK_SECONDS)
                continue
            await self.run(item)

    def _hold(self, item: InboxItem) -> bool:
        """True when a budget keeps the message waiting; the chat hears it once per hold."""
        hold = self.budget()
        if hold is None:
            if self.held is not None:
                log.info("event=budget_released kind=%s", self.held)
            self.held = None
            return False
        if self.held != hold.kind:
            self.held = hold.kind
            log.info("event=budget_hold kind=%s spent=%.4f limit=%.4f key=%s", hold.kind,
                     hold.spent, hold.limit, item.key)
            self._out.emit(m.BudgetHold(kind=hold.kind, spent_usd=hold.spent,
                                        limit_usd=hold.limit, message=hold.sentence),
                           chat_id=item.chat_id, key=item.key)
        return True

    async def run(self, item: InboxItem) -> None:
        attempt = self._store.mark_running(item.id)
        done: asyncio.Future[m.TurnResult] = asyncio.get_running_loop().create_future()
        turn = Turn(item=item, attempt=attempt, done=done)
        self.turn = turn
        self.last_activity = time.monotonic()
        log.info("event=turn_start key=%s attempt=%d", item.key, attempt)
        try:
            decision = policy.decide(TurnFacts(Ending.BEFORE, attempt))
            if isinstance(decision, policy.Run):
                decision = await self._try(turn)
            await self._carry_out(turn, decision)
        finally:
            self.turn = None
            self.last_activity = time.monotonic()
            self._prompts.drop_all("the turn ended")
        await self._cli.maybe_recycle()

    async def _try(self, turn: Turn) -> policy.Decision:
        item = turn.item
        warm = self._cli.warm is not None
        if not warm:  # a CLI must start first: the chat hears at once that the turn began
            self._out.emit(m.TurnStarted(key=item.key))
        cli = await self._cli.ensure()
        if cli is None:
            if warm:
                self._out.emit(m.TurnStarted(key=item.key))
            return policy.decide(
                TurnFacts(
                    Ending.NO_CLI,
                    turn.attempt,
                    shutting_down=self._cli.closing,
                    user_stop=turn.user_stop,
                    message_text=item.text,
                    start_failure=self._cli.start_failure,
                )
            )
        turn.cli = cli
        self._cli.count_turn()
        text = prompt_text(item)
        content: str | list[dict[str, Any]] = text
        if item.images:  # read (and checked) off the loop; a text turn needs no thread hop
            uploads = Path(self.s.state_dir) / "sessions" / self.s.session / "work" / "uploads"
            content = await asyncio.to_thread(images.user_content, text, item.images, uploads)
        # On a warm CLI the line goes first and TurnStarted right after it: the CLI cannot
        # answer before this returns to the loop, so the chat still hears of the start first.
        written = self._cli.put(stream_json.user_line(content))
        if warm:
            self._out.emit(m.TurnStarted(key=item.key))
        if not written or not await self._drain_in_time():
            log.warning("event=write_failed key=%s", item.key)
        return await self._wait(turn, cli)

    async def _drain_in_time(self) -> bool:
        try:
            return await asyncio.wait_for(self._cli.drain(), self.s.hang_timeout_seconds)
        except TimeoutError:
            return False

    async def _wait(self, turn: Turn, cli: ClaudeProcess) -> policy.Decision:
        """Until the turn's result, the CLI's exit or a hang; then what the policy says."""
        hang = self.s.hang_timeout_seconds
        resumed = any(a.startswith("--resume=") for a in cli.argv)
        while True:
            waiting_on_user = bool(self._prompts)
            left = None if waiting_on_user else max(0.05, cli.last_output + hang - time.monotonic())
            # Re-check now and then while a prompt is open: its deadline may pass.
            timeout = 1.0 if waiting_on_user else left
            either: list[asyncio.Future[Any]] = [turn.done, cli.exited]
            await asyncio.wait(either, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            if turn.done.done():
                result = turn.done.result()
                return policy.decide(
                    TurnFacts(
                        Ending.RESULT,
                        turn.attempt,
                        user_stop=turn.user_stop,
                        message_text=turn.item.text,
                        resumed=resumed,
                        init_seen=self._translator.init_seen,
                        result_subtype=result.subtype,
                        result_num_turns=result.num_turns,
                    )
                )
            if cli.exited.done():
                rc, had_output, tail = cli.returncode, cli.stdout_lines > 0, tuple(cli.stderr_tail)
                await self._cli.forget(cli)
                log.warning(
                    "event=cli_exit_in_turn key=%s rc=%s had_output=%s",
                    turn.item.key,
                    rc,
                    had_output,
                )
                return policy.decide(
                    TurnFacts(
                        Ending.EXITED,
                        turn.attempt,
                        cancel_requested=turn.cancel_requested,
                        shutting_down=self._cli.closing,
                        user_stop=turn.user_stop,
                        message_text=turn.item.text,
                        resumed=resumed,
                        rc=rc,
                        had_output=had_output,
                        stderr_tail=tail,
                    )
                )
            if not self._prompts and time.monotonic() - cli.last_output >= hang:
                log.warning("event=cli_hung key=%s seconds=%s", turn.item.key, hang)
                cli.kill_now()
                await asyncio.wait([cli.exited], timeout=self.s.stop_kill_wait_seconds)
                await self._cli.forget(cli)
                return policy.decide(TurnFacts(Ending.HUNG, turn.attempt, hang_seconds=hang,
                                               user_stop=turn.user_stop,
                                               message_text=turn.item.text))

    # ------------------------------------------------------------------- decisions

    async def _carry_out(self, turn: Turn, decision: policy.Decision) -> None:
        item = turn.item
        if isinstance(decision, policy.Finish):
            self._finish(turn, turn.done.result())
        elif isinstance(decision, policy.Fail):
            self._fail(item, decision.subtype, decision.sentence, decision.level, decision.retry)
        elif isinstance(decision, policy.Requeue):
            if decision.notice is not None:
                self._out.notice(decision.level, decision.notice)
            self._store.mark_queued(item.id)
        elif isinstance(decision, policy.RestartFresh):
            log.warning("event=resume_failed id=%s", self._state.claude_session_id)
            if turn.cli is not None and self._cli.cli is turn.cli:
                await self._cli.stop_this(turn.cli)
            self._out.notice(decision.level, decision.notice)
            self._state.forget_claude_session_id()
            self._store.mark_queued(item.id)

    def _finish(self, turn: Turn, result: m.TurnResult) -> None:
        item = turn.item
        total = self._state.add_turn_cost(
            item.key, result.cost_usd, result.duration_ms, result.num_turns
        )
        result.key = item.key
        result.session_cost_usd = total
        self.on_finished(result)
        sentence = policy.result_notice(result)
        if sentence is not None:
            self._out.notice("error", sentence)
        self._out.emit(result)
        self._store.finish(item.id, ok=not result.is_error)
        log.info(
            "event=turn_done key=%s subtype=%s is_error=%s cost=%.6f duration_ms=%d",
            item.key,
            result.subtype,
            result.is_error,
            result.cost_usd,
            result.duration_ms,
        )

    def _fail(
        self, item: InboxItem, subtype: str, sentence: str, level: str, retry: bool = False
    ) -> None:
        """End a turn the CLI could not finish: the sentence for the user, then the TurnResult
        that closes the turn (every TurnStarted that is not retried ends with one). A turn the
        user may retry says its sentence once, in the TurnResult the bot puts the button on."""
        if not retry:
            self._out.notice(level, sentence)
        result = m.TurnResult(
            key=item.key,
            subtype=subtype,
            is_error=True,
            text=sentence,
            session_cost_usd=self._state.cost_usd,
            retry_text=item.text if retry else "",
        )
        self._out.emit(result)
        self._store.finish(item.id, ok=False)
        log.info("event=turn_failed key=%s subtype=%s", item.key, subtype)

    # ------------------------------------------------------------------- interrupt

    async def cancel(self, msg: m.Cancel) -> m.Ok | m.Error:
        turn = self.turn
        if turn is None:
            return m.Error(
                id=msg.id,
                code=m.E_STATE,
                message="Nothing is running, so there is nothing to cancel.",
            )
        await self.interrupt(turn)
        return m.Ok(id=msg.id)

    async def stop_by_user(self) -> None:
        """The user stopped or restarted the session: end the running turn now, for good."""
        turn = self.turn
        if turn is None:
            return
        turn.user_stop = True
        log.info("event=turn_stopped_by_user key=%s", turn.item.key)
        await self.interrupt(turn)

    async def interrupt(self, turn: Turn) -> None:
        """Interrupt the running turn; kill the CLI if it does not end the turn in time."""
        turn.cancel_requested = True
        cli = self._cli.cli
        rid = m.new_id()
        self._waiters.expect(rid)
        if cli is not None and await self._cli.write(stream_json.interrupt_line(rid)):
            log.info("event=interrupt_sent key=%s", turn.item.key)
        waits: list[asyncio.Future[Any]] = [turn.done]
        if cli is not None:
            waits.append(cli.exited)
        await asyncio.wait(
            waits, timeout=self.s.interrupt_timeout_seconds, return_when=asyncio.FIRST_COMPLETED
        )
        self._waiters.forget(rid)
        if not turn.done.done() and cli is not None and cli.running:
            log.warning("event=interrupt_timeout key=%s", turn.item.key)
            cli.kill_now()
            both: list[asyncio.Future[Any]] = [turn.done, cli.exited]
            await asyncio.wait(
                both, timeout=self.s.stop_kill_wait_seconds, return_when=asyncio.FIRST_COMPLETED
            )


def prompt_text(item: InboxItem) -> str:
    """The user's text, with the files the bot saved for this message named at the end."""
    if not item.attachments:
        return item.text
    files = "\n".join(f"[attached file: {path}]" for path in item.attachments)
    return f"{item.text}\n\n{files}" if item.text else files
