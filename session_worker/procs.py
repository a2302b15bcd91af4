"""Process hygiene: die with the parent, and find the processes a session's CLI started.

The CLI's Bash tool starts its shells with `setsid`, so a process group kill misses them; but
every descendant inherits the CLI's environment, and the worker puts
`SWITCHBOARD_SESSION=<name>` (wire.names.MARKER_ENV) in it. Two sweeps, by that marker:
- `sweep_stale_clis` (before every CLI start, after every CLI exit, at the worker's start-up)
  kills only marked processes that are a CLI (wire.names.is_session_cli): one CLI per Claude
  session id. The tools those CLIs started (a `nohup` server, a `setsid` job) belong to the
  session and live while it runs, across a CLI suspend or a worker crash.
- `sweep_marker` (when the worker stops) kills every marked process: the session is over.
It must never touch a process without the marker, and never the calling process itself.
"""

from __future__ import annotations

import logging
import os
import signal
import time

import psutil

from wire import lifetime
from wire.names import INSTANCE_ENV, MARKER_ENV, is_session_cli

log = logging.getLogger(__name__)


def set_pdeathsig(sig: int = signal.SIGKILL) -> bool:
    """Ask the kernel to send `sig` to this process when its parent (thread) dies. Linux only.
    (wire.lifetime does it for every role; the name stays here for the worker's callers.)"""
    return lifetime.set_pdeathsig(sig)


def child_preexec() -> None:
    """preexec_fn for the CLI: it dies with the worker, even when the worker is SIGKILLed."""
    set_pdeathsig(signal.SIGKILL)


def pid_alive(pid: int) -> bool:
    try:
        proc = psutil.Process(pid)
        return bool(proc.status() != psutil.STATUS_ZOMBIE)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def marked(session: str, instance: str = "",
           exclude: set[int] | None = None) -> list[psutil.Process]:
    """Every live process whose environment carries this session's marker (and, when given,
    this Switchboard's instance marker: another installation's session of the same name is
    not ours)."""
    skip = {os.getpid()} | (exclude or set())
    found = []
    for proc in psutil.process_iter():
        if proc.pid in skip:
            continue
        try:
            env = proc.environ()
            if (env.get(MARKER_ENV) == session and env.get(INSTANCE_ENV, "") == instance
                    and proc.status() != psutil.STATUS_ZOMBIE):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, OSError):
            continue
    return found


def _cli(proc: psutil.Process) -> bool:
    try:
        return is_session_cli(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, OSError):
        return False


def sweep_stale_clis(session: str, instance: str = "", keep: int | None = None,
                     timeout: float = 2.0) -> int:
    """SIGKILL every marked CLI but `keep` (the worker's current one, if any) and wait for them;
    returns how many were found. The session's tool processes are left alone."""
    exclude = {keep} if keep else set()
    return _kill_all([p for p in marked(session, instance, exclude) if _cli(p)], timeout)


def sweep_marker(session: str, instance: str = "", timeout: float = 2.0) -> int:
    """SIGKILL every process with the marker and wait for them; returns how many were found.

    SIGKILL at once: these are leftovers (the CLI itself was already stopped politely).
    """
    return _kill_all(marked(session, instance), timeout)


def _kill_all(procs: list[psutil.Process], timeout: float) -> int:
    for proc in procs:
        try:
            log.info("event=sweep_kill pid=%d name=%s", proc.pid, proc.name())
            proc.send_signal(signal.SIGKILL)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    if procs:
        deadline = time.monotonic() + timeout
        alive = procs
        while True:
            _gone, alive = psutil.wait_procs(alive, timeout=0)  # reaps those that are ours
            alive = [p for p in alive if not _dead(p)]
            if not alive or time.monotonic() >= deadline:
                break
            time.sleep(0.02)
        for proc in alive:
            log.warning("event=sweep_survivor pid=%d", proc.pid)
    return len(procs)


def _dead(proc: psutil.Process) -> bool:
    """Gone, or a zombie that only its parent can reap (a tool reparented to an init that reaps
    late): SIGKILLed and dead either way, so a stop need not wait for it."""
    try:
        if not proc.is_running():
            return True
        return bool(proc.status() == psutil.STATUS_ZOMBIE and proc.ppid() != os.getpid())
    except psutil.NoSuchProcess:
        return True
    except psutil.AccessDenied:
        return False


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.02)
    return not pid_alive(pid)
