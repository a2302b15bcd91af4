"""Terminal handoff, the worker's part: suspend the CLI for a terminal, and wait while a CLI
outside Switchboard holds the session's Claude session id.

`Terminal.detach` answers the supervisor's `Detach` (for `/handoff` and `switchboardctl
attach`): it refuses while a turn runs or before there is a conversation, else suspends the warm
CLI and answers the command (wire.terminal.resume_command) for the session's cwd, id, binary and
the CLI's environment. `Terminal.wait_while_held` runs before every turn: while another process
resumes our id (found by its command line, wire.terminal.resumes, and not carrying this
session's marker), the message stays queued, the chat hears one sentence, and the turn starts
only after that CLI exited, resuming the conversation with everything the terminal added.

It must never kill or signal the terminal's CLI (it is the user's), never start a CLI while one
holds the id, and never mark a message running while it waits.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pwd
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import psutil

from session_worker.claude_process import build_env
from session_worker.cli_lifecycle import CliLifecycle
from session_worker.emitter import Emitter
from session_worker.state import SessionState
from session_worker.store import InboxItem
from wire import messages as m
from wire.names import INSTANCE_ENV, MARKER_ENV
from wire.settings import WorkerSettings
from wire.terminal import resume_command, resumes

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5
WATCH_SECONDS = 2.0  # how often a warm, idle CLI checks that no terminal took its id


def in_use_sentence(session: str, pid: int) -> str:
    return (f"Session {session}'s conversation is in use at a terminal (claude, pid {pid}): your"
            " message waits and is answered as soon as that claude exits.")


def holder(session_id: str, session: str, instance: str) -> int | None:
    """The pid of a live process outside this session that resumes `session_id`, or None.

    A process with this session's markers is ours (our CLI resumes the same id): never it."""
    me = os.getpid()
    for proc in psutil.process_iter(["cmdline"]):
        if proc.pid == me:
            continue
        cmdline = proc.info.get("cmdline") or []
        if not resumes(cmdline, session_id):
            continue
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
            env = proc.environ()
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        except (psutil.AccessDenied, OSError):
            env = {}  # not ours to read, so not ours: another user's claude on this id
        if env.get(MARKER_ENV) == session and env.get(INSTANCE_ENV, "") == instance:
            continue
        return int(proc.pid)
    return None


def user_home() -> str:
    """The home a terminal of this user starts in (not $HOME, which the config may change)."""
    try:
        return pwd.getpwuid(os.getuid()).pw_dir
    except KeyError:
        return os.path.expanduser("~")


class Terminal:
    def __init__(self, settings: WorkerSettings, environ: Mapping[str, str], instance: str,
                 work_dir: Path, state: SessionState, cli: CliLifecycle, out: Emitter,
                 busy: Callable[[], bool]) -> None:
        self.s = settings
        self.name = settings.session
        self._environ = environ
        self._instance = instance
        self._work_dir = work_dir
        self._state = state
        self._cli = cli
        self._out = out
        self._busy = busy
        self.held_pid: int | None = None  # the terminal's claude we are waiting for
        self._next_watch = 0.0

    def command(self, session_id: str) -> str:
        env = build_env(self._environ, self.s.claude_env, self.name, self._instance)
        return resume_command(str(self._work_dir), session_id, self.s.claude_binary, env,
                              user_home())

    async def detach(self, msg: m.Detach) -> m.Ok | m.Error:
        """Suspend the CLI for a terminal and answer the command that continues it there."""
        sid = self._state.claude_session_id
        if not sid:
            return m.Error(id=msg.id, code=m.E_STATE, message=f"Session {self.name} has no"
                           " conversation yet: send it a message first, then hand it off.")
        if self._busy():
            return m.Error(id=msg.id, code=m.E_STATE, message=f"Session {self.name} is"
                           " answering a message: wait for the answer (or /cancel it), then"
                           " hand it off again.")
        await self._cli.suspend("handoff")
        if self._cli.warm is not None:  # a turn started in between: it keeps the CLI
            return m.Error(id=msg.id, code=m.E_STATE, message=f"Session {self.name} started"
                           " answering a message: wait for the answer, then hand it off again.")
        log.info("event=handoff id=%s", sid)
        return m.Ok(id=msg.id, result=m.HandoffResult(
            command=self.command(sid), claude_session_id=sid, cwd=str(self._work_dir)))

    async def _holder(self) -> int | None:
        sid = self._state.claude_session_id
        if not sid or self._cli.warm is not None:
            return None  # our own warm CLI holds it (or there is nothing to hold)
        return await asyncio.to_thread(holder, sid, self.name, self._instance)

    async def wait_while_held(self, item: InboxItem) -> bool:
        """Before `item`'s turn: while a terminal's CLI holds our id, say so once and wait;
        True when it waited (the row is then read again: it may have been edited)."""
        pid = await self._holder()
        if pid is None:
            return False
        log.info("event=held_by_terminal pid=%d key=%s", pid, item.key)
        self.held_pid = pid
        self.announce(item.chat_id, item.key)
        try:
            while pid is not None and not self._cli.closing:
                await asyncio.sleep(POLL_SECONDS)
                pid = await self._holder()
                self.held_pid = pid or self.held_pid
        finally:
            self.held_pid = None
        log.info("event=terminal_released key=%s", item.key)
        return True

    def announce(self, chat_id: int | None, key: str) -> None:
        """Tell the chat that this message waits for the terminal (each message once)."""
        if self.held_pid is not None:
            self._out.notice("info", in_use_sentence(self.name, self.held_pid), chat_id=chat_id,
                             key=key)

    async def watch_warm(self) -> None:
        """From the watchdog: a terminal's claude resumed our id while our CLI is warm and idle
        (the user ran `claude --resume` without /handoff): our CLI steps aside at once, so the
        next message waits for the terminal instead of writing to the same conversation."""
        now = time.monotonic()
        if now < self._next_watch:
            return
        self._next_watch = now + WATCH_SECONDS
        sid = self._state.claude_session_id
        if not sid or self._cli.warm is None or self._busy() or self._cli.closing:
            return
        pid = await asyncio.to_thread(holder, sid, self.name, self._instance)
        if pid is not None and not self._busy():
            log.warning("event=terminal_took_over pid=%d", pid)
            await self._cli.suspend("terminal")
