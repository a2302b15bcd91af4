"""A test's typed view of a running supervisor: its control socket and its events socket.

`Control` asks the supervisor what a user's `switchboardctl` would (status, one program's
state, the sweeps it ran) but gets typed rows back, and subscribes to its StateChange events.
Both the supervisor harness and the whole-stack harness hand one to their tests. It holds the
owner's key the way switchboardctl does (`<runtime_dir>/owner.key`). It only talks
to a supervisor someone else started; it never starts, signals or kills a process.
"""
from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zmq
from zmq.utils.monitor import recv_monitor_message

from tests.support.waits import wait_until
from wire import auth, codec, rpc
from wire import messages as m
from wire.endpoints import Endpoints


class Control:
    """Requests and events for the supervisor whose runtime dir is `runtime_dir`."""

    def __init__(self, runtime_dir: Path) -> None:
        self.endpoints = Endpoints(runtime_dir)
        # The supervisor's own process, for a test that looks at its children (set by whoever
        # started it).
        self.proc: subprocess.Popen[bytes] | None = None
        self._sub: zmq.Socket | None = None  # type: ignore[type-arg]
        self.events: list[m.StateChange] = []

    # ------------------------------------------------------------------ requests

    def request(self, msg: m.Msg, timeout: float = 10.0) -> m.Ok | m.Error:
        return rpc.request_sync(self.endpoints.control, msg, timeout=timeout)

    def ok(self, msg: m.Msg, timeout: float = 15.0) -> Any:
        reply = self.request(msg, timeout)
        assert isinstance(reply, m.Ok), reply
        return reply.result

    def answers(self) -> bool:
        """The control socket answers a Version request (within half a second)."""
        try:
            return isinstance(self.request(m.Version(id=m.new_id()), timeout=0.5), m.Ok)
        except rpc.RpcTimeout:
            return False

    def status(self) -> dict[str, m.ProgramStatus]:
        res = self.ok(m.Status(id=m.new_id()))
        return {r.name: r for r in res.programs}

    def sweeps(self) -> int:
        """How many psutil sweeps the supervisor has completed."""
        return int(self.ok(m.Status(id=m.new_id())).sweeps)

    def wait_sweeps(self, count: int, timeout: float = 10.0) -> None:
        """Until `count` more sweeps have run, all of them begun after this call."""
        # +1: a sweep already running now may have looked at the processes before the caller's
        # last change.
        target = self.sweeps() + count + 1
        wait_until(lambda: self.sweeps() >= target, timeout, f"{count} more sweeps")

    def state(self, program: str) -> str | None:
        row = self.status().get(program)
        return row.state if row else None

    def wait_state(self, program: str, state: str, timeout: float = 10.0) -> m.ProgramStatus:
        def check() -> m.ProgramStatus | None:
            row = self.status().get(program)
            return row if row and row.state == state else None
        return wait_until(check, timeout, f"{program} to be {state}")  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ events

    def subscribe(self) -> None:
        ctx: zmq.Context[Any] = zmq.Context.instance()
        self._sub = ctx.socket(zmq.SUB)
        self._sub.setsockopt(zmq.LINGER, 0)
        self._sub.setsockopt(zmq.SUBSCRIBE, b"")
        # The owner's key, read from the runtime dir exactly as switchboardctl reads it.
        auth.as_client(self._sub, rpc.owner_keys_for(self.endpoints.control))
        # A SUB misses what is published before its connection is up: wait for the handshake.
        monitor = self._sub.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)
        try:
            self._sub.connect(self.endpoints.events)
            if not monitor.poll(10_000):
                raise AssertionError("timed out after 10s waiting for the events socket handshake")
            event = recv_monitor_message(monitor)
            assert event["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED, event
        finally:
            self._sub.disable_monitor()
            monitor.close(linger=0)

    def drain_events(self) -> list[m.StateChange]:
        assert self._sub is not None
        while self._sub.poll(0):
            ev = codec.events.decode(self._sub.recv())
            assert not isinstance(ev, codec.DecodeError), ev
            self.events.append(ev)
        return self.events

    def wait_event(self, pred: Callable[[m.StateChange], bool], timeout: float = 10.0,
                   what: str = "an event") -> m.StateChange:
        def check() -> m.StateChange | None:
            return next((e for e in self.drain_events() if pred(e)), None)
        return wait_until(check, timeout, what)  # type: ignore[no-any-return]

    def close_events(self) -> None:
        if self._sub is not None:
            self._sub.close(linger=0)
            self._sub = None
