"""One Claude CLI process: its command line, its environment, its pipes and its death.

`ClaudeProcess` starts `claude -p --input-format stream-json ...` in the session's cwd, drains
stdout and stderr concurrently at all times (chunked reads into a LineFramer: no line-size
cliff), hands each stdout line to a callback, and stops the process in the documented order:
close stdin, wait, SIGTERM, wait, SIGKILL, wait. The CLI gets PR_SET_PDEATHSIG=SIGKILL so it
never outlives a killed worker.

It must never interpret the CLI's events (that is stream_json.py and router.py) nor decide what a
turn is (that is turns.py and policy.py), and never leave the process unwaited (no zombie).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable, Mapping

import psutil

from session_worker import mcp_tools, procs
from session_worker.fence import Fence, settings_arg
from session_worker.stream_json import LineFramer, Oversized
from wire.messages import Persona
from wire.names import INSTANCE_ENV, MARKER_ENV

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024
STDERR_LINE_MAX = 64 * 1024
STDERR_TAIL = 20
READER_GRACE = 1.0  # after exit, how long an orphan holding our pipes may delay EOF

BASE_FLAGS = [
    "-p",
    "--input-format",
    "stream-json",
    "--output-format",
    "stream-json",
    "--verbose",
    "--include-partial-messages",
    "--permission-prompt-tool",
    "stdio",
]
# Never handed to the CLI (and so to every tool it runs): Switchboard's own settings and secrets.
SECRET_PREFIXES = ("SWITCHBOARD_", "TELEGRAM_")


def build_argv(
    binary: str, persona: Persona, extra_args: list[str], resume_id: str | None,
    fence: Fence | None = None, model: str = "",
) -> list[str]:
    """The CLI's command line. Tool lists come before a fixed flag so their variadic option
    cannot swallow anything else (`--mcp-config` is variadic too). `model` (the session's /model
    choice) wins over the persona's. With a `fence`, the session's tools run in Claude Code's
    sandbox (session_worker.fence); `extra_args` come after it, so the owner's config has the
    last word."""
    argv = [binary]
    if persona.allowed_tools:
        argv += ["--allowedTools", *persona.allowed_tools]
    if persona.disallowed_tools:
        argv += ["--disallowedTools", *persona.disallowed_tools]
    # Switchboard's own tools (session_worker.mcp_tools), served over the control channel and
    # pre-approved; a repeated --allowedTools adds to the persona's list.
    argv += ["--allowedTools", mcp_tools.ALLOWED, "--mcp-config", mcp_tools.mcp_config()]
    argv += BASE_FLAGS
    if persona.append_system_prompt:
        argv += ["--append-system-prompt", persona.append_system_prompt]
    if model or persona.model:
        argv += ["--model", model or persona.model or ""]
    if persona.permission_mode:
        argv += ["--permission-mode", persona.permission_mode]
    if fence is not None:
        argv += ["--settings", settings_arg(fence)]
    argv += list(extra_args)
    if resume_id:
        argv.append(f"--resume={resume_id}")
    return argv


def build_env(base: Mapping[str, str], extra: Mapping[str, str], session: str,
              instance: str = "") -> dict[str, str]:
    """The worker's environment without Switchboard's variables, plus the configured extras,
    plus the markers every descendant inherits (session name, and which Switchboard)."""
    env = {k: v for k, v in base.items() if not k.upper().startswith(SECRET_PREFIXES)}
    env.update(extra)  # configured by the supervisor on purpose: passed as given
    env[MARKER_ENV] = session
    if instance:
        env[INSTANCE_ENV] = instance
    return env


LineHandler = Callable[[bytes | Oversized], Awaitable[None]]


class CliGone(RuntimeError):
    """The CLI is not there to take input (it exited or its stdin is closed)."""


class ClaudeProcess:
    def __init__(
        self,
        argv: list[str],
        env: dict[str, str],
        cwd: str,
        on_line: LineHandler,
        max_line: int | None = None,
    ) -> None:
        self.argv = argv
        self.env = env
        self.cwd = cwd
        self._on_line = on_line
        self._framer = LineFramer(max_line) if max_line else LineFramer()
        self._proc: asyncio.subprocess.Process | None = None
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL)
        self.stdout_lines = 0
        self.started_at = 0.0
        self.last_output = 0.0
        self.returncode: int | None = None
        self.exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    @property
    def running(self) -> bool:
        return self._proc is not None and not self.exited.done()

    async def start(self) -> None:
        """Spawn the CLI; FileNotFoundError, PermissionError or NotADirectoryError: the caller's."""
        self._proc = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=self.cwd,
            env=self.env,
            limit=CHUNK,
            start_new_session=True,
            preexec_fn=procs.child_preexec,
        )
        self.started_at = self.last_output = time.monotonic()
        log.info("event=cli_started pid=%d argv=%r", self._proc.pid, _argv_for_log(self.argv))
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._read_stdout(), name="cli-stdout"),
            loop.create_task(self._read_stderr(), name="cli-stderr"),
        ]
        self._watcher = loop.create_task(self._watch(), name="cli-watch")

    async def _read_stdout(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        reader = self._proc.stdout
        while True:
            chunk = await reader.read(CHUNK)
            if not chunk:
                break
            self.last_output = time.monotonic()
            for line in self._framer.feed(chunk):
                await self._deliver(line)
        for line in self._framer.finish():
            await self._deliver(line)

    async def _deliver(self, line: bytes | Oversized) -> None:
        self.stdout_lines += 1
        try:
            await self._on_line(line)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("event=line_handler_failed")

    async def _read_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        reader = self._proc.stderr
        framer = LineFramer(STDERR_LINE_MAX)
        while True:
            chunk = await reader.read(CHUNK)
            if not chunk:
                break
            self.last_output = time.monotonic()
            for line in framer.feed(chunk):
                self._stderr_line(line)
        for line in framer.finish():
            self._stderr_line(line)

    def _stderr_line(self, line: bytes | Oversized) -> None:
        text = (
            f"<{line.size} bytes>"
            if isinstance(line, Oversized)
            else line.decode("utf-8", "replace")
        ).rstrip()
        if text:
            self.stderr_tail.append(text[:500])
            log.info("event=cli_stderr pid=%s line=%r", self.pid, text[:2000])

    async def _watch(self) -> None:
        assert self._proc is not None
        rc = await self._proc.wait()
        # Let the readers deliver what the CLI printed before it died; an orphan that inherited
        # the pipes must not keep us waiting for EOF.
        _done, pending = await asyncio.wait(self._tasks, timeout=READER_GRACE)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
        self.returncode = rc
        log.info("event=cli_exited pid=%d rc=%d", self._proc.pid, rc)
        if not self.exited.done():
            self.exited.set_result(rc)

    def put(self, data: bytes) -> None:
        """Hand `data` to stdin's pipe now, without waiting (then `drain`); CliGone when there
        is no stdin to take it."""
        if self._proc is None or self._proc.stdin is None or self.exited.done():
            raise CliGone("the CLI is not running")
        stdin = self._proc.stdin
        if stdin.is_closing():
            raise CliGone("the CLI's stdin is closed")
        stdin.write(data)

    async def drain(self) -> None:
        """Until the pipe took what `put` gave it (the CLI reads its stdin)."""
        stdin = self._proc.stdin if self._proc is not None else None
        if stdin is None:
            raise CliGone("the CLI is not running")
        try:
            await stdin.drain()
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise CliGone(f"the CLI's stdin is gone ({exc})") from None

    async def write(self, data: bytes) -> None:
        self.put(data)
        await self.drain()

    def rss(self) -> int:
        try:
            return int(psutil.Process(self.pid).memory_info().rss) if self.pid else 0
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return 0

    def kill_now(self) -> None:
        self._signal(signal.SIGKILL)

    def _signal(self, sig: int) -> None:
        if self._proc is not None and self._proc.returncode is None:
            try:
                os.kill(self._proc.pid, sig)
            except ProcessLookupError:
                pass

    async def stop(self, close_wait: float, term_wait: float, kill_wait: float) -> int | None:
        """Close stdin, wait; SIGTERM, wait; SIGKILL, wait. Returns the exit code (None: still
        there after all three, which only a process stuck in the kernel can do)."""
        if self._proc is None:
            return None
        self._stopping = True
        if not self.exited.done():
            if self._proc.stdin is not None and not self._proc.stdin.is_closing():
                self._proc.stdin.close()
            for sig, wait in (
                (None, close_wait),
                (signal.SIGTERM, term_wait),
                (signal.SIGKILL, kill_wait),
            ):
                if sig is not None:
                    log.info(
                        "event=cli_signal pid=%d sig=%s", self._proc.pid, signal.Signals(sig).name
                    )
                    self._signal(sig)
                try:
                    await asyncio.wait_for(asyncio.shield(self.exited), max(wait, 0.01))
                    break
                except TimeoutError:
                    continue
        if not self.exited.done():
            log.error("event=cli_unkillable pid=%d", self._proc.pid)
            return None
        return self.exited.result()

    async def aclose(self) -> None:
        """Cancel the reader tasks after the process is gone (tests and shutdown)."""
        for task in [*self._tasks, getattr(self, "_watcher", None)]:
            if task is not None and not task.done():
                task.cancel()
        tasks = [t for t in [*self._tasks, getattr(self, "_watcher", None)] if t is not None]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


def _argv_for_log(argv: list[str]) -> list[str]:
    """The system prompt can be long; the log needs the flags, not the prose."""
    out = []
    for a in argv:
        out.append(a if len(a) <= 80 else a[:77] + "...")
    return out
