"""The psutil sweep: orphans, idle CLIs, fat workers, zombies, and the CPU/RSS numbers for status.

`Watcher.sweep` is plain blocking psutil code; the supervisor runs it in a worker thread every
`sweep_interval_seconds` (and at once after a session stops) and applies what it reports on the
event loop. It kills processes directly only when they cannot be a program we supervise:
processes carrying a session marker that no current worker owns, and a CLI that its worker
should have suspended long ago. Programs themselves are killed by the loop, through their
state machine, so the kill is a visible, restarted crash.

An orphan is a process in our subtree (we are the child subreaper, so a worker's leftovers are
reparented to us) whose environment has SWITCHBOARD_SESSION=<name> while that session is not
running, or that is not a descendant of that session's current worker (a CLI or a `setsid`
Bash-tool child left behind by a worker that died). Ancestry is checked per candidate, at the
moment of the kill decision, so a CLI the worker spawned a millisecond ago is never mistaken.
"""
from __future__ import annotations

import logging
import os
import signal
from dataclasses import dataclass, field

import psutil

from wire.names import INSTANCE_ENV, MARKER_ENV

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Target:
    """What the sweep needs to know about one program, copied from the loop before a sweep."""

    program: str
    session: str | None
    pid: int | None
    alive: bool  # its processes are supposed to exist (STARTING, RUNNING, STOPPING)
    claude_pid: int | None = None
    idle_seconds: float | None = None  # as reported in the last Pong, aged to now


@dataclass(frozen=True)
class Limits:
    idle_suspend_seconds: float
    rss_limit_bytes: int = 0  # 0: no limit

    @property
    def idle_grace(self) -> float:
        # The worker suspends on its own; we step in only when it is clearly not doing so.
        return min(60.0, max(2.0, 0.5 * self.idle_suspend_seconds))


@dataclass
class Usage:
    cpu_percent: float = 0.0
    rss_bytes: int = 0
    worker_rss_bytes: int = 0


@dataclass
class Report:
    usage: dict[str, Usage] = field(default_factory=dict)
    orphans_killed: list[tuple[int, str, str]] = field(default_factory=list)  # pid, session, name
    idle_killed: list[tuple[str, int]] = field(default_factory=list)  # program, claude pid
    over_rss: list[tuple[str, int]] = field(default_factory=list)  # program, worker rss
    zombies: list[int] = field(default_factory=list)  # our children, not ours to watch


def _is_descendant(proc: psutil.Process, ancestor: int) -> bool:
    try:
        return any(p.pid == ancestor for p in proc.parents())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def _kill(proc: psutil.Process) -> bool:
    try:
        proc.send_signal(signal.SIGKILL)
        return True
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def kill_instance_leftovers(instance: str) -> list[tuple[int, str]]:
    """Kill what an earlier supervisor of this installation left behind (it was SIGKILLed and
    its setsid grandchildren were reparented to init): processes carrying our instance marker.
    Called once at start, before any worker runs, so nothing found can be a live session's."""
    me = os.getpid()
    killed: list[tuple[int, str]] = []
    for proc in psutil.process_iter():
        if proc.pid == me:
            continue
        try:
            env = proc.environ()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, OSError):
            continue
        if env.get(INSTANCE_ENV) == instance and _kill(proc):
            killed.append((proc.pid, env.get(MARKER_ENV, "")))
    return killed


class Watcher:
    def __init__(self) -> None:
        self._me = os.getpid()
        self._uid = os.getuid()
        self._cache: dict[int, psutil.Process] = {}  # cpu_percent needs the same object each time
        self._kids: dict[int, list[int]] = {}

    def _proc(self, pid: int) -> psutil.Process | None:
        p = self._cache.get(pid)
        if p is not None and p.is_running():
            return p
        try:
            p = psutil.Process(pid)
        except psutil.NoSuchProcess:
            self._cache.pop(pid, None)
            return None
        self._cache[pid] = p
        return p

    def sweep(self, targets: list[Target], limits: Limits, managed: set[int]) -> Report:
        report = Report()
        seen: set[int] = set()
        # One pass over /proc per sweep: psutil's children(recursive=True) rescans every process
        # on each call, which with 100 sessions cost more than everything else together.
        kids: dict[int, list[int]] = {}
        for p in psutil.process_iter(["ppid"]):
            ppid = p.info.get("ppid")
            if ppid:
                kids.setdefault(ppid, []).append(p.pid)
        self._kids = kids
        for t in targets:
            if t.pid is None or not t.alive:
                continue
            report.usage[t.program] = self._usage(t.pid, seen)
            u = report.usage[t.program]
            if limits.rss_limit_bytes and t.session and u.worker_rss_bytes > limits.rss_limit_bytes:
                report.over_rss.append((t.program, u.worker_rss_bytes))
            if (t.claude_pid and t.idle_seconds is not None
                    and t.idle_seconds > limits.idle_suspend_seconds + limits.idle_grace):
                cli = self._proc(t.claude_pid)
                if cli is not None and _is_descendant(cli, t.pid) and _kill(cli):
                    report.idle_killed.append((t.program, t.claude_pid))
        self._orphans(targets, report)
        self._zombies(managed, report)
        for pid in list(self._cache):
            if pid not in seen:
                del self._cache[pid]
        return report

    def _usage(self, pid: int, seen: set[int]) -> Usage:
        u = Usage()
        root = self._proc(pid)
        if root is None:
            return u
        for p_pid in self._subtree(pid):
            cached = self._proc(p_pid)
            if cached is None:
                continue
            seen.add(p_pid)
            try:
                with cached.oneshot():
                    u.cpu_percent += cached.cpu_percent(interval=None)
                    rss = cached.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            u.rss_bytes += rss
            if p_pid == pid:
                u.worker_rss_bytes = rss
        return u

    def _subtree(self, root: int) -> list[int]:
        out, todo = [root], [root]
        while todo:
            for child in self._kids.get(todo.pop(), ()):
                out.append(child)
                todo.append(child)
        return out

    def _orphans(self, targets: list[Target], report: Report) -> None:
        # Only our own subtree: we are the subreaper, so whatever our workers leave behind is
        # reparented to us. Another supervisor's sessions (same user, other state dir, a test
        # run next to a real deployment) are never touched, even if their names match.
        owners = {t.session: t for t in targets if t.session}
        for pid in self._subtree(self._me)[1:]:
            try:
                proc = psutil.Process(pid)
                session = proc.environ().get(MARKER_ENV)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, OSError):
                continue
            if not session:
                continue
            owner = owners.get(session)
            if (owner is not None and owner.alive and owner.pid is not None
                    and (proc.pid == owner.pid or _is_descendant(proc, owner.pid))):
                continue
            name = ""
            try:
                name = proc.name()
            except psutil.Error:
                pass
            if _kill(proc):
                report.orphans_killed.append((proc.pid, session, name))

    def _zombies(self, managed: set[int], report: Report) -> None:
        try:
            children = psutil.Process(self._me).children()
        except psutil.Error:
            return
        for c in children:
            if c.pid in managed:
                continue
            try:
                if c.status() == psutil.STATUS_ZOMBIE:
                    report.zombies.append(c.pid)
            except psutil.Error:
                continue
