"""The OS side of a program: fork+exec a child and learn of its exit the moment it happens.

Children are `[sys.executable, "-m", module]`, spawned with subprocess (vfork+exec, never a bare
fork of this asyncio process), in their own session so a Ctrl-C at the terminal reaches only the
supervisor (which then stops them in order), stdin from /dev/null and stdout/stderr appended to a
0600 file (a pipe nobody drains would block them; the supervisor rolls it over before a spawn
when it is past the logs' size limit, wire.logs.rotate_if_over). No preexec hook, so that
Python can use vfork (a restart is ~3 ms faster): each child sets its own parent-death signal
at start and exits if its parent is already gone (wire.lifetime).

A secret (the bot token) never goes into a child's environment, where `/proc/<pid>/environ`
keeps it for the child's whole life: `secret_pipe` writes it into a pipe and `spawn` hands the
read end over by fd number (`pass_fds`); the child reads it once and closes it.

Exit detection is a pidfd registered with the event loop: readable the instant the child dies,
then reaped with waitpid. No timer, no polling, no SIGCHLD handler.
"""
from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from supervisor.program import SpawnError

log = logging.getLogger(__name__)

PR_SET_CHILD_SUBREAPER = 36
_libc = ctypes.CDLL(None, use_errno=True)
_prctl = _libc.prctl
_prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]


def become_subreaper() -> None:
    """Orphaned descendants (a CLI whose worker died) get reparented to us, so the sweep sees and
    reaps them instead of init."""
    if _prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        log.warning("event=subreaper_failed errno=%d", ctypes.get_errno())


class OsChild:
    """A spawned process; calls `on_exit(code)` once, from the event loop, when it is reaped."""

    def __init__(self, popen: subprocess.Popen[bytes], loop: asyncio.AbstractEventLoop,
                 on_exit: Callable[[int], None]) -> None:
        self.popen = popen
        self.pid = popen.pid
        self._loop = loop
        self._on_exit = on_exit
        self._fd = os.pidfd_open(self.pid)
        self.returncode: int | None = None
        loop.add_reader(self._fd, self._readable)

    def signal(self, sig: int) -> None:
        if self.returncode is not None:
            raise ProcessLookupError(self.pid)
        # pidfd_send_signal cannot hit a recycled pid: the fd names this very process.
        signal.pidfd_send_signal(self._fd, sig)

    def _readable(self) -> None:
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            pid, status = self.pid, 0  # reaped elsewhere; we cannot know how it ended
        if pid == 0:
            return  # spurious wakeup: not dead yet
        self._loop.remove_reader(self._fd)
        os.close(self._fd)
        code = os.waitstatus_to_exitcode(status)
        self.returncode = code
        self.popen.returncode = code  # so Popen never tries to reap it again
        self._on_exit(code)


def secret_pipe(secret: bytes) -> int:
    """A pipe holding `secret`, written and closed: the read end, for `spawn(pass_fds=...)`.

    A token is far below the pipe's buffer, so the write never blocks; the child reads to EOF."""
    read_fd, write_fd = os.pipe()
    try:
        os.set_inheritable(read_fd, False)  # only pass_fds hands it on, to the one child
        view = memoryview(secret)
        while view:
            view = view[os.write(write_fd, view):]
    except OSError:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
    return read_fd


def spawn(
    module: str,
    *,
    env: dict[str, str],
    cwd: Path,
    stdio_path: Path,
    on_exit: Callable[[int], None],
    loop: asyncio.AbstractEventLoop | None = None,
    pass_fds: Sequence[int] = (),
) -> OsChild:
    """Start `python -m module`; raise SpawnError with the reason if it cannot be started.

    Each fd of `pass_fds` (the read ends of the pipes that carry the child's secrets: the bot's
    token, `secret_pipe`, and every child's socket keys, wire.auth.keys_pipe) is inherited by
    the child alone at its own number, and closed here once the child has it (or could not be
    started)."""
    loop = loop or asyncio.get_running_loop()
    try:
        return _spawn(module, env, cwd, stdio_path, on_exit, loop, pass_fds)
    finally:
        _close_all(pass_fds)


def _close_all(fds: Sequence[int]) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def _spawn(module: str, env: dict[str, str], cwd: Path, stdio_path: Path,
           on_exit: Callable[[int], None], loop: asyncio.AbstractEventLoop,
           pass_fds: Sequence[int]) -> OsChild:
    try:
        cwd.mkdir(parents=True, exist_ok=True, mode=0o700)
        stdio_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        out = os.open(stdio_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.fchmod(out, 0o600)  # a file made before (or by hand) is tightened too
    except OSError as exc:
        raise SpawnError(f"cannot prepare {exc.filename}: {exc.strerror}") from None
    try:
        popen = subprocess.Popen(
            [sys.executable, "-m", module],
            env=env,
            cwd=str(cwd),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            close_fds=True,
            pass_fds=tuple(pass_fds),
            start_new_session=True,
        )
    except OSError as exc:
        raise SpawnError(f"{exc.strerror}") from None
    finally:
        os.close(out)
    return OsChild(popen, loop, on_exit)
