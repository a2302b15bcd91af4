"""A controllable child that speaks the supervisor's control protocol (Register, Pong)."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import zmq
import zmq.asyncio

from wire import auth, names
from wire import messages as m
from wire.endpoints import Endpoints
from wire.lifetime import die_with_parent
from wire.rpc import Requester
from wire.settings import BOT_SETTINGS_ENV, WORKER_SETTINGS_ENV, BotSettings, WorkerSettings, load


def spawn_leaked_tool(session: str) -> subprocess.Popen[bytes]:
    """Like a Bash-tool child the CLI started with setsid: marked, and it does not die with us."""
    env = dict(os.environ, **{names.MARKER_ENV: session})
    return subprocess.Popen([sys.executable, "-c", "import signal; signal.pause()"], env=env,
                            start_new_session=True)


def spawn_marked_sleeper(session: str) -> subprocess.Popen[bytes]:
    """A 'CLI' that carries the session marker, like the real worker's claude process."""
    env = dict(os.environ, **{names.MARKER_ENV: session})
    # Like the real worker's CLI: dies with its worker (PR_SET_PDEATHSIG = SIGKILL).
    code = "import ctypes, signal; ctypes.CDLL(None).prctl(1, 9, 0, 0, 0); signal.pause()"
    return subprocess.Popen([sys.executable, "-c", code], env=env)


async def run(program: str, runtime_dir: str, behaviour: str, session: str | None) -> int:
    keys = auth.receive_keys()  # like the real children: the supervisor pipes them in
    if behaviour == "crash":
        return 1
    ctx = zmq.asyncio.Context()
    cli: subprocess.Popen[bytes] | None = None
    if behaviour in ("idle", "cli", "leak") and session:
        cli = spawn_marked_sleeper(session)
    tool = spawn_leaked_tool(session) if behaviour == "leak" and session else None
    started = time.monotonic()

    def pong(ping: m.Ping) -> m.Pong:
        idle = 10_000.0 if behaviour == "idle" else time.monotonic() - started
        stats = m.WorkerStats(session=session or "", claude_pid=cli.pid if cli else None,
                              queued=tool.pid if tool else 1,
                              idle_seconds=idle, cost_usd=0.0125)
        return m.Pong(id=ping.id, stats=stats)

    req = Requester(ctx, Endpoints(__import__("pathlib").Path(runtime_dir)).control,
                    keys=keys.control, on_ping=None if behaviour == "hang" else pong)
    req.start()
    reply = await req.request(m.Register(id=m.new_id(), program=program, pid=os.getpid()))
    if isinstance(reply, m.Error):
        print(f"register refused: {reply.message}", file=sys.stderr, flush=True)
    if behaviour == "late":
        await asyncio.sleep(float(os.environ.get("STANDIN_LATE_SECONDS", "0.8")))
        return 3
    await asyncio.Event().wait()
    return 0


def main(kind: str) -> int:
    # Like the real children: die with the supervisor (the contract of wire.lifetime).
    if kind == "bot":
        bs = load(BotSettings, BOT_SETTINGS_ENV)
        if not die_with_parent(bs.supervisor_pid):
            return 1
        return asyncio.run(run("bot", bs.runtime_dir, "ok", None))
    ws = load(WorkerSettings, WORKER_SETTINGS_ENV)
    if not die_with_parent(ws.supervisor_pid):
        return 1
    behaviour = ws.session.split("-")[0]
    return asyncio.run(run(names.program_name(ws.session), ws.runtime_dir, behaviour, ws.session))
