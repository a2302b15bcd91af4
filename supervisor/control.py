"""The control socket (ROUTER) and the events socket (PUB).

Every frame that arrives is decoded with wire.codec; garbage gets an `Error` reply that echoes
whatever id could be salvaged, and the server keeps serving. Each request runs in its own task,
so a `stop` that waits `stopwaitsecs` never delays a `status` (no global command lock); the
server owns those tasks and cancels them on close.

Children (the bot, the workers) connect DEALERs with identity = program name and send
`Register`; `Ping`s go out to that identity and `Pong`s come back on the same socket.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import zmq
import zmq.asyncio

from wire import codec, rpc
from wire import messages as m
from wire.endpoints import Endpoints, make_private

log = logging.getLogger(__name__)

Handler = Callable[[bytes, m.Msg], Awaitable[m.Ok | m.Error | None]]


class ControlServer:
    def __init__(self, ctx: zmq.asyncio.Context, endpoints: Endpoints, handler: Handler) -> None:
        self._handler = handler
        self._sock = ctx.socket(zmq.ROUTER)
        rpc.configure(self._sock)
        # A restarted worker reuses its identity at once instead of waiting for the old pipe.
        self._sock.setsockopt(zmq.ROUTER_HANDOVER, 1)
        self._sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self._sock.bind(endpoints.control)
        make_private(endpoints.control)
        self._tasks: set[asyncio.Task[None]] = set()

    async def serve(self) -> None:
        try:
            while True:
                frames = await self._sock.recv_multipart(copy=False)
                identity = bytes(frames[0].buffer)
                if len(frames) != 2:
                    await self.send(identity, m.Error(
                        id="", code=m.E_BAD_REQUEST,
                        message=f"expected one frame per message, got {len(frames) - 1}"))
                    continue
                payload = frames[1].bytes
                msg = codec.control_requests.decode(payload)
                if isinstance(msg, codec.DecodeError):
                    log.warning("event=bad_frame peer=%r reason=%r", identity[:40], msg.reason)
                    await self.send(identity, m.Error(id=codec.request_id_of(payload),
                                                      code=m.E_BAD_REQUEST, message=msg.reason))
                    continue
                task = asyncio.get_running_loop().create_task(self._run(identity, msg))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        finally:
            for t in list(self._tasks):
                t.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _run(self, identity: bytes, msg: m.Msg) -> None:
        req_id = getattr(msg, "id", "")
        try:
            reply = await self._handler(identity, msg)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("event=request_failed type=%s", type(msg).__name__)
            reply = m.Error(id=req_id, code=m.E_INTERNAL,
                            message=f"the supervisor failed on this request ({exc}); see its log.")
        if reply is not None:
            await self.send(identity, reply)

    async def send(self, identity: bytes, msg: m.Msg) -> bool:
        try:
            await self._sock.send_multipart([identity, codec.encode(msg)])
            return True
        except zmq.ZMQError as exc:
            if exc.errno != zmq.EHOSTUNREACH:
                log.warning("event=send_failed peer=%r error=%r", identity[:40], str(exc))
            return False

    def close(self) -> None:
        self._sock.close(linger=0)


class EventPublisher:
    """PUB of StateChange, one msgpack frame each (subscribe to b"", decode with codec.events)."""

    def __init__(self, ctx: zmq.asyncio.Context, endpoints: Endpoints) -> None:
        self._sock = ctx.socket(zmq.PUB)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.setsockopt(zmq.SNDHWM, 10000)
        self._sock.bind(endpoints.events)
        make_private(endpoints.events)

    def publish(self, event: m.StateChange) -> None:
        try:
            # PUB never blocks: at the high-water mark a slow subscriber loses events.
            self._sock.send(codec.encode(event), flags=zmq.NOBLOCK)
        except zmq.ZMQError as exc:
            log.warning("event=publish_failed error=%r", str(exc))

    def close(self) -> None:
        self._sock.close(linger=0)
