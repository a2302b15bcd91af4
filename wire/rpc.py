"""Request/reply over ZeroMQ DEALER sockets, with ids, deadlines and clear timeouts.

`Requester` (asyncio) is what the bot and the workers use to talk to the supervisor's control
socket, and it answers the supervisor's heartbeat `Ping`s on the same socket. `request_sync` is
the blocking form that `switchboardctl` uses. Both time out with a sentence that names the fix
instead of hanging when the other side is not there.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path

import zmq
import zmq.asyncio

from wire import codec
from wire import messages as m

log = logging.getLogger(__name__)


class RpcTimeout(TimeoutError):
    """No answer in time; str() says what to do."""


def configure(sock: zmq.Socket, max_frame: int = codec.MAX_FRAME) -> None:  # type: ignore[type-arg]
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.MAXMSGSIZE, max_frame)


def not_running_message(endpoint: str) -> str:
    return (
        f"the supervisor is not answering on {endpoint}: start it with `switchboard run -c CONFIG`"
        " (or check that -c names the same config)."
    )


class Requester:
    """An asyncio DEALER that matches replies to requests by id and answers Pings."""

    def __init__(
        self,
        ctx: zmq.asyncio.Context,
        endpoint: str,
        *,
        identity: bytes | None = None,
        on_ping: Callable[[m.Ping], m.Pong] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self._sock = ctx.socket(zmq.DEALER)
        configure(self._sock)
        if identity is not None:
            self._sock.setsockopt(zmq.IDENTITY, identity)
        self._sock.connect(endpoint)
        self._pending: dict[str, asyncio.Future[m.Ok | m.Error]] = {}
        self._on_ping = on_ping
        self._reader: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._reader is None:
            self._reader = asyncio.get_running_loop().create_task(self._read(), name="rpc-reader")

    async def _read(self) -> None:
        while True:
            frames = await self._sock.recv_multipart(copy=False)
            msg = codec.control_replies.decode(frames[-1].buffer)
            if isinstance(msg, codec.DecodeError):
                log.warning("event=bad_frame endpoint=%s reason=%r", self.endpoint, msg.reason)
                continue
            if isinstance(msg, m.Ping):
                if self._on_ping is not None:
                    await self._sock.send(codec.encode(self._on_ping(msg)))
                continue
            fut = self._pending.pop(msg.id, None)
            if fut is not None and not fut.done():
                fut.set_result(msg)

    async def send(self, msg: m.Msg) -> None:
        """Fire a message that expects no reply (e.g. Register's answer is not awaited)."""
        await self._sock.send(codec.encode(msg))

    async def request(self, msg: m.Msg, timeout: float = 5.0) -> m.Ok | m.Error:
        self.start()
        req_id: str = getattr(msg, "id")
        fut: asyncio.Future[m.Ok | m.Error] = asyncio.get_running_loop().create_future()
        self._pending[req_id] = fut
        try:
            await self._sock.send(codec.encode(msg))
            return await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            raise RpcTimeout(not_running_message(self.endpoint)) from None
        finally:
            self._pending.pop(req_id, None)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            try:
                await self._reader
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
        self._sock.close(linger=0)


def request_sync(endpoint: str, msg: m.Msg, timeout: float = 5.0) -> m.Ok | m.Error:
    """One blocking request; raises RpcTimeout with a clear sentence when nobody answers."""
    path = endpoint.removeprefix("ipc://")
    if endpoint.startswith("ipc://") and not Path(path).exists():
        raise RpcTimeout(
            f"the supervisor is not running (no socket at {path}): start it with"
            " `switchboard run -c CONFIG`."
        )
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    configure(sock)
    try:
        sock.connect(endpoint)
        sock.send(codec.encode(msg))
        req_id: str = getattr(msg, "id")
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not sock.poll(int(left * 1000)):
                raise RpcTimeout(not_running_message(endpoint))
            reply = codec.control_replies.decode(sock.recv())
            if isinstance(reply, (m.Ok, m.Error)) and reply.id == req_id:
                return reply
    finally:
        sock.close(linger=0)
