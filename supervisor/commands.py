"""The control commands: one small async method per request type, found through one table.

Each method's docstring is what the command does. Every request gets exactly one reply, `Ok`
with a result or `Error` with a code from wire.messages and one sentence that names the fix.
Waiting (for RUNNING, for STOPPED) is done per request, never under a shared lock.
"""
from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Awaitable, Callable
from importlib import metadata
from typing import TYPE_CHECKING, Any

from supervisor.lifeline import retrying_line
from supervisor.program import Program
from supervisor.states import RUNNING_STATES, STARTABLE_STATES, State
from wire import messages as m
from wire import names

if TYPE_CHECKING:
    from supervisor.service import Supervisor

log = logging.getLogger(__name__)


def version() -> str:
    try:
        return metadata.version("claude-switchboard")
    except metadata.PackageNotFoundError:
        return "0.1.0"


def describe(prog: Program, now: float) -> str:
    """supervisord's description column, exactly as its rpcinterface words it; the bot being
    retried (never FATAL) says since when and why instead."""
    st = prog.state
    retry = prog.retrying()
    if st is State.RUNNING:
        up = prog.uptime() or 0.0
        desc = f"pid {prog.pid}, uptime {datetime.timedelta(seconds=int(up))}"
        return desc + (f"; {retrying_line(*retry)}" if retry else "")
    if retry is not None:
        return retrying_line(*retry)
    if st in (State.BACKOFF, State.FATAL):
        return prog.reason or f'unknown error (try "tail {prog.name}")'
    if st in (State.STOPPED, State.EXITED):
        if prog.start_wall is None:
            return "Not started"
        stop = prog.stop_wall or now
        return datetime.datetime.fromtimestamp(stop).strftime("%b %d %I:%M %p")
    return ""


class Commands:
    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup
        self.table: dict[type[m.Msg], Callable[[Any], Awaitable[m.Ok | m.Error]]] = {
            m.Status: self.status,
            m.Start: self.start,
            m.Stop: self.stop,
            m.Restart: self.restart,
            m.NewSession: self.new_session,
            m.RemoveSession: self.remove_session,
            m.SetPersona: self.set_persona,
            m.ListPersonas: self.list_personas,
            m.EnsureRunning: self.ensure_running,
            m.Shutdown: self.shutdown,
            m.Version: self.version,
        }

    async def handle(self, identity: bytes, msg: m.Msg) -> m.Ok | m.Error | None:
        if isinstance(msg, m.Register):
            return self.sup.on_register(identity, msg)
        if isinstance(msg, m.Pong):
            self.sup.on_pong(identity, msg)
            return None
        fn = self.table.get(type(msg))
        if fn is None:
            return m.Error(id=getattr(msg, "id", ""), code=m.E_BAD_REQUEST,
                           message=f"{type(msg).__name__} is not a control request.")
        quiet = isinstance(msg, (m.Status, m.Version, m.ListPersonas))
        log.log(logging.DEBUG if quiet else logging.INFO, "event=request type=%s",
                type(msg).__name__)
        return await fn(msg)

    # ------------------------------------------------------------------ helpers

    def _resolve(self, name: str) -> str:
        """A program name from user input ('demo', 'session:demo', 'bot'); raises InvalidName."""
        kind, session = names.parse_program(name)
        return names.BOT_PROGRAM if kind == "bot" else names.program_name(session or "")

    def _lookup(self, req_id: str, names_in: list[str]) -> list[str] | m.Error:
        if not names_in or "all" in names_in:
            return list(self.sup.programs)
        out: list[str] = []
        for raw in names_in:
            try:
                name = self._resolve(raw)
            except names.InvalidName as exc:
                return m.Error(id=req_id, code=m.E_INVALID_NAME, message=str(exc))
            if name not in self.sup.programs:
                return m.Error(id=req_id, code=m.E_UNKNOWN_NAME,
                               message=f"no such program '{raw}': see `switchboardctl status`.")
            out.append(name)
        return out

    def _session_of(self, req_id: str, raw: str) -> tuple[str, str] | m.Error:
        session = raw.removeprefix(names.SESSION_PREFIX)
        err = names.session_name_error(session)
        if err:
            return m.Error(id=req_id, code=m.E_INVALID_NAME, message=err)
        return session, names.program_name(session)

    def _existing(self, req_id: str, raw: str, hint: str = "see `switchboardctl status`"
                  ) -> tuple[str, str] | m.Error:
        """A valid session name whose program exists, or the Error to answer with."""
        got = self._session_of(req_id, raw)
        if isinstance(got, m.Error):
            return got
        session, program = got
        if program not in self.sup.programs:
            return m.Error(id=req_id, code=m.E_UNKNOWN_NAME,
                           message=f"no session '{session}': {hint}.")
        return got

    def _autostart(self, program: str, value: bool) -> None:
        if program.startswith(names.SESSION_PREFIX):
            self.sup.registry.set_autostart(program[len(names.SESSION_PREFIX):], value)

    async def _start_one(self, name: str) -> m.ProgramResult:
        prog = self.sup.programs[name]
        err = prog.start()
        if err:
            return m.ProgramResult(name=name, ok=False, message=f"ERROR ({err})")
        self._autostart(name, True)
        return await self._await_running(prog)

    async def _await_running(self, prog: Program) -> m.ProgramResult:
        timeout = prog.config.startsecs + prog.config.stopwaitsecs + 10
        await self.sup.wait_for(lambda: prog.state not in (State.STARTING, State.STOPPING),
                                timeout)
        if prog.state is State.RUNNING:
            return m.ProgramResult(name=prog.name, ok=True, message="started")
        if prog.state is State.STARTING:
            return m.ProgramResult(name=prog.name, ok=False, message="ERROR (timed out starting)")
        reason = prog.reason or "abnormal termination"
        word = "spawn error" if "spawn error" in reason else "abnormal termination"
        return m.ProgramResult(name=prog.name, ok=False, message=f"ERROR ({word}: {reason})")

    async def _stop_one(self, name: str, *, persist: bool = True) -> m.ProgramResult:
        prog = self.sup.programs[name]
        if persist:
            self._autostart(name, False)
        err = prog.stop()
        if err:
            return m.ProgramResult(name=name, ok=False, message=f"ERROR ({err})")
        if not await self.sup.wait_stopped(prog):
            return m.ProgramResult(name=name, ok=False, message="ERROR (timed out stopping)")
        return m.ProgramResult(name=name, ok=True, message="stopped")

    async def _restart_one(self, name: str) -> m.ProgramResult:
        prog = self.sup.programs[name]
        lines = []
        if prog.state in RUNNING_STATES:
            stopped = await self._stop_one(name, persist=False)
            lines.append(stopped.message)
            if not stopped.ok:
                return m.ProgramResult(name=name, ok=False, message="\n".join(lines))
        started = await self._start_one(name)
        lines.append(started.message)
        return m.ProgramResult(name=name, ok=started.ok, message="\n".join(lines))

    async def _each(self, req_id: str, raw: list[str],
                    fn: Callable[[str], Awaitable[m.ProgramResult]]) -> m.Ok | m.Error:
        import asyncio

        found = self._lookup(req_id, raw)
        if isinstance(found, m.Error):
            return found
        results = await asyncio.gather(*(fn(n) for n in found))
        return m.Ok(id=req_id, result=m.ActionResult(results=list(results)))

    def program_status(self, name: str, now: float) -> m.ProgramStatus:
        prog = self.sup.programs[name]
        h = self.sup.health.get(name)
        st = h.stats if h else None
        live = prog.state in RUNNING_STATES
        _, session = names.parse_program(name)
        return m.ProgramStatus(
            name=name,
            state=prog.state.value,
            description=describe(prog, now),
            pid=prog.pid if live else None,
            uptime_seconds=prog.uptime(),
            persona=self.sup.persona_of(session).name if session else None,
            claude_pid=st.claude_pid if (st and live) else None,
            suspended=bool(session and live and st is not None and st.claude_pid is None),
            rss_bytes=h.usage.rss_bytes if (h and live) else 0,
            cpu_percent=round(h.usage.cpu_percent, 1) if (h and live) else 0.0,
            cost_usd=st.cost_usd if st else 0.0,
            queued=st.queued if st else 0,
            idle_seconds=(st.idle_seconds + time.monotonic() - h.stats_at) if (st and h) else None,
            exit_code=prog.exit_code,
            busy=st.busy if st else False,
        )

    # ------------------------------------------------------------------ commands

    async def status(self, msg: m.Status) -> m.Ok | m.Error:
        """Rows for the named programs (all when none), in supervisorctl's terms."""
        found = self._lookup(msg.id, msg.names)
        if isinstance(found, m.Error):
            return found
        now = time.time()
        rows = [self.program_status(n, now) for n in sorted(found, key=_order)]
        return m.Ok(id=msg.id, result=m.StatusResult(programs=rows, sweeps=self.sup.sweeps))

    async def start(self, msg: m.Start) -> m.Ok | m.Error:
        """Start each program and wait until it is RUNNING or has failed; clears FATAL."""
        return await self._each(msg.id, msg.names, self._start_one)

    async def stop(self, msg: m.Stop) -> m.Ok | m.Error:
        """Stop each program (SIGTERM, SIGKILL after stopwaitsecs); it stays stopped on restarts."""
        return await self._each(msg.id, msg.names, self._stop_one)

    async def restart(self, msg: m.Restart) -> m.Ok | m.Error:
        """Stop then start each program."""
        return await self._each(msg.id, msg.names, self._restart_one)

    async def new_session(self, msg: m.NewSession) -> m.Ok | m.Error:
        """Register a session (with a persona, default otherwise) and start its worker."""
        got = self._session_of(msg.id, msg.name)
        if isinstance(got, m.Error):
            return got
        session, program = got
        if session in self.sup.registry.sessions or program in self.sup.programs:
            return m.Error(id=msg.id, code=m.E_EXISTS,
                           message=f"session '{session}' already exists: pick another name.")
        persona = msg.persona or self.sup.cfg.claude.default_persona
        if persona not in self.sup.personas:
            return self._unknown_persona(msg.id, persona)
        self.sup.registry.add(session, persona)
        self.sup.add_program(program)
        result = await self._start_one(program)
        return m.Ok(id=msg.id, result=m.ActionResult(results=[result]))

    async def remove_session(self, msg: m.RemoveSession) -> m.Ok | m.Error:
        """Stop a session's worker and forget the session (its files stay on disk)."""
        got = self._existing(msg.id, msg.name)
        if isinstance(got, m.Error):
            return got
        session, program = got
        prog = self.sup.programs[program]
        prog.stop()
        await self.sup.wait_stopped(prog)
        self.sup.registry.remove(session)
        self.sup.drop_program(program)
        await self.sup.sweep_once()
        return m.Ok(id=msg.id, result=m.ActionResult(
            results=[m.ProgramResult(name=program, ok=True, message="removed")]))

    async def set_persona(self, msg: m.SetPersona) -> m.Ok | m.Error:
        """Give a session another persona; a running worker restarts with it."""
        got = self._existing(msg.id, msg.name)
        if isinstance(got, m.Error):
            return got
        session, program = got
        if msg.persona not in self.sup.personas:
            return self._unknown_persona(msg.id, msg.persona)
        self.sup.registry.set_persona(session, msg.persona)
        prog = self.sup.programs[program]
        if prog.state in RUNNING_STATES:
            result = await self._restart_one(program)
        else:
            result = m.ProgramResult(name=program, ok=True, message="persona set")
        return m.Ok(id=msg.id, result=m.ActionResult(results=[result]))

    async def list_personas(self, msg: m.ListPersonas) -> m.Ok | m.Error:
        """The personas a session can use."""
        infos = [m.PersonaInfo(name=p.name, description=p.description)
                 for p in sorted(self.sup.personas.values(), key=lambda p: p.name)]
        return m.Ok(id=msg.id, result=m.PersonasResult(personas=infos))

    async def ensure_running(self, msg: m.EnsureRunning) -> m.Ok | m.Error:
        """The user wrote to this session: start it unless it runs (clears FATAL too)."""
        bare = msg.name.removeprefix(names.SESSION_PREFIX)
        got = self._existing(msg.id, msg.name, hint=f"create it with /new {bare}")
        if isinstance(got, m.Error):
            return got
        _session, program = got
        prog = self.sup.programs[program]
        self._autostart(program, True)
        if prog.state in STARTABLE_STATES or prog.state is State.STOPPING:
            prog.start()
        result = await self._await_running(prog)
        return m.Ok(id=msg.id, result=m.ActionResult(results=[result]))

    async def shutdown(self, msg: m.Shutdown) -> m.Ok | m.Error:
        """Stop every program (sessions, then the bot) and exit."""
        self.sup.request_shutdown("switchboardctl")
        return m.Ok(id=msg.id)

    async def version(self, msg: m.Version) -> m.Ok | m.Error:
        """The supervisor's version."""
        return m.Ok(id=msg.id, result=m.VersionResult(version=version()))

    def _unknown_persona(self, req_id: str, persona: str) -> m.Error:
        known = ", ".join(sorted(self.sup.personas))
        return m.Error(id=req_id, code=m.E_UNKNOWN_PERSONA,
                       message=f"no persona '{persona}' (known: {known}):"
                       f" add personas/{persona}.json and send SIGHUP, or pick a known one.")


def _order(name: str) -> tuple[int, str]:
    return (0 if name == names.BOT_PROGRAM else 1, name)
