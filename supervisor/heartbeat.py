"""The supervisor's heartbeat: every child registers once and answers a Ping each interval
(carrying the sentences queued for its chat); one silent past the timeout, or that says it is
unhealthy, is killed as a visible crash. A child still starting has a grace period. The bot's
own stderr sentence while it cannot reach Telegram becomes the lifeline's "retrying" line.
A part of Supervisor (a mixin) that shares its state.
"""
from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from supervisor.health import last_words
from supervisor.part import SupervisorPart
from supervisor.states import State
from wire import messages as m
from wire import names

if TYPE_CHECKING:
    from supervisor.health import Health
    from supervisor.notify import Notifier
    from supervisor.program import Program

log = logging.getLogger("supervisor.service")

# A child that has not spoken yet is still starting (Python and its imports; on a loaded box, or
# the bot loading PTB, that can take seconds): the heartbeat timeout starts to count once it has
# registered or answered a Ping, and until then it has at least this long.
START_GRACE_SECONDS = 20.0


class Heartbeat(SupervisorPart):
    if TYPE_CHECKING:  # more of the Supervisor that this part uses
        ready: asyncio.Event
        notifier: Notifier
        _notice_pings: dict[str, tuple[str, list[str]]]

        def summary(self) -> str: ...
        def _stdio(self, program: str) -> Path: ...
        def _push_settings(self, program: str) -> None: ...

    def on_register(self, identity: bytes, msg: m.Register) -> m.Ok | m.Error:
        prog = self.programs.get(msg.program)
        if prog is None or identity != msg.program.encode():
            return m.Error(id=msg.id, code=m.E_UNKNOWN_NAME,
                           message=f"no program '{msg.program}' for this connection's identity.")
        if prog.pid != msg.pid:
            return m.Error(id=msg.id, code=m.E_STATE,
                           message=f"{msg.program} runs as pid {prog.pid}, not {msg.pid}.")
        h = self.health[prog.name]
        h.registered, h.answered, h.last_seen = True, True, time.monotonic()
        log.info("event=registered program=%s pid=%d", msg.program, msg.pid)
        self._push_settings(prog.name)  # spawned before the last reload: catch it up
        return m.Ok(id=msg.id)

    def on_pong(self, identity: bytes, msg: m.Pong) -> None:
        h = self.health.get(identity.decode(errors="replace"))
        if h is None:
            return
        if msg.unhealthy:
            # Alive but unable to keep its promise (its database takes no writes): treated as a
            # missed heartbeat, at once, so it restarts instead of looking healthy.
            prog = self.programs.get(identity.decode(errors="replace"))
            if prog is not None and prog.kill(f"unhealthy: {msg.unhealthy}"):
                log.warning("event=unhealthy program=%s pid=%s reason=%r", prog.name, prog.pid,
                            msg.unhealthy)
            return
        h.last_seen, h.answered = time.monotonic(), True
        sent = self._notice_pings.get(identity.decode(errors="replace"))
        if sent is not None and sent[0] == msg.id:
            # The worker has them (it emitted them as Notices): they leave the queue.
            left = self.notices.get(identity.decode(errors="replace"), [])
            del left[:len(sent[1])]
        if msg.stats is not None:
            h.stats, h.stats_at = msg.stats, h.last_seen

    async def _heartbeat(self) -> None:
        while True:
            s = self.cfg.supervisor
            await asyncio.sleep(s.heartbeat_interval_seconds)
            now = time.monotonic()
            for name, prog in list(self.programs.items()):
                if prog.state not in (State.STARTING, State.RUNNING):
                    continue
                h = self.health[name]
                silent = now - h.last_seen
                limit = s.heartbeat_timeout_seconds
                if not h.answered:
                    limit = max(limit, START_GRACE_SECONDS)
                if silent > limit:
                    log.warning("event=heartbeat_timeout program=%s pid=%s silent=%.1f",
                                name, prog.pid, silent)
                    prog.kill(f"no heartbeat for {silent:.0f}s")
                    continue
                if name == names.BOT_PROGRAM and prog.state is State.RUNNING:
                    self._note_bot_trouble(prog, h)
                await self.control.send(name.encode(), self._ping(name))

    def _ping(self, name: str) -> m.Ping:
        ping = m.Ping(id=m.new_id())
        pending = self.notices.get(name)
        if pending:
            ping.notice = " ".join(pending)
            self._notice_pings[name] = (ping.id, list(pending))
        return ping

    def _note_bot_trouble(self, prog: Program, h: Health) -> None:
        """A live bot that has not registered is still trying to reach Telegram, and says why on
        stderr: keep that sentence so `status` and STATUS= show the lifeline retrying."""
        trouble = "" if h.registered else last_words(self._stdio(prog.name), h.stdio_since)
        if trouble != prog.live_trouble:
            prog.live_trouble = trouble
            if self.ready.is_set():
                self.notifier.status(self.summary())
