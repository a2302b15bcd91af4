"""The supervisor: one asyncio loop owning the programs, the sockets, the heartbeat and the sweep.

What it owns, as a tree (every task has an owner that cancels it at shutdown):
    run()
    ├── control server       requests from switchboardctl / the bot / workers (supervisor.control)
    ├── heartbeat            Ping every child each interval; kill one silent for the timeout
    └── sweep                psutil watcher in a thread (supervisor.watcher)

Programs are `bot` (when telegram is enabled) and `session:<name>` for each registered session.
The commands themselves live in supervisor.commands. This module never blocks the loop: stops
and starts are state machine steps plus awaits on state changes.

Over 400 lines because it is one idea with many hands: the owner of every program, socket and
task of the loop. What can be pure has left it (states, backoff, program, child_settings,
preflight, watcher), and what is left shares the Supervisor's state.
"""
from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import zmq.asyncio

from supervisor import child_settings, preflight, process, statelock
from supervisor import config as config_mod
from supervisor import personas as personas_mod
from supervisor.backoff import Policy
from supervisor.config import Config
from supervisor.control import ControlServer, EventPublisher
from supervisor.lifeline import last_sentence, retrying_line
from supervisor.notify import Notifier
from supervisor.program import Child, Program, ProgramConfig, Timer
from supervisor.projects import Place
from supervisor.registry import Registry
from supervisor.statelock import AlreadyRunning
from supervisor.states import RUNNING_STATES, State
from supervisor.watcher import Limits, MemoryKill, Target, Usage, Watcher, kill_instance_leftovers
from wire import auth, names, settings
from wire import messages as m
from wire.aio import wait_event
from wire.endpoints import Endpoints, prepare_runtime_dir
from wire.logs import log_path, redact, rotate_if_over
from wire.settings import MB

log = logging.getLogger(__name__)

RELOAD_ANSWER_SECONDS = 5.0
# A child that has not spoken yet is still starting (Python and its imports; on a loaded box, or
# the bot loading PTB, that can take seconds): the heartbeat timeout starts to count once it has
# registered or answered a Ping, and until then it has at least this long.
START_GRACE_SECONDS = 20.0


class LoopClock:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        return self.loop.call_later(delay, callback)


@dataclass
class Health:
    """What the supervisor knows about a live child beyond its state: heartbeat and usage."""

    last_seen: float = 0.0  # monotonic: spawn, Register or Pong
    registered: bool = False
    answered: bool = False  # registered or answered a Ping: past its start-up
    stats: m.WorkerStats | None = None
    stats_at: float = 0.0
    usage: Usage = field(default_factory=Usage)
    stdio_since: int = 0  # where this run's output starts in its .stdio file
    generation: int = 0  # the config generation its settings come from (see Supervisor.reload)


def program_config(cfg: Config, *, lifeline: bool = False) -> ProgramConfig:
    """The same numbers for every program; the bot (`lifeline`) is never given up."""
    s = cfg.supervisor
    return ProgramConfig(
        startsecs=s.startsecs,
        stopwaitsecs=s.stopwaitsecs,
        policy=Policy(retries=s.startretries, window=s.retry_window_seconds,
                      initial=s.backoff_initial_seconds, cap=s.backoff_max_seconds,
                      give_up=not lifeline, lifeline_cap=s.bot_max_backoff_seconds),
    )


def stdio_size(stdio: Path) -> int:
    try:
        return stdio.stat().st_size
    except OSError:
        return 0


def last_words(stdio: Path, since: int = 0) -> str:
    """The one sentence a child printed last on stdout/stderr, if any: from the file's tail, and
    only what was written after offset `since` (the file is appended to by every run)."""
    try:
        with open(stdio, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(since, size - 4096))
            return redact(last_sentence(f.read().decode(errors="replace")))
    except OSError:
        return ""


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


class Supervisor:
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

    def _note_bot_trouble(self, prog: Program, h: Health) -> None:
        """A live bot that has not registered is still trying to reach Telegram, and says why on
        stderr: keep that sentence so `status` and STATUS= show the lifeline retrying."""
        trouble = "" if h.registered else last_words(self._stdio(prog.name), h.stdio_since)
        if trouble != prog.live_trouble:
            prog.live_trouble = trouble
            if self.ready.is_set():
                self.notifier.status(self.summary())

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

    # ------------------------------------------------------------------ heartbeat

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

    # ------------------------------------------------------------------ sweep

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
