"""The asyncio side of wire.rpc: a DEALER that matches replies to requests and answers the
supervisor's Pings and Reloads."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import zmq
import zmq.asyncio

from wire import auth, codec
from wire import messages as m
from wire.rpc import RpcTimeout, configure, not_running_message

log = logging.getLogger("wire.rpc")


class Requester:
    """An asyncio DEALER that matches replies to requests by id and answers Pings."""

    def __init__(
        self,
        ctx: zmq.asyncio.Context,
        endpoint: str,
        *,
        keys: auth.ClientKeys | None = None,
        identity: bytes | None = None,
        on_ping: Callable[[m.Ping], m.Pong] | None = None,
        on_reload: Callable[[m.Reload], m.Ok | m.Error] | None = None,
        on_detach: Callable[[m.Detach], Awaitable[m.Ok | m.Error]] | None = None,
    ) -> None:
        """`keys`: this peer's CURVE key for the supervisor (the supervisor knows who we are by
        it; `identity` is only a routing hint and proves nothing)."""
        self.endpoint = endpoint
        self._sock = ctx.socket(zmq.DEALER)
        configure(self._sock)
        if keys is not None:
            auth.as_client(self._sock, keys)
        if identity is not None:
            self._sock.setsockopt(zmq.IDENTITY, identity)
        self._sock.connect(endpoint)
        self._pending: dict[str, asyncio.Future[m.Ok | m.Error]] = {}
        self._on_ping = on_ping
        self._on_reload = on_reload
        self._on_detach = on_detach
        self._answering: set[asyncio.Task[None]] = set()  # Detach answers (they take a while)
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
            if isinstance(msg, m.Reload):
                await self._sock.send(codec.encode(self._reload(msg)))
                continue
            if isinstance(msg, m.Detach):  # answered from its own task: Pings go on meanwhile
                task = asyncio.get_running_loop().create_task(self._detach(msg))
                self._answering.add(task)
                task.add_done_callback(self._answering.discard)
                continue
            fut = self._pending.pop(msg.id, None)
            if fut is not None and not fut.done():
                fut.set_result(msg)

    def _reload(self, msg: m.Reload) -> m.Ok | m.Error:
        if self._on_reload is None:
            return m.Error(id=msg.id, code=m.E_BAD_REQUEST,
                           message="this program cannot reload its settings: restart it.")
        try:
            return self._on_reload(msg)
        except Exception as exc:  # noqa: BLE001 - a bad reload must not end the reader
            log.exception("event=reload_failed")
            return m.Error(id=msg.id, code=m.E_INTERNAL,
                           message=f"the reload failed ({type(exc).__name__}): restart it.")

    async def _detach(self, msg: m.Detach) -> None:
        if self._on_detach is None:
            reply: m.Ok | m.Error = m.Error(id=msg.id, code=m.E_BAD_REQUEST,
                                            message="this program has no CLI to hand off.")
        else:
            try:
                reply = await self._on_detach(msg)
            except Exception as exc:  # noqa: BLE001 - a failed handoff must not end the reader
                log.exception("event=detach_failed")
                reply = m.Error(id=msg.id, code=m.E_INTERNAL,
                                message=f"the handoff failed ({type(exc).__name__}): try again.")
        await self._sock.send(codec.encode(reply))

    async def send(self, msg: m.Msg) -> None:
        """Fire a message that expects no reply (e.g. Register's answer is not awaited)."""
        await self._sock.send(codec.encode(msg))

    async def request(self, msg: m.Msg, timeout: float = 5.0) -> m.Ok | m.Error:
        self.start()
        req_id: str = getattr(msg, "id")  # noqa: B009 - every request has one; Msg does not
        fut: asyncio.Future[m.Ok | m.Error] = asyncio.get_running_loop().create_future()
        self._pending[req_id] = fut
        try:
            await self._sock.send(codec.encode(msg))
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            raise RpcTimeout(not_running_message(self.endpoint)) from None
        finally:
            self._pending.pop(req_id, None)

    async def close(self) -> None:
        for task in list(self._answering):
            task.cancel()
        if self._reader is not None:
            self._reader.cancel()
            try:
                await self._reader
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
        self._sock.close(linger=0)
