"""The supervisor: one asyncio loop owning the programs, the sockets, the heartbeat and the sweep.

What it owns, as a tree (every task has an owner that cancels it at shutdown):
    run()
    ├── control server       requests from switchboardctl / the bot / workers (supervisor.control)
    ├── heartbeat            Ping every child each interval; kill one silent for the timeout
    │                        (supervisor.heartbeat)
    └── sweep                psutil watcher in a thread (supervisor.sweeping, .watcher)
    and on SIGHUP a reload pushed to every child (supervisor.reloading)

Programs are `bot` (when telegram is enabled) and `session:<name>` for each registered session.
The commands themselves live in supervisor.commands. This module never blocks the loop: stops
and starts are state machine steps plus awaits on state changes.

What can be pure has left it (states, backoff, program, child_settings, preflight, watcher);
the heartbeat, the sweep and the reload are parts of the Supervisor (mixins in modules of their
own) because they share its state.
"""
from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import zmq.asyncio

from supervisor import child_settings, process, statelock
from supervisor import personas as personas_mod
from supervisor.child_settings import program_config
from supervisor.config import Config
from supervisor.control import ControlServer, EventPublisher
from supervisor.health import Health, last_words, stdio_size
from supervisor.heartbeat import Heartbeat
from supervisor.lifeline import retrying_line
from supervisor.notify import Notifier
from supervisor.program import Child, Program, Timer
from supervisor.projects import Place
from supervisor.registry import Registry
from supervisor.reloading import Reloading
from supervisor.statelock import AlreadyRunning
from supervisor.states import RUNNING_STATES, State
from supervisor.sweeping import Sweeping
from supervisor.watcher import Watcher, kill_instance_leftovers
from wire import auth, names, settings
from wire import messages as m
from wire.endpoints import Endpoints, prepare_runtime_dir
from wire.logs import log_path, rotate_if_over

log = logging.getLogger(__name__)


class LoopClock:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        return self.loop.call_later(delay, callback)


def prepare_state_dir(state: Path) -> list[Path]:
    """Create the state dir and its sessions/ 0700 (mkdir's parents would get the umask's 0755)
    and tighten them if they are looser; returns the ones that had to be tightened."""
    tightened = []
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    for d in (state, state / "sessions"):
        d.mkdir(exist_ok=True, mode=0o700)
        st = d.stat()
        if st.st_uid == os.getuid() and st.st_mode & 0o077:
            d.chmod(0o700)
            tightened.append(d)
    return tightened


class Supervisor(Reloading, Heartbeat, Sweeping):
    """The owner of every program, socket and task of the loop; its SIGHUP reload, heartbeat
    and sweep are supervisor.reloading, .heartbeat and .sweeping."""

    def __init__(self, cfg: Config, personas: dict[str, m.Persona]) -> None:
        self.cfg = cfg
        self.personas = personas
        self.registry = Registry(cfg.state_path)
        self.programs: dict[str, Program] = {}
        self.health: dict[str, Health] = {}
        self.watcher = Watcher()
        self.keys = auth.RunKeys()  # this run's socket keys (wire.auth); never logged
        self.ready = asyncio.Event()  # initial programs are up (or failed): for systemd's READY=1
        self._shutdown = asyncio.Event()
        self._poke = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._clock = LoopClock(self._loop)
        self._changed: list[asyncio.Future[None]] = []
        self.started_at = time.time()
        self.notifier = Notifier()
        self._tasks: asyncio.TaskGroup | None = None
        self.sweeps = 0  # completed sweeps, reported in Status: proof that sweeps happen
        self._sweep_lock = asyncio.Lock()
        # program -> sentences for its chat, carried by every Ping until a Pong answers one
        # (a killed worker's notice waits for its successor); ping id -> what it carried.
        self.notices: dict[str, list[str]] = {}
        self._notice_pings: dict[str, tuple[str, list[str]]] = {}
        self.generation = 0  # good reloads so far; a child spawned before the last one is behind
        # Our Reloads in flight: id -> (the child's identity, its answer).
        self._answers: dict[str, tuple[bytes, asyncio.Future[m.Ok | m.Error]]] = {}
        self._reloads: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> int:
        prepare_state_dir(self.cfg.state_path)
        # The state dir first: its sweep below must never kill another supervisor's CLIs.
        endpoints = prepare_runtime_dir(self.cfg.runtime_path)
        statelock.acquire(self.cfg.state_path, endpoints.runtime_dir)
        self._lock = self._take_lock(endpoints)
        self.registry.load()
        process.become_subreaper()
        for pid, session in kill_instance_leftovers(names.instance_id(self.cfg.state_dir)):
            log.warning("event=leftover_killed pid=%d session=%s", pid, session)
        ctx = zmq.asyncio.Context()
        from supervisor.commands import Commands

        self.commands = Commands(self)
        self.control = ControlServer(ctx, endpoints, self.commands.handle, self.keys)
        self.events = EventPublisher(ctx, endpoints, self.keys)
        auth.write_owner_keys(endpoints.runtime_dir, self.keys.owner_keys())
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._loop.add_signal_handler(sig, self.request_shutdown, sig.name)
        self._loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
        self._loop.add_signal_handler(signal.SIGUSR1, self._dump_tasks)
        log.info("event=supervisor_started pid=%d control=%s", os.getpid(), endpoints.control)
        try:
            async with asyncio.TaskGroup() as tg:
                self._tasks = tg  # owner of the work a signal handler starts
                serve = tg.create_task(self.control.serve(), name="control")
                beat = tg.create_task(self._heartbeat(), name="heartbeat")
                sweep = tg.create_task(self._sweeper(), name="sweep")
                watchdog = tg.create_task(self.notifier.watchdog_loop(), name="watchdog")
                await self._start_initial()
                self.ready.set()
                self.notifier.ready(self.summary())
                await self._shutdown.wait()
                self.notifier.stopping("stopping: " + self.summary())
                await self.stop_all()
                for t in (serve, beat, sweep, watchdog, *self._reloads):
                    t.cancel()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                self._loop.remove_signal_handler(sig)
            self.control.close()
            self.events.close()
            ctx.term()
            self.notifier.close()
            log.info("event=supervisor_stopped")
        return 0

    def _take_lock(self, endpoints: Endpoints) -> int:
        path = endpoints.runtime_dir / "supervisor.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise AlreadyRunning(
                f"another supervisor is already running with runtime_dir {endpoints.runtime_dir}:"
                " use `switchboardctl status`, or stop it with `switchboardctl shutdown`."
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        return fd

    async def _start_initial(self) -> None:
        if self.cfg.telegram.enabled:
            self.add_program(names.BOT_PROGRAM)
        for rec in self.registry.sessions.values():
            self.add_program(names.program_name(rec.name))
        wanted = [p for n, p in self.programs.items()
                  if n == names.BOT_PROGRAM
                  or self.registry.sessions[n[len(names.SESSION_PREFIX):]].autostart]
        for p in wanted:
            p.start()
        settle = self.cfg.supervisor.startsecs + 10
        await asyncio.gather(*(self.wait_settled(p, settle) for p in wanted))

    def _dump_tasks(self) -> None:
        """SIGUSR1: log where every task of the loop is waiting (for a wedged supervisor)."""
        import io

        for task in asyncio.all_tasks(self._loop):
            buf = io.StringIO()
            task.print_stack(file=buf)
            log.warning("event=task_dump task=%s stack=%r", task.get_name(), buf.getvalue())

    def summary(self) -> str:
        """One line for systemd's STATUS=: the bot's state and how many sessions are in each."""
        bot = self.programs.get(names.BOT_PROGRAM)
        counts: dict[str, int] = {}
        for n, p in self.programs.items():
            if n != names.BOT_PROGRAM:
                counts[p.state] = counts.get(p.state, 0) + 1
        retry = bot.retrying() if bot is not None else None
        if retry is not None:
            parts = [f"bot: {retrying_line(*retry)}"]  # the lifeline: why the user cannot get in
        else:
            parts = [f"bot {bot.state}"] if bot is not None else ["no bot"]
        total = sum(counts.values())
        detail = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        parts.append(f"{total} session{'s' if total != 1 else ''}"
                     + (f" ({detail})" if detail else ""))
        return "; ".join(parts)

    def request_shutdown(self, why: str = "request") -> None:
        if not self._shutdown.is_set():
            log.info("event=shutdown_requested by=%s", why)
            self._shutdown.set()

    async def stop_all(self) -> None:
        """Sessions first (all at once), the bot last so their final messages still go out."""
        sessions = [p for n, p in self.programs.items() if n != names.BOT_PROGRAM]
        for p in sessions:
            p.stop()
        await asyncio.gather(*(self.wait_stopped(p) for p in sessions))
        bot = self.programs.get(names.BOT_PROGRAM)
        if bot is not None:
            bot.stop()
            await self.wait_stopped(bot)
        await self.sweep_once()  # whatever carried a marker is now an orphan

    # ------------------------------------------------------------------ programs

    def add_program(self, name: str) -> Program:
        prog = Program(name, program_config(self.cfg, lifeline=name == names.BOT_PROGRAM),
                       self._clock, self._spawner, self._on_change)
        self.programs[name] = prog
        self.health[name] = Health()
        return prog

    def drop_program(self, name: str) -> None:
        self.programs.pop(name, None)
        self.health.pop(name, None)
        self.notices.pop(name, None)

    def _spawner(self, prog: Program) -> Child:
        token = self.cfg.token()
        voice_key = self.cfg.voice_key()
        secrets = tuple(s for s in (token, voice_key) if s)
        env = child_settings.child_env(dict(os.environ), self.cfg, secrets)
        kind, session = names.parse_program(prog.name)
        pass_fds: tuple[int, ...] = ()
        if kind == "bot":
            module, cwd = "bot", self.cfg.state_path
            if token:  # through a pipe: an environment would keep it in /proc/<pid>/environ
                pass_fds = (process.secret_pipe(token.encode()),)
            # The transcription key travels the same way, in a pipe of its own.
            voice_fd = process.secret_pipe(voice_key.encode()) if voice_key else None
            env[settings.BOT_SETTINGS_ENV] = settings.dump(child_settings.bot_settings(
                self.cfg, os.getpid(), pass_fds[0] if pass_fds else None, voice_fd))
            if voice_fd is not None:
                pass_fds = (*pass_fds, voice_fd)
        else:
            assert session is not None
            module, cwd = "session_worker", self.cfg.state_path / "sessions" / session
            env[settings.WORKER_SETTINGS_ENV] = settings.dump(child_settings.worker_settings(
                self.cfg, session, self.persona_of(session), os.getpid(), self.place_of(session)))
        stdio = self._stdio(prog.name)
        if rotate_if_over(stdio):  # never under a running writer
            log.info("event=stdio_rotated program=%s", prog.name)
        since = stdio_size(stdio)  # this run's words only
        keys_fd = auth.keys_pipe(self.keys.for_child(prog.name))
        env[auth.KEYS_FD_ENV] = str(keys_fd)
        child = process.spawn(module, env=env, cwd=cwd, stdio_path=stdio,
                              on_exit=lambda code: prog.child_exited(code,
                                                                     last_words(stdio, since)),
                              loop=self._loop, pass_fds=(*pass_fds, keys_fd))
        self.health[prog.name] = Health(last_seen=time.monotonic(), stdio_since=since,
                                        generation=self.generation)
        return child

    def _stdio(self, program: str) -> Path:
        return log_path(self.cfg.state_path, program).with_suffix(".stdio")

    def place_of(self, session: str) -> Place | None:
        """Where the session works, as its registry record keeps it."""
        rec = self.registry.sessions.get(session)
        return rec.place() if rec else None

    def persona_of(self, session: str) -> m.Persona:
        rec = self.registry.sessions.get(session)
        name = rec.persona if rec else self.cfg.claude.default_persona
        return self.personas.get(name) or self.personas.get(
            self.cfg.claude.default_persona) or personas_mod.DEFAULT

    def _on_change(self, prog: Program, event: m.StateChange) -> None:
        log.info("event=state program=%s from=%s to=%s pid=%s exit_code=%s reason=%r",
                 event.program, event.from_state, event.to_state, event.pid, event.exit_code,
                 event.reason)
        self.events.publish(event)
        if self.ready.is_set():
            self.notifier.status(self.summary())
        if prog.state not in RUNNING_STATES:
            self.health[prog.name] = Health()
            self._poke.set()
        waiters, self._changed = self._changed, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    async def wait_for(self, pred: Callable[[], bool], timeout: float) -> bool:
        """Wait (event-driven) until pred() holds after some state change; False on timeout."""
        deadline = self._loop.time() + timeout
        while not pred():
            left = deadline - self._loop.time()
            if left <= 0:
                return False
            fut: asyncio.Future[None] = self._loop.create_future()
            self._changed.append(fut)
            try:
                async with asyncio.timeout(left):  # not wait_for: it can eat a cancel in 3.11
                    await fut
            except TimeoutError:
                return pred()
        return True

    async def wait_stopped(self, prog: Program) -> bool:
        # The program's own timer SIGKILLs at stopwaitsecs; allow a little for the reap.
        return await self.wait_for(lambda: prog.state not in RUNNING_STATES,
                                   prog.config.stopwaitsecs + 5)

    async def wait_settled(self, prog: Program, timeout: float) -> bool:
        """Until RUNNING, or any state that means the start did not work."""
        return await self.wait_for(lambda: prog.state is not State.STARTING, timeout)

def main_async(cfg: Config, personas: dict[str, m.Persona],
               on_ready: Callable[[Supervisor], None] | None = None) -> int:
    async def go() -> int:
        sup = Supervisor(cfg, personas)
        if on_ready is not None:
            async def notify() -> None:
                await sup.ready.wait()
                on_ready(sup)
            task = asyncio.get_running_loop().create_task(notify())
        try:
            return await sup.run()
        finally:
            if on_ready is not None:
                task.cancel()

    return asyncio.run(go())
