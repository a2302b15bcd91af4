"""The control commands: one small async method per request type, found through one table.

Each method's docstring is what the command does. Every request gets exactly one reply, `Ok`
with a result or `Error` with a code from wire.messages and one sentence that names the fix: a
method returns its result, or raises `Refusal(code, sentence)`, and `Commands.handle` turns
either into the reply in one place. Waiting (for RUNNING, for STOPPED) is done per request,
never under a shared lock.

A user's stop or restart leaves `wire.names.USER_STOP_FILE` in the session dir just before the
SIGTERM, so its worker cancels the running turn instead of keeping it for the next start (see
session_worker/worker.py); the supervisor's own shutdown never writes it. `remove` deletes the
session's directory under `<state_dir>/sessions/` and nothing outside it: a project directory a
session works in is the user's and is never touched; its git worktree is removed only when that
loses nothing (supervisor.projects.release). Where a session works is decided once, at `new`
(supervisor.projects.place); any directory (`--dir`) only for the owner's key.
"""
from __future__ import annotations

import asyncio
import datetime
import logging
import shutil
import time
from collections.abc import Awaitable, Callable
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from supervisor import projects
from supervisor.lifeline import retrying_line
from supervisor.program import Program
from supervisor.states import RUNNING_STATES, STARTABLE_STATES, State
from wire import auth, names, usage
from wire import messages as m

if TYPE_CHECKING:
    from supervisor.service import Supervisor

log = logging.getLogger(__name__)

Handler = Callable[[Any], Awaitable[m.Result | None]]
# A handoff suspends the CLI (close stdin, SIGTERM, SIGKILL: each a few seconds at most).
ATTACH_SECONDS = 30.0


class Refusal(Exception):
    """A request the supervisor will not do: `code` from wire.messages, `message` one sentence."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


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
        self.placing: set[str] = set()  # new sessions whose place is being made (a worktree)
        self.table: dict[type[m.Msg], Handler] = {
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
            m.ListProjects: self.list_projects,
            m.Attach: self.attach,
        }

    async def handle(self, identity: bytes, msg: m.Msg) -> m.Ok | m.Error | None:
        if isinstance(msg, m.Register):
            return self.sup.on_register(identity, msg)
        if isinstance(msg, m.Pong):
            self.sup.on_pong(identity, msg)
            return None
        if isinstance(msg, (m.Ok, m.Error)) and self.sup.on_child_answer(identity, msg):
            return None  # a child's answer to our Reload; any other reply is refused below
        if isinstance(msg, m.NewSession) and msg.work_dir and identity != auth.OWNER.encode():
            return m.Error(id=msg.id, code=m.E_BAD_REQUEST, message="only the owner at the"
                           " terminal may name a directory: use `switchboardctl new --dir`.")
        fn = self.table.get(type(msg))
        if fn is None:
            return m.Error(id=getattr(msg, "id", ""), code=m.E_BAD_REQUEST,
                           message=f"{type(msg).__name__} is not a control request.")
        quiet = isinstance(msg, (m.Status, m.Version, m.ListPersonas))
        log.log(logging.DEBUG if quiet else logging.INFO, "event=request type=%s",
                type(msg).__name__)
        req_id: str = getattr(msg, "id", "")
        try:
            result = await fn(msg)
        except Refusal as no:
            log.info("event=refused type=%s code=%s", type(msg).__name__, no.code)
            return m.Error(id=req_id, code=no.code, message=no.message)
        return m.Ok(id=req_id) if result is None else m.Ok(id=req_id, result=result)

    # ------------------------------------------------------------------ helpers

    def _resolve(self, name: str) -> str:
        """A program name from user input ('demo', 'session:demo', 'bot'); raises InvalidName."""
        kind, session = names.parse_program(name)
        return names.BOT_PROGRAM if kind == "bot" else names.program_name(session or "")

    def _lookup(self, names_in: list[str]) -> list[str]:
        """The programs named (all when none, or 'all'); refuses a bad or unknown name."""
        if not names_in or "all" in names_in:
            return list(self.sup.programs)
        out: list[str] = []
        for raw in names_in:
            try:
                name = self._resolve(raw)
            except names.InvalidName as exc:
                raise Refusal(m.E_INVALID_NAME, str(exc)) from None
            if name not in self.sup.programs:
                raise Refusal(m.E_UNKNOWN_NAME,
                              f"no such program '{raw}': see `switchboardctl status`.")
            out.append(name)
        return out

    @staticmethod
    def _session_of(raw: str) -> tuple[str, str]:
        """(session, program) for a valid session name; refuses an invalid one."""
        session = raw.removeprefix(names.SESSION_PREFIX)
        err = names.session_name_error(session)
        if err:
            raise Refusal(m.E_INVALID_NAME, err)
        return session, names.program_name(session)

    def _existing(self, raw: str, hint: str = "see `switchboardctl status`") -> tuple[str, str]:
        """(session, program) for a valid session name whose program exists; refuses otherwise."""
        session, program = self._session_of(raw)
        if program not in self.sup.programs:
            raise Refusal(m.E_UNKNOWN_NAME, f"no session '{session}': {hint}.")
        return session, program

    def _known_persona(self, persona: str) -> str:
        """`persona` when it is loaded; refuses an unknown one with the known names."""
        if persona not in self.sup.personas:
            known = ", ".join(sorted(self.sup.personas))
            raise Refusal(m.E_UNKNOWN_PERSONA, f"no persona '{persona}' (known: {known}):"
                          f" add personas/{persona}.json and send SIGHUP, or pick a known one.")
        return persona

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

    def _session_dir(self, session: str) -> Path:
        return self.sup.cfg.state_path / "sessions" / session

    def _mark_user_stop(self, prog: Program) -> None:
        """Tell the worker that this SIGTERM is the user's (see the module docstring)."""
        _kind, session = names.parse_program(prog.name)
        if session is None or prog.state not in RUNNING_STATES:
            return
        path = self._session_dir(session) / names.USER_STOP_FILE
        try:
            path.write_text("stop\n")
        except OSError as exc:  # the turn is then kept for the next start: nothing is lost
            log.warning("event=user_stop_mark_failed program=%s error=%r", prog.name, str(exc))

    async def _stop_one(self, name: str, *, persist: bool = True) -> m.ProgramResult:
        prog = self.sup.programs[name]
        if persist:
            self._autostart(name, False)
        self._mark_user_stop(prog)
        err = prog.stop()
        if err:
            return m.ProgramResult(name=name, ok=False, message=f"ERROR ({err})")
        if not await self.sup.wait_stopped(prog):
            return m.ProgramResult(name=name, ok=False, message="ERROR (timed out stopping)")
        # Its tools die with it, before a restart can start the next run (a worker killed at
        # stopwaitsecs could not sweep them itself).
        await self.sup.sweep_once()
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

    async def _each(self, raw: list[str],
                    fn: Callable[[str], Awaitable[m.ProgramResult]]) -> m.ActionResult:
        found = self._lookup(raw)
        results = await asyncio.gather(*(fn(n) for n in found))
        return m.ActionResult(results=list(results))

    def program_status(self, name: str, now: float) -> m.ProgramStatus:
        prog = self.sup.programs[name]
        h = self.sup.health.get(name)
        st = h.stats if h else None
        live = prog.state in RUNNING_STATES
        _, session = names.parse_program(name)
        place = self.sup.place_of(session) if session else None
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
            cost_usd=self._cost(session, st if live else None),
            queued=st.queued if st else 0,
            idle_seconds=(st.idle_seconds + time.monotonic() - h.stats_at) if (st and h) else None,
            exit_code=prog.exit_code,
            busy=st.busy if st else False,
            tools=[m.ToolProcess(pid=t.pid, name=t.name, rss_bytes=t.rss_bytes)
                   for t in h.usage.tools] if (h and live) else [],
            tools_rss_bytes=sum(t.rss_bytes for t in h.usage.tools) if (h and live) else 0,
            project=place.project if place else None,
            work_dir=(place.work_dir or str(self._session_dir(session) / "work")) if (
                place and session) else None,
            model=st.model if st else "",
            tokens_in=st.tokens_in if st else 0,
            tokens_out=st.tokens_out if st else 0,
            context_percent=st.context_percent if st else None,
            rate_limits=list(st.rate_limits) if st else [],
        )

    def _cost(self, session: str | None, live: m.WorkerStats | None) -> float:
        """The session's usage table on disk (wire.usage, read-only): it is current to the last
        finished turn whether the worker runs, is suspended, stopped or FATAL; a running
        worker's own total only when the file cannot be read."""
        stored = usage.session_cost(self._session_dir(session)) if session else None
        if stored is not None:
            return stored
        return live.cost_usd if live is not None else 0.0

    # ------------------------------------------------------------------ commands

    async def status(self, msg: m.Status) -> m.StatusResult:
        """Rows for the named programs (all when none), in supervisorctl's terms."""
        found = self._lookup(msg.names)
        now = time.time()
        rows = [self.program_status(n, now) for n in sorted(found, key=_order)]
        return m.StatusResult(programs=rows, sweeps=self.sup.sweeps)

    async def start(self, msg: m.Start) -> m.ActionResult:
        """Start each program and wait until it is RUNNING or has failed; clears FATAL."""
        return await self._each(msg.names, self._start_one)

    async def stop(self, msg: m.Stop) -> m.ActionResult:
        """Stop each program (SIGTERM, SIGKILL after stopwaitsecs); it stays stopped on restarts."""
        return await self._each(msg.names, self._stop_one)

    async def restart(self, msg: m.Restart) -> m.ActionResult:
        """Stop then start each program."""
        return await self._each(msg.names, self._restart_one)

    async def new_session(self, msg: m.NewSession) -> m.ActionResult:
        """Register a session (with a persona, default otherwise) and start its worker."""
        session, program = self._session_of(msg.name)
        if (session in self.sup.registry.sessions or program in self.sup.programs
                or session in self.placing):
            raise Refusal(m.E_EXISTS, f"session '{session}' already exists: pick another name.")
        limit = self.sup.cfg.supervisor.max_sessions
        if len(self.sup.registry.sessions) >= limit:
            raise Refusal(m.E_STATE, f"there are already {limit} sessions, the most"
                          " supervisor.max_sessions allows: remove one, or raise max_sessions"
                          " in the config and reload.")
        cfg = self.sup.cfg
        persona = self._known_persona(msg.persona or projects.persona_for(cfg, msg.project)
                                      or cfg.claude.default_persona)
        self.placing.add(session)  # a second `new` of this name waits for no thread
        try:  # the last check: a worktree is made only for a session that will exist
            place = await asyncio.to_thread(projects.place, cfg, self.sup.personas, session,
                                            msg.project, msg.work_dir)
        except projects.PlaceError as exc:
            raise Refusal(m.E_BAD_REQUEST, str(exc)) from None
        finally:
            self.placing.discard(session)
        self.sup.registry.add(session, persona, place)
        self.sup.add_program(program)
        return m.ActionResult(results=[await self._start_one(program)])

    async def remove_session(self, msg: m.RemoveSession) -> m.ActionResult:
        """Stop a session's worker, forget the session and delete its directory (history,
        outbox, metadata, private work folder); a project directory it worked in stays."""
        session, program = self._existing(msg.name)
        prog = self.sup.programs[program]
        prog.stop()
        if not await self.sup.wait_stopped(prog):
            raise Refusal(m.E_STATE, f"session '{session}' did not stop in time, so nothing was"
                          f" removed: try `switchboardctl remove {session}` again.")
        place = self.sup.place_of(session) or projects.Place()
        self.sup.registry.remove(session)
        self.sup.drop_program(program)
        await self.sup.sweep_once()
        gone = await asyncio.to_thread(delete_session_dir, self.sup.cfg.state_path, session)
        log.info("event=session_removed session=%s deleted=%r", session, gone)
        what = f" (deleted {', '.join(gone)})" if gone else ""
        kept = await asyncio.to_thread(projects.release, place)
        log.info("event=session_place_released session=%s said=%r", session, kept)
        return m.ActionResult(results=[m.ProgramResult(
            name=program, ok=True, message="removed" + what + (f"\n{kept}" if kept else ""))])

    async def set_persona(self, msg: m.SetPersona) -> m.ActionResult:
        """Give a session another persona; a running worker restarts with it."""
        session, program = self._existing(msg.name)
        self.sup.registry.set_persona(session, self._known_persona(msg.persona))
        prog = self.sup.programs[program]
        if prog.state in RUNNING_STATES:
            result = await self._restart_one(program)
        else:
            result = m.ProgramResult(name=program, ok=True, message="persona set")
        return m.ActionResult(results=[result])

    async def list_personas(self, msg: m.ListPersonas) -> m.PersonasResult:
        """The personas a session can use."""
        infos = [m.PersonaInfo(name=p.name, description=p.description)
                 for p in sorted(self.sup.personas.values(), key=lambda p: p.name)]
        return m.PersonasResult(personas=infos)

    async def list_projects(self, msg: m.ListProjects) -> m.ProjectsResult:
        """The configured projects, each with its sessions."""
        on = {n: r.project for n, r in self.sup.registry.sessions.items()}
        return m.ProjectsResult(projects=[
            m.ProjectInfo(name=n, path=p.path, persona=p.persona, worktrees=p.worktrees,
                          sessions=sorted(s for s, pr in on.items() if pr == n))
            for n, p in sorted(self.sup.cfg.projects.items())])

    async def ensure_running(self, msg: m.EnsureRunning) -> m.ActionResult:
        """The user wrote to this session: start it unless it runs (clears FATAL too)."""
        bare = msg.name.removeprefix(names.SESSION_PREFIX)
        _session, program = self._existing(msg.name, hint=f"create it with /new {bare}")
        prog = self.sup.programs[program]
        self._autostart(program, True)
        if prog.state in STARTABLE_STATES or prog.state is State.STOPPING:
            prog.start()
        return m.ActionResult(results=[await self._await_running(prog)])

    async def shutdown(self, msg: m.Shutdown) -> None:
        """Stop every program (sessions, then the bot) and exit."""
        self.sup.request_shutdown("switchboardctl")

    async def attach(self, msg: m.Attach) -> m.HandoffResult:
        """Suspend a session's CLI (its worker started if need be) and answer the command that
        continues its conversation at a terminal (`switchboardctl attach`, the chat's /handoff)."""
        session, program = self._existing(msg.name)
        started = await self.ensure_running(m.EnsureRunning(id=msg.id, name=msg.name))
        if not started.results[0].ok:
            raise Refusal(m.E_STATE, f"session '{session}' could not be started"
                          f" ({started.results[0].message}): see `switchboardctl tail {session}`.")
        reply = await self.sup.ask_child(program, m.Detach(id=m.new_id()), ATTACH_SECONDS)
        if reply is None:
            raise Refusal(m.E_UNAVAILABLE, f"session '{session}' did not answer the handoff"
                          f" within {ATTACH_SECONDS:.0f} s: try again.")
        if isinstance(reply, m.Error):
            raise Refusal(reply.code, reply.message)
        if not isinstance(reply.result, m.HandoffResult):
            raise Refusal(m.E_INTERNAL, f"session '{session}' answered the handoff with"
                          " something else: try again.")
        log.info("event=attach session=%s", session)
        return reply.result

    async def version(self, msg: m.Version) -> m.VersionResult:
        """The supervisor's version."""
        return m.VersionResult(version=version())


def delete_session_dir(state_dir: Path, session: str) -> list[str]:
    """Delete `<state_dir>/sessions/<session>` and what is in it; the names of what was there.

    Only that directory, never through a symlink: a link in it (a work folder pointing at a
    project) is removed as a link and what it points to stays. Refuses (returns nothing) when the
    path is not a real directory inside the state dir."""
    if not names.SESSION_NAME_RE.fullmatch(session):  # never a path of another shape
        return []
    root = (state_dir / "sessions").resolve()
    target = state_dir / "sessions" / session
    if target.is_symlink() or not target.is_dir() or target.resolve().parent != root:
        return []
    found = sorted(p.name + ("/" if p.is_dir() and not p.is_symlink() else "")
                   for p in target.iterdir())
    shutil.rmtree(target)
    return found


def _order(name: str) -> tuple[int, str]:
    return (0 if name == names.BOT_PROGRAM else 1, name)
