"""SIGHUP: the config and personas read again and checked as `run` checks them; what can change
live is pushed to each registered child as a Reload over the control socket (bounded wait for
its answer), what cannot is logged as needing a restart. Also the one way the supervisor asks a
child something and awaits the answer (a Detach for /handoff). A part of Supervisor (a mixin)
that shares its state.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import TYPE_CHECKING

from supervisor import child_settings, preflight
from supervisor import config as config_mod
from supervisor.child_settings import program_config
from supervisor.part import SupervisorPart
from wire import messages as m
from wire import names, settings

if TYPE_CHECKING:
    from supervisor.program import Program
    from supervisor.projects import Place

log = logging.getLogger("supervisor.service")

RELOAD_ANSWER_SECONDS = 5.0


class Reloading(SupervisorPart):
    if TYPE_CHECKING:  # more of the Supervisor that this part uses
        personas: dict[str, m.Persona]
        generation: int
        _tasks: asyncio.TaskGroup | None
        _loop: asyncio.AbstractEventLoop
        _answers: dict[str, tuple[bytes, asyncio.Future[m.Ok | m.Error]]]
        _reloads: set[asyncio.Task[None]]

        def add_program(self, name: str) -> Program: ...
        def drop_program(self, name: str) -> None: ...
        def place_of(self, session: str) -> Place | None: ...
        def persona_of(self, session: str) -> m.Persona: ...
        async def wait_stopped(self, prog: Program) -> bool: ...

    def _on_sighup(self) -> None:
        try:
            # What `run` refuses, a reload refuses: never a bot that cannot log in.
            cfg, personas = preflight.load(self.cfg.path, to_run=True)
        except preflight.Refused as exc:
            log.error("event=reload_refused error=%r", exc.detail)
            return
        for key in config_mod.restart_needed(self.cfg, cfg):
            log.warning("event=reload_needs_restart field=%s restart=%r", key,
                        config_mod.RESTART_FIELDS[key])
        for key in ("state_dir", "runtime_dir"):
            setattr(cfg, key, getattr(self.cfg, key))  # what the sockets and locks were made for
        if not cfg.telegram.enabled and names.BOT_PROGRAM in self.programs and self._tasks:
            self._tasks.create_task(self._retire_bot(), name="retire-bot")
        self.cfg, self.personas = cfg, personas
        self.generation += 1
        for n, p in self.programs.items():
            p.set_config(program_config(cfg, lifeline=n == names.BOT_PROGRAM))
        if cfg.telegram.enabled and names.BOT_PROGRAM not in self.programs:
            self.add_program(names.BOT_PROGRAM).start()
        log.info("event=reloaded personas=%d generation=%d", len(personas), self.generation)
        # The running children get their new settings now (a child not registered yet gets them
        # when it registers): a user taken off the allow-list is refused at the next message.
        for name, h in self.health.items():
            if h.registered:
                self._push_settings(name)

    def _settings_for(self, program: str) -> str:
        kind, session = names.parse_program(program)
        if kind == "bot":
            return settings.dump(child_settings.bot_settings(self.cfg, os.getpid()))
        assert session is not None
        return settings.dump(child_settings.worker_settings(
            self.cfg, session, self.persona_of(session), os.getpid(), self.place_of(session)))

    def _push_settings(self, program: str) -> None:
        h = self.health.get(program)
        if self._tasks is None or h is None or h.generation >= self.generation:
            return
        task = self._tasks.create_task(self._reload_child(program, self.generation),
                                       name=f"reload-{program}")
        self._reloads.add(task)
        task.add_done_callback(self._reloads.discard)

    async def _reload_child(self, program: str, generation: int) -> None:
        """Send one child its settings of `generation` and wait (bounded) for its answer."""
        msg = m.Reload(id=m.new_id(), settings_json="")
        fut: asyncio.Future[m.Ok | m.Error] = self._loop.create_future()
        self._answers[msg.id] = (program.encode(), fut)
        try:
            msg.settings_json = self._settings_for(program)
            if not await self.control.send(program.encode(), msg):
                log.warning("event=reload_not_sent program=%s", program)
                return
            async with asyncio.timeout(RELOAD_ANSWER_SECONDS):
                reply = await fut
        except TimeoutError:
            log.warning("event=reload_unanswered program=%s", program)
            return
        except Exception:  # a task of the loop's TaskGroup must never end the supervisor
            log.exception("event=reload_failed program=%s", program)
            return
        finally:
            self._answers.pop(msg.id, None)
        if isinstance(reply, m.Error):
            log.error("event=reload_refused_by_child program=%s error=%r", program, reply.message)
            return
        h = self.health.get(program)
        if h is not None:
            h.generation = max(h.generation, generation)
        log.info("event=reload_applied program=%s generation=%d", program, generation)

    async def ask_child(self, program: str, msg: m.Detach,
                        timeout: float) -> m.Ok | m.Error | None:
        """Send a running child a request over the control socket and wait for its answer (None
        when it did not answer in time). A child that has just started is given until the
        deadline to connect."""
        fut: asyncio.Future[m.Ok | m.Error] = self._loop.create_future()
        self._answers[msg.id] = (program.encode(), fut)
        deadline = time.monotonic() + timeout
        try:
            while not await self.control.send(program.encode(), msg):
                if time.monotonic() > deadline:
                    return None
                await asyncio.sleep(0.1)
            async with asyncio.timeout(max(0.1, deadline - time.monotonic())):
                return await fut
        except TimeoutError:
            return None
        finally:
            self._answers.pop(msg.id, None)

    def on_child_answer(self, identity: bytes, msg: m.Ok | m.Error) -> bool:
        """True when `msg` answers a Reload we sent to this very identity."""
        waiting = self._answers.get(msg.id)
        if waiting is None or waiting[0] != identity:
            return False
        del self._answers[msg.id]
        if not waiting[1].done():
            waiting[1].set_result(msg)
        return True

    async def _retire_bot(self) -> None:
        """telegram.enabled went false on reload: stop the bot and forget it."""
        bot = self.programs.get(names.BOT_PROGRAM)
        if bot is None:
            return
        bot.stop()
        await self.wait_stopped(bot)
        self.drop_program(names.BOT_PROGRAM)
        log.info("event=bot_retired reason='telegram.enabled = false'")
