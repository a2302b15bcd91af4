"""The psutil sweep: orphans, idle CLIs, fat sessions, zombies, and the CPU/RSS numbers for status.

`Watcher.sweep` is plain blocking psutil code; the supervisor runs it in a worker thread every
`sweep_interval_seconds` (and at once after a session stops) and applies what it reports on the
event loop. It kills processes directly only when they cannot be a program we supervise:
processes carrying a session marker that no running session owns, a stale CLI, a CLI that its
worker should have suspended long ago, and the biggest non-worker process of a session over its
memory limit. Programs themselves are killed by the loop, through their state machine, so the
kill is a visible, restarted crash.

A session owns its process tree: its worker's descendants plus every process in our subtree
(we are the child subreaper, so a `nohup` or `setsid` tool server is reparented to us) whose
environment has SWITCHBOARD_SESSION=<name>. While the session's worker runs or is coming back
(STARTING, RUNNING, STOPPING, BACKOFF) those live, are counted in its memory and listed in
`status -l`; `doomed` (pure) says which marked processes die: every one of a session that is
stopped, exited, FATAL or removed, and a CLI (wire.names.is_session_cli) that is not its
current worker's (one CLI per Claude session id). Ancestry is checked per candidate, at the
moment of the decision, so a CLI the worker spawned a millisecond ago is never mistaken.
"""
from __future__ import annotations

import logging
import os
import signal
from dataclasses import dataclass, field

import psutil

from wire.names import INSTANCE_ENV, MARKER_ENV, is_session_cli

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
    keeps_tree: bool = False  # running or coming back (incl. BACKOFF): its tools stay


@dataclass(frozen=True)
class Marked:
    """A process carrying a session marker, as the sweep found it."""

    pid: int
    session: str
    cli: bool  # its argv is a session CLI's, not a tool's
    in_worker: bool  # the session's current worker or one of its descendants


def doomed(proc: Marked, owner: Target | None) -> str | None:
    """Why a marked process must be killed now, or None when it is its running session's."""
    if owner is None:
        return "its session was removed"
    if not owner.keeps_tree:
        return "its session is not running"
    if proc.cli and not proc.in_worker:
        return "a stale CLI (one CLI per Claude session id)"
    return None


@dataclass(frozen=True)
class Member:
    """One process of a session's tree, with what it is: worker, CLI or tool."""

    pid: int
    name: str
    role: str  # "worker" | "CLI" | "tool"
    rss_bytes: int


def victim(members: list[Member]) -> Member | None:
    """The process to kill when the session's tree is over its memory limit: the biggest (the
    one that grew), the worker only when nothing else is bigger."""
    if not members:
        return None
    return max(members, key=lambda p: (p.rss_bytes, p.role != "worker"))


@dataclass(frozen=True)
class MemoryKill:
    program: str
    total_bytes: int
    killed: Member  # a worker is killed by the loop (a visible crash), the rest here


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
    rss_bytes: int = 0  # the whole tree: worker, CLI, tools
    worker_rss_bytes: int = 0
    clis: list[Member] = field(default_factory=list)
    tools: list[Member] = field(default_factory=list)


@dataclass
class Report:
    usage: dict[str, Usage] = field(default_factory=dict)
    # pid, session, name, why
    orphans_killed: list[tuple[int, str, str, str]] = field(default_factory=list)
    idle_killed: list[tuple[str, int]] = field(default_factory=list)  # program, claude pid
    over_rss: list[MemoryKill] = field(default_factory=list)
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
        marked = self._marked()
        for t in targets:
            if t.pid is None or not t.alive:
                continue
            extra = [pid for pid, (session, _cli) in marked.items() if session == t.session]
            u = report.usage[t.program] = self._usage(t, extra, marked, seen)
            if limits.rss_limit_bytes and t.session and u.rss_bytes > limits.rss_limit_bytes:
                self._over_limit(t, u, report)
            if (t.claude_pid and t.idle_seconds is not None
                    and t.idle_seconds > limits.idle_suspend_seconds + limits.idle_grace):
                cli = self._proc(t.claude_pid)
                if cli is not None and _is_descendant(cli, t.pid) and _kill(cli):
                    report.idle_killed.append((t.program, t.claude_pid))
        self._orphans(targets, marked, report)
        self._zombies(managed, report)
        for pid in list(self._cache):
            if pid not in seen:
                del self._cache[pid]
        return report

    def _marked(self) -> dict[int, tuple[str, bool]]:
        """pid -> (session, is a CLI) for every marked process in our subtree. Only our own
        subtree: another supervisor's sessions (same user, other state dir, a test run next to
        a real deployment) are never touched, even if their names match."""
        out: dict[int, tuple[str, bool]] = {}
        for pid in self._subtree(self._me)[1:]:
            try:
                proc = psutil.Process(pid)
                session = proc.environ().get(MARKER_ENV)
                if session:
                    out[pid] = (session, is_session_cli(proc.cmdline()))
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, OSError):
                continue
        return out

    def _usage(self, t: Target, extra: list[int], marked: dict[int, tuple[str, bool]],
               seen: set[int]) -> Usage:
        """The session's whole tree: the worker's subtree plus its marked processes elsewhere
        in ours (detached tools reparented to us)."""
        assert t.pid is not None
        u = Usage()
        if self._proc(t.pid) is None:
            return u
        pids = self._subtree(t.pid)
        inside = set(pids)
        pids += [p for p in extra if p not in inside]
        for p_pid in pids:
            cached = self._proc(p_pid)
            if cached is None:
                continue
            seen.add(p_pid)
            try:
                with cached.oneshot():
                    u.cpu_percent += cached.cpu_percent(interval=None)
                    rss = cached.memory_info().rss
                    name = cached.name()
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            u.rss_bytes += rss
            if p_pid == t.pid:
                u.worker_rss_bytes = rss
            elif p_pid == t.claude_pid or marked.get(p_pid, ("", False))[1]:
                u.clis.append(Member(p_pid, name, "CLI", rss))
            else:
                u.tools.append(Member(p_pid, name, "tool", rss))
        return u

    def _over_limit(self, t: Target, u: Usage, report: Report) -> None:
        assert t.pid is not None
        members = [Member(t.pid, "worker", "worker", u.worker_rss_bytes), *u.clis, *u.tools]
        chosen = victim(members)
        if chosen is None:
            return
        if chosen.role != "worker":
            proc = self._proc(chosen.pid)
            if proc is None or not _kill(proc):
                return
        report.over_rss.append(MemoryKill(t.program, u.rss_bytes, chosen))

    def _subtree(self, root: int) -> list[int]:
        out, todo = [root], [root]
        while todo:
            for child in self._kids.get(todo.pop(), ()):
                out.append(child)
                todo.append(child)
        return out

    def _orphans(self, targets: list[Target], marked: dict[int, tuple[str, bool]],
                 report: Report) -> None:
        owners = {t.session: t for t in targets if t.session}
        for pid, (session, cli) in marked.items():
            owner = owners.get(session)
            try:
                proc = psutil.Process(pid)
            except psutil.NoSuchProcess:
                continue
            in_worker = bool(owner is not None and owner.alive and owner.pid is not None
                             and (pid == owner.pid or _is_descendant(proc, owner.pid)))
            why = doomed(Marked(pid, session, cli, in_worker), owner)
            if why is None:
                continue
            name = ""
            try:
                name = proc.name()
            except psutil.Error:
                pass
            if _kill(proc):
                report.orphans_killed.append((pid, session, name, why))

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
