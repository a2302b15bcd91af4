"""The supervisor's sweep: every interval (or when poked) the psutil watcher looks at each
session's process tree in a thread (supervisor.watcher), and what it reports is acted on here:
usage kept for `status`, orphans and idle CLIs logged, a session over its memory limit told why,
zombies reaped. A part of Supervisor (a mixin): it shares the Supervisor's state and never
blocks its loop.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import TYPE_CHECKING

from supervisor.health import Health
from supervisor.part import SupervisorPart
from supervisor.states import RUNNING_STATES, State
from supervisor.watcher import Limits, MemoryKill, Target, Watcher
from wire import names
from wire.aio import wait_event
from wire.settings import MB

if TYPE_CHECKING:
    pass

log = logging.getLogger("supervisor.service")


class Sweeping(SupervisorPart):
    if TYPE_CHECKING:  # more of the Supervisor that this part uses
        watcher: Watcher
        sweeps: int
        _sweep_lock: asyncio.Lock
        _poke: asyncio.Event

    def _targets(self) -> list[Target]:
        now = time.monotonic()
        out = []
        for name, prog in self.programs.items():
            _, session = names.parse_program(name)
            h = self.health.get(name) or Health()
            st = h.stats
            out.append(Target(
                program=name, session=session, pid=prog.pid,
                alive=prog.state in RUNNING_STATES and prog.child is not None,
                keeps_tree=prog.state in RUNNING_STATES or prog.state is State.BACKOFF,
                claude_pid=st.claude_pid if st else None,
                idle_seconds=(st.idle_seconds + now - h.stats_at) if st else None,
            ))
        return out

    async def sweep_once(self) -> None:
        # One sweep at a time: the watcher's caches are not for two threads, and a stop's own
        # sweep (commands) may meet the periodic one.
        async with self._sweep_lock:
            await self._sweep()

    async def _sweep(self) -> None:
        targets = self._targets()
        managed = {p.pid for p in self.programs.values() if p.pid and p.child is not None}
        limits = Limits(self.cfg.claude.idle_suspend_seconds,
                        self.cfg.supervisor.worker_rss_limit_mb * MB)
        report = await asyncio.to_thread(self.watcher.sweep, targets, limits, managed)
        for name, usage in report.usage.items():
            if name in self.health:
                self.health[name].usage = usage
        for pid, session, pname, why in report.orphans_killed:
            log.warning("event=orphan_killed pid=%d session=%s name=%s why=%r", pid, session,
                        pname, why)
        for name, cli_pid in report.idle_killed:
            log.warning("event=idle_cli_killed program=%s claude_pid=%d", name, cli_pid)
        for kill in report.over_rss:
            self._memory_kill(kill)
        live = {p.pid for p in self.programs.values() if p.child is not None}
        for pid in report.zombies:
            if pid not in live:
                try:
                    os.waitpid(pid, os.WNOHANG)  # noqa: ASYNC222 - WNOHANG never blocks
                except ChildProcessError:
                    pass
        self.sweeps += 1

    def _memory_kill(self, kill: MemoryKill) -> None:
        """A session over its memory limit: the watcher killed its biggest process (or names
        its worker, killed here as a visible crash); its chat hears which one and why."""
        prog = self.programs.get(kill.program)
        if prog is None:
            return
        limit = self.cfg.supervisor.worker_rss_limit_mb
        k = kill.killed
        what = ("its worker" if k.role == "worker" else f"its {k.role} {k.name}") + \
            f" (pid {k.pid}, {k.rss_bytes // MB} MB)"
        log.warning("event=memory_kill program=%s total_mb=%d limit_mb=%d role=%s pid=%d name=%s",
                    kill.program, kill.total_bytes // MB, limit, k.role, k.pid, k.name)
        _, session = names.parse_program(kill.program)
        restart = "; it restarts" if k.role == "worker" else ""
        self.notices.setdefault(kill.program, []).append(
            f"Session {session} used {kill.total_bytes // MB} MB, over its {limit} MB limit"
            f" (supervisor.worker_rss_limit_mb): killed {what}{restart}; raise the limit if it"
            " needs more.")
        if k.role == "worker":
            prog.kill(f"RSS {kill.total_bytes // MB} MB over the {limit} MB limit")

    async def _sweeper(self) -> None:
        while True:
            await wait_event(self._poke, self.cfg.supervisor.sweep_interval_seconds)
            self._poke.clear()
            try:
                await self.sweep_once()
            except Exception:
                log.exception("event=sweep_failed")
