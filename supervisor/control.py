"""The control socket (ROUTER) and the events socket (PUB).

Every frame that arrives is decoded with wire.codec; garbage gets an `Error` reply that echoes
whatever id could be salvaged, and the server keeps serving. Each request runs in its own task,
so a `stop` that waits `stopwaitsecs` never delays a `status` (no global command lock); the
server owns those tasks and cancels them on close.

Every peer is authenticated (wire.auth): the name a request is handled as is the ZAP User-Id of
its key (`owner` for switchboardctl, `bot`, `session:<name>`), never the routing id, which
libzmq assigns per connection. A worker's key may only Register and answer (Pings, Reloads): a
session's process cannot stop or start anything. `Ping`s go to the newest connection of that
program, so a restarted child is reached as soon as its first frame arrives (no ROUTER_HANDOVER:
a peer can no longer take another's route by claiming its routing id).
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import zmq
import zmq.asyncio

from wire import auth, codec, rpc
from wire import messages as m
from wire.endpoints import Endpoints, bind_private, release
from wire.names import SESSION_PREFIX

log = logging.getLogger(__name__)

Handler = Callable[[bytes, m.Msg], Awaitable[m.Ok | m.Error | None]]
# What a worker's key may send; everything else is the owner's and the bot's.
# Register, and answers: Pong to a Ping, Ok/Error to a Reload (the supervisor takes an Ok or
# Error only as the answer to a Reload it sent to that very peer; see Supervisor.on_child_answer).
WORKER_MAY_SEND = (m.Register, m.Pong, m.Ok, m.Error)


class ControlServer:
    def __init__(self, ctx: zmq.asyncio.Context, endpoints: Endpoints, handler: Handler,
                 keys: auth.RunKeys) -> None:
        self._handler = handler
        # Bound before any server socket of this context: see wire.auth.ZapHandler.
        self._zap = auth.ZapHandler(ctx, keys.judge)
        self._sock = ctx.socket(zmq.ROUTER)
        rpc.configure(self._sock)
        self._sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        auth.as_server(self._sock, keys.server, auth.CONTROL_DOMAIN)
        self._claim = bind_private(self._sock, endpoints.control)
        self._routes: dict[bytes, bytes] = {}  # peer name -> routing id of its newest connection
        self._tasks: set[asyncio.Task[None]] = set()

    async def serve(self) -> None:
        zap = asyncio.get_running_loop().create_task(self._zap.run(), name="zap")
        try:
            while True:
                frames = await self._sock.recv_multipart(copy=False)
                route = bytes(frames[0].buffer)
                peer = auth.peer_of(frames[-1]).encode()
                if not peer:  # cannot happen past ZAP; refuse rather than trust a routing id
                    continue
                self._routes[peer] = route
                if len(frames) != 2:
                    await self._send_route(route, m.Error(
                        id="", code=m.E_BAD_REQUEST,
                        message=f"expected one frame per message, got {len(frames) - 1}"))
                    continue
                payload = frames[1].bytes
                msg = codec.control_requests.decode(payload)
                if isinstance(msg, codec.DecodeError):
                    log.warning("event=bad_frame peer=%r reason=%r", peer[:40], msg.reason)
                    await self._send_route(route, m.Error(id=codec.request_id_of(payload),
                                                          code=m.E_BAD_REQUEST, message=msg.reason))
                    continue
                if peer.startswith(SESSION_PREFIX.encode()) and not isinstance(msg,
                                                                               WORKER_MAY_SEND):
                    log.warning("event=request_refused peer=%r type=%s", peer[:40],
                                type(msg).__name__)
                    await self._send_route(route, m.Error(
                        id=getattr(msg, "id", ""), code=m.E_BAD_REQUEST,
                        message="a session may only register and answer pings on this socket."))
                    continue
                task = asyncio.get_running_loop().create_task(self._run(peer, route, msg))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        finally:
            for t in [*self._tasks, zap]:
                t.cancel()
            await asyncio.gather(zap, *self._tasks, return_exceptions=True)

    async def _run(self, peer: bytes, route: bytes, msg: m.Msg) -> None:
        req_id = getattr(msg, "id", "")
        try:
            reply = await self._handler(peer, msg)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("event=request_failed type=%s", type(msg).__name__)
            reply = m.Error(id=req_id, code=m.E_INTERNAL,
                            message=f"the supervisor failed on this request ({exc}); see its log.")
        if reply is not None:
            await self._send_route(route, reply)

    async def send(self, peer: bytes, msg: m.Msg) -> bool:
        """Send to the newest connection of `peer` (a program name); False if it has none."""
        route = self._routes.get(peer)
        return route is not None and await self._send_route(route, msg)

    async def _send_route(self, route: bytes, msg: m.Msg) -> bool:
        try:
            await self._sock.send_multipart([route, codec.encode(msg)])
            return True
        except zmq.ZMQError as exc:
            if exc.errno != zmq.EHOSTUNREACH:
                log.warning("event=send_failed route=%r error=%r", route.hex(), str(exc))
            return False

    def close(self) -> None:
        self._sock.close(linger=0)
        self._zap.close()
        release(self._claim)


class EventPublisher:
    """PUB of StateChange, one msgpack frame each (subscribe to b"", decode with codec.events)."""

    def __init__(self, ctx: zmq.asyncio.Context, endpoints: Endpoints,
                 keys: auth.RunKeys) -> None:
        """Only the owner's and the bot's keys may subscribe (wire.auth.RunKeys.judge); the ZAP
        handler is the ControlServer's, made first on the same context."""
        self._sock = ctx.socket(zmq.PUB)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.setsockopt(zmq.SNDHWM, 10000)
        auth.as_server(self._sock, keys.server, auth.EVENTS_DOMAIN)
        self._claim = bind_private(self._sock, endpoints.events)

    def publish(self, event: m.StateChange) -> None:
        try:
            # PUB never blocks: at the high-water mark a slow subscriber loses events.
            self._sock.send(codec.encode(event), flags=zmq.NOBLOCK)
        except zmq.ZMQError as exc:
            log.warning("event=publish_failed error=%r", str(exc))

    def close(self) -> None:
        self._sock.close(linger=0)
        release(self._claim)
