"""The warm CLI's life: started when a turn needs it, kept between turns, suspended when idle or
past its recycle limits, stopped at shutdown, and forgotten (waited for, swept) after it exits.

`CliLifecycle` owns the one `ClaudeProcess` of the session. `ensure` kills every stale CLI with
the session's marker before every start, so a CLI left by a SIGKILLed worker is gone before ours
resumes the same Claude session id; the argv resumes the id the session's state holds.
`closing` (set once, at shutdown) refuses every later start.

The tools a CLI started (a `nohup` server) are the session's, not the CLI's: a suspend, a CLI
crash or a worker crash leaves them running; only `sweep` (the worker's stop) kills them.

It must never run two CLIs at once (every start and stop holds one lock), never start one after
`close()`, and never leave a CLI carrying the marker behind after `forget` or `stop`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from pathlib import Path

from session_worker import notices, procs
from session_worker.claude_process import (
    ClaudeProcess,
    CliGone,
    LineHandler,
    build_argv,
    build_env,
)
from session_worker.fence import Fence
from session_worker.state import SessionState, Status
from wire import sandbox
from wire.binaries import find_binary
from wire.settings import WorkerSettings

log = logging.getLogger(__name__)

FAST_STOP = (0.3, 0.5, 0.5)  # parent gone: the whole tree must be gone within ~2 s


class CliLifecycle:
    def __init__(
        self,
        settings: WorkerSettings,
        environ: Mapping[str, str],
        instance: str,
        work_dir: Path,
        state: SessionState,
        on_line: LineHandler,
        on_started: Callable[[], None],
        on_gone: Callable[[], None],
        busy: Callable[[], bool],
    ) -> None:
        self.s = settings
        self.name = settings.session
        self.instance = instance
        self._environ = environ
        self._work_dir = work_dir
        self._state = state
        self._on_line = on_line
        self._on_started = on_started  # a new process: the translator starts over
        self._on_gone = on_gone  # nothing the old process was asked will be answered
        self._busy = busy  # a turn is running
        self.cli: ClaudeProcess | None = None
        self.turns_on_cli = 0
        self.start_failure = ""  # why the last start failed, as the user's sentence
        self.closing = False
        self._lock = asyncio.Lock()

    @property
    def warm(self) -> ClaudeProcess | None:
        """The CLI, if one is running."""
        cli = self.cli
        return cli if cli is not None and cli.running else None

    def close(self) -> None:
        """Shutdown began: no CLI starts from now on."""
        self.closing = True

    async def sweep(self) -> int:
        """The session is over: kill every process with its marker, tools included."""
        return await asyncio.to_thread(procs.sweep_marker, self.name, self.instance)

    async def sweep_stale(self) -> int:
        """Kill every marked CLI but the warm one; the session's tools stay."""
        warm = self.warm
        keep = warm.pid if warm is not None else None
        return await asyncio.to_thread(procs.sweep_stale_clis, self.name, self.instance, keep)

    def put(self, line: bytes) -> bool:
        """One line into the CLI's stdin pipe now (then `drain`); False when there is no CLI to
        take it."""
        if self.cli is None:
            return False
        try:
            self.cli.put(line)
        except CliGone:
            return False
        return True

    async def drain(self) -> bool:
        """Until the CLI's stdin took what `put` gave it; False when the CLI is gone."""
        if self.cli is None:
            return False
        try:
            await self.cli.drain()
        except CliGone:
            return False
        return True

    async def write(self, line: bytes) -> bool:
        """One line to the CLI's stdin; False when there is no CLI to take it."""
        if self.cli is None:
            return False
        try:
            await self.cli.write(line)
        except CliGone:
            return False
        return True

    # ------------------------------------------------------------------- start

    async def ensure(self) -> ClaudeProcess | None:
        """The warm CLI, started (resuming the session's Claude id) if there is none; None when
        it could not start (`start_failure` says why) or the worker is closing."""
        async with self._lock:
            if self.cli is not None and self.cli.running:
                return self.cli
            if self.cli is not None:
                await self.forget(self.cli)
            if self.closing:
                return None
            # Never two CLIs for one Claude session: every CLI with our marker goes first.
            await self.sweep_stale()
            env = build_env(self._environ, self.s.claude_env, self.name, self.instance)
            missing = sandbox.missing_programs(env.get("PATH"))
            if not sandbox.wanted(self.s.persona.sandbox, missing):
                fence = None
            elif missing:
                log.error("event=sandbox_unavailable missing=%r", missing)
                self.start_failure = sandbox.unavailable(self.s.persona.name, missing)
                return None
            else:
                sessions_dir = Path(self.s.state_dir) / "sessions"
                sessions = tuple(sorted(p.name for p in sessions_dir.iterdir() if p.is_dir()))
                # The chat's uploads stay in the session's own work/ (bot.uploads): a session
                # working elsewhere (a project) may still read them.
                own = sessions_dir / self.name / "work"
                readable = () if self._work_dir == own else (str(own / "uploads"),)
                fence = Fence(self.s.state_dir, self.s.runtime_dir, str(self._work_dir),
                              self.s.config_file, self.s.env_file, sessions,
                              tuple(self.s.writable_dirs), readable)
            argv = build_argv(
                self.s.claude_binary,
                self.s.persona,
                self.s.extra_args,
                self._state.claude_session_id,
                fence,
                model=self._state.model_override,
            )
            cli = ClaudeProcess(argv, env, str(self._work_dir), self._on_line)
            try:
                await cli.start()
            except FileNotFoundError as exc:
                log.error("event=cli_missing binary=%r error=%r", self.s.claude_binary, str(exc))
                found = find_binary(self.s.claude_binary, env.get("PATH"))
                self.start_failure = (
                    notices.not_startable(self.s.claude_binary, str(exc))
                    if found
                    else notices.missing_binary(self.s.claude_binary)
                )
                return None
            except OSError as exc:
                log.error(
                    "event=cli_start_failed binary=%r error=%r", self.s.claude_binary, str(exc)
                )
                self.start_failure = notices.not_startable(
                    self.s.claude_binary, exc.strerror or str(exc)
                )
                return None
            self.cli = cli
            self._on_started()
            self.turns_on_cli = 0
            self._state.set_status(Status.RUNNING)
            return cli

    def count_turn(self) -> None:
        self.turns_on_cli += 1

    # ------------------------------------------------------------------- end

    async def forget(self, cli: ClaudeProcess) -> None:
        """After the CLI exited: wait for it, kill a CLI it left, clear what it was asked."""
        if not cli.exited.done():
            await cli.stop(0, self.s.stop_term_wait_seconds, self.s.stop_kill_wait_seconds)
        await cli.aclose()
        if self.cli is cli:
            self.cli = None
        self._on_gone()
        await self.sweep_stale()

    async def stop_this(self, cli: ClaudeProcess) -> None:
        """Stop one CLI politely (close stdin, SIGTERM, SIGKILL) and forget it."""
        await cli.stop(
            self.s.stop_close_wait_seconds,
            self.s.stop_term_wait_seconds,
            self.s.stop_kill_wait_seconds,
        )
        await self.forget(cli)

    async def stop(self, fast: bool = False) -> None:
        async with self._lock:
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
            # The turn runner, if a turn was running, sees the exit and forgets the CLI itself;
            # give it the chance so the inbox is left right.
            if self._busy():
                await asyncio.sleep(0)
            await self.forget(cli)

    async def suspend(self, why: str) -> None:
        """Stop the idle CLI; the next message resumes its conversation by id."""
        if self.cli is None or self._busy():
            return
        log.info("event=suspend reason=%s", why)
        await self.stop()
        self._state.set_status(Status.SUSPENDED)

    async def maybe_recycle(self) -> None:
        """A CLI past its turn or memory limit is suspended between turns."""
        cli = self.cli
        if cli is None or not cli.running or self.closing:
            return
        rss = cli.rss()
        if self.turns_on_cli >= self.s.recycle_turns:
            await self.suspend(f"turns={self.turns_on_cli}")
        elif rss > self.s.recycle_rss_bytes:
            await self.suspend(f"rss={rss}")
