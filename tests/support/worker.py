"""The worker harness: a real `python -m session_worker` process, driven over a real ZeroMQ
ROUTER that the test binds at the chat endpoint (the bot's side of the chat plane).

The harness plays the supervisor's part for keys (wire.auth): it makes the chat root and the
worker's keys and pipes them to the worker at each start, and its ROUTER is a CURVE server with
the chat server key (no ZAP handler: the harness lets in any peer that knows that key). Sends go
to the routing id the worker last spoke from, as the bot's do.

`WorkerHarness` starts the worker, collects everything it sends, and offers waits with
deadlines (never fixed sleeps). On close it stops the worker and proves that the worker, its
CLI and every process carrying the session marker are gone; it must never return from close
with one of them alive.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

import msgspec
import psutil
import zmq

from tests.support.config import short_dir
from tests.support.procs import alive, wait_until_gone
from tests.support.waits import wait_until
from wire import auth, codec
from wire import messages as m
from wire.endpoints import Endpoints
from wire.names import MARKER_ENV
from wire.settings import WORKER_SETTINGS_ENV, WorkerSettings

ROOT = Path(__file__).resolve().parent.parent.parent
PUMP_STEP = 0.05  # how long one pump of the chat socket waits for a frame


class WorkerHarness:
    def __init__(
        self,
        state_dir: Path,
        claude_bin: str,
        cli_env: dict[str, str],
        *,
        session: str | None = None,
        persona: m.Persona | None = None,
        **overrides: Any,
    ) -> None:
        # Unique per test: other suites sweep processes by marker, and so do we.
        self.session = session or f"wt-{os.getpid() % 10000}-{m.new_id()[:8]}"
        self.runtime_dir = short_dir()
        self.state_dir = state_dir
        self.ends = Endpoints(self.runtime_dir)
        self.ctx = zmq.Context()
        self.chat_root = os.urandom(32)
        self.control_server = auth.new_keypair()  # for a test that plays the supervisor
        self.keys = auth.ChildKeys(
            control=auth.ClientKeys(self.control_server.public, auth.new_keypair()),
            chat=auth.ClientKeys(auth.chat_server_keys(self.chat_root).public,
                                 auth.worker_chat_keys(self.chat_root, self.session)))
        self.route = b""  # the routing id the worker last spoke from
        self.router = self.bind_chat()
        self.settings = WorkerSettings(
            session=self.session,
            state_dir=str(state_dir),
            runtime_dir=str(self.runtime_dir),
            persona=persona or m.Persona(name="default"),
            claude_binary=claude_bin,
            claude_env=dict(cli_env),
            **overrides,
        )
        self.inbox: list[m.Msg] = []
        self.proc: subprocess.Popen[bytes] | None = None
        self.hellos = 0
        self.seen_pids: set[int] = set()

    def bind_chat(self) -> zmq.Socket:  # type: ignore[type-arg]
        """A ROUTER at the chat endpoint, serving as the bot does (the chat server key)."""
        router = self.ctx.socket(zmq.ROUTER)
        router.setsockopt(zmq.LINGER, 0)
        auth.as_server(router, auth.chat_server_keys(self.chat_root), auth.CHAT_DOMAIN)
        router.bind(self.ends.chat)
        return router

    def bind_control(self) -> zmq.Socket:  # type: ignore[type-arg]
        """A ROUTER at the control endpoint with the supervisor's key the worker was given."""
        ctl = self.ctx.socket(zmq.ROUTER)
        ctl.setsockopt(zmq.LINGER, 0)
        auth.as_server(ctl, self.control_server, auth.CONTROL_DOMAIN)
        ctl.bind(self.ends.control)
        return ctl

    # ------------------------------------------------------------------- process

    def start(self, wait_hello: bool = True) -> WorkerHarness:
        env = dict(os.environ)
        env[WORKER_SETTINGS_ENV] = msgspec.json.encode(self.settings).decode()
        keys_fd = auth.keys_pipe(self.keys)
        env[auth.KEYS_FD_ENV] = str(keys_fd)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
        self.log_path = self.state_dir / f"worker-{int(time.time() * 1000)}.out"
        self.state_dir.mkdir(parents=True, exist_ok=True)
        out = open(self.log_path, "wb")  # noqa: SIM115 - closed with the process
        hellos = self.hellos
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "session_worker"],
                env=env,
                cwd=str(self.state_dir),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                pass_fds=(keys_fd,),
            )
        finally:
            out.close()
            os.close(keys_fd)
        self.seen_pids.add(self.proc.pid)
        if wait_hello:
            self.wait_for(lambda: self.hellos > hellos, 15, "Hello from the worker")
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, wait; returns the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout)
        return rc

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except (OSError, AttributeError):
            return ""

    def close(self) -> None:
        try:
            if self.proc is not None and self.proc.poll() is None:
                try:
                    self.stop(20)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
        finally:
            self.router.close(linger=0)
            self.ctx.destroy(linger=0)
            shutil.rmtree(self.runtime_dir, ignore_errors=True)
        left = wait_until_gone(self.session, 5)
        assert not left, f"processes with the marker left behind: {left}"
        for pid in self.seen_pids:
            assert not alive(pid), f"process {pid} still alive"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------- chat

    def send(self, msg: m.Msg) -> None:
        self.send_raw(codec.encode(msg))

    def send_raw(self, frame: bytes) -> None:
        assert self.route, "the worker has not spoken yet: start it (it says Hello) first"
        self.router.send_multipart([self.route, frame])

    def pump(self, timeout: float = 0.05) -> None:
        if self.router.poll(int(timeout * 1000)):
            while True:
                try:
                    frames = self.router.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                assert frames[0].startswith(f"{self.session}/".encode()), frames[0]
                self.route = frames[0]
                msg = codec.to_bot.decode(frames[-1])
                assert not isinstance(msg, codec.DecodeError), msg.reason
                if isinstance(msg, m.Hello):
                    self.hellos += 1
                self.inbox.append(msg)

    def wait_for(self, cond: Callable[[], Any], timeout: float, what: str) -> Any:
        """`wait_until` that pumps the chat socket between polls; a timeout shows the last
        messages and the worker's log."""
        return wait_until(cond, timeout, what, PUMP_STEP, pause=self.pump,
                          detail=lambda: f"got {self.describe()}\n"
                          f"worker log tail:\n{self.log_text()[-3000:]}")

    def describe(self) -> str:
        out = []
        for msg in self.inbox[-30:]:
            if isinstance(msg, m.Event):
                body = msg.body
                text = repr(body)
                out.append(f"#{msg.seq} {text[:160]}")
            else:
                out.append(repr(msg)[:160])
        return "\n".join(out)

    def events(self, key: str | None = None, durable: bool | None = None) -> list[m.Event]:
        evs = [x for x in self.inbox if isinstance(x, m.Event)]
        if key is not None:
            evs = [e for e in evs if e.key == key]
        if durable is True:
            evs = [e for e in evs if e.seq > 0]
        return evs

    def bodies(self, kind: type[Any], key: str | None = None) -> list[Any]:
        return [e.body for e in self.events(key) if isinstance(e.body, kind)]

    def replies(self, req_id: str) -> list[m.Msg]:
        return [x for x in self.inbox if getattr(x, "id", None) == req_id]

    def reply(self, req_id: str, timeout: float = 10) -> m.Msg:
        got = self.wait_for(lambda: self.replies(req_id), timeout, f"a reply to {req_id}")
        return got[0]  # type: ignore[no-any-return]

    def turn(self, text: str, key: str | None = None, chat_id: int = 42) -> str:
        key = key or m.new_id()[:12]
        req = m.UserTurn(id=m.new_id(), key=key, chat_id=chat_id, text=text)
        self.send(req)
        acc = self.reply(req.id)
        assert isinstance(acc, m.Accepted), acc
        return key

    def result(self, key: str, timeout: float = 30) -> m.TurnResult:
        got = self.wait_for(lambda: self.bodies(m.TurnResult, key), timeout, f"the result of {key}")
        return got[0]  # type: ignore[no-any-return]

    def ask(self, text: str, timeout: float = 30) -> tuple[str, m.TurnResult]:
        key = self.turn(text)
        return key, self.result(key, timeout)

    def texts(self, key: str) -> str:
        return "".join(b.text for b in self.bodies(m.AssistantText, key))

    def notices(self) -> list[m.Notice]:
        return self.bodies(m.Notice)

    # ------------------------------------------------------------------- files

    @property
    def session_dir(self) -> Path:
        return self.state_dir / "sessions" / self.session

    def metadata(self) -> dict[str, Any]:
        return json.loads((self.session_dir / "metadata.json").read_text())  # type: ignore[no-any-return]

    def cli_pids(self) -> list[int]:
        """The worker's CLI children (the marker is in their environment)."""
        if self.proc is None or self.proc.poll() is not None:
            return []
        try:
            kids = psutil.Process(self.proc.pid).children()
        except psutil.Error:
            return []
        pids = []
        for k in kids:
            try:
                if (
                    k.environ().get(MARKER_ENV) == self.session
                    and k.status() != psutil.STATUS_ZOMBIE
                ):
                    pids.append(k.pid)
            except psutil.Error:
                continue
        self.seen_pids.update(pids)
        return pids

