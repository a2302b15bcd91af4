"""The chat socket: the bot's ROUTER that every session worker's DEALER connects to.

Every worker is authenticated by its CURVE key (wire.auth.ChatPeers): a frame speaks for the
session its key was made for and no other (the `session` field of an Event is checked against
it); a process without a worker's key is never answered and nothing it sends is taken.
The routing id is `<name>/<random>`, a new one per worker process: a message to a session goes
to the connection that last spoke for it, so a restarted worker is reached from its first frame
(its Hello) on, and no peer can take another's route (no ROUTER_HANDOVER). Sends use
ROUTER_MANDATORY: a message for a worker that is not connected fails at once (`send` returns
False) instead of vanishing, and the caller retries. A malformed frame costs one log line.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import cast

import zmq
import zmq.asyncio

from wire import auth, codec
from wire import messages as m
from wire.endpoints import bind_private, release
from wire.rpc import configure

log = logging.getLogger(__name__)

Handler = Callable[[str, m.ChatToBot], Awaitable[None] | None]


def _consume(fut: asyncio.Future[object]) -> None:
    if not fut.cancelled() and fut.exception() is not None:
        log.warning("event=chat_send_failed error=%r", str(fut.exception()))


class ChatServer:
    def __init__(self, ctx: zmq.asyncio.Context, endpoint: str, handler: Handler,
                 chat_root: bytes) -> None:
        self.endpoint = endpoint
        self._handler = handler
        # Bound before the ROUTER: libzmq lets a CURVE peer in unchecked when no handler is there.
        self._zap = auth.ZapHandler(ctx, auth.chat_judge)
        self._peers = auth.ChatPeers(chat_root)
        self._zap_task: asyncio.Task[None] | None = None
        self._sock = ctx.socket(zmq.ROUTER)
        configure(self._sock)
        self._sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self._sock.setsockopt(zmq.SNDHWM, 10000)
        auth.as_server(self._sock, auth.chat_server_keys(chat_root), auth.CHAT_DOMAIN)
        self._claim = bind_private(self._sock, endpoint)
        self._routes: dict[str, bytes] = {}  # session -> routing id of its newest connection
        self._acks: dict[str, asyncio.Future[m.Accepted]] = {}
        self._replies: dict[str, asyncio.Future[m.Ok | m.Error]] = {}

    def close(self) -> None:
        if self._zap_task is not None:
            self._zap_task.cancel()
        self._sock.close(linger=0)
        self._zap.close()
        release(self._claim)

    def connected(self, session: str) -> bool:
        """Has the worker of `session` spoken on this socket (it may have gone since)?"""
        return session in self._routes

    def send(self, session: str, msg: m.Msg) -> bool:
        """Queue `msg` for the worker of `session`; False if that worker is not connected."""
        route = self._routes.get(session)
        if route is None:
            return False
        try:
            # zmq.asyncio reports a NOBLOCK failure on the returned future, not by raising.
            fut = cast("asyncio.Future[object]", self._sock.send_multipart(
                [route, codec.encode(msg)], flags=zmq.NOBLOCK))
        except zmq.ZMQError as exc:
            return self._failed(session, exc)
        if fut.done():
            error = fut.exception()
            if error is not None:
                return self._failed(session, error)
        else:
            fut.add_done_callback(_consume)
        return True

    @staticmethod
    def _failed(session: str, exc: BaseException) -> bool:
        if not (isinstance(exc, zmq.ZMQError) and exc.errno in (zmq.EHOSTUNREACH, zmq.EAGAIN)):
            log.warning("event=chat_send_failed session=%s error=%r", session, str(exc))
        return False

    async def hand_over(self, session: str, turn: m.UserTurn, timeout: float) -> m.Accepted | None:
        """Send a user turn and wait for its Accepted; None when not sent or not acknowledged."""
        fut = self._acks.get(turn.key)
        if fut is None or fut.done():
            fut = asyncio.get_running_loop().create_future()
            self._acks[turn.key] = fut
        try:
            if not self.send(session, turn):
                return None
            return await asyncio.wait_for(asyncio.shield(fut), timeout)
        except TimeoutError:
            return None
        finally:
            if fut.done():
                self._acks.pop(turn.key, None)

    async def request(self, session: str, msg: m.Msg, timeout: float) -> m.Ok | m.Error | None:
        """Send a request with an id (Cancel, PermissionAnswer); the worker's reply, an
        `Error` with code E_UNAVAILABLE when that worker is not connected, or None when it did
        not answer within `timeout`."""
        req_id: str = getattr(msg, "id")  # noqa: B009 - requests all have one
        fut: asyncio.Future[m.Ok | m.Error] = asyncio.get_running_loop().create_future()
        self._replies[req_id] = fut
        try:
            if not self.send(session, msg):
                return m.Error(id=req_id, code=m.E_UNAVAILABLE,
                               message=f"Session {session} is not connected.")
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            return None
        finally:
            self._replies.pop(req_id, None)

    async def run(self) -> None:
        self._zap_task = asyncio.get_running_loop().create_task(self._zap.run(), name="chat-zap")
        try:
            await self._serve()
        finally:
            self._zap_task.cancel()
            await asyncio.gather(self._zap_task, return_exceptions=True)

    async def _serve(self) -> None:
        while True:
            frames = await self._sock.recv_multipart(copy=False)
            if len(frames) < 2:
                continue
            route = bytes(frames[0].buffer)
            identity = self._peers.session_of(route, auth.peer_of(frames[-1]))
            if identity is None:  # not a worker's key, or not the session it names
                log.warning("event=chat_unknown_peer route=%r", route[:40])
                continue
            self._routes[identity] = route
            msg = codec.to_bot.decode(frames[-1].buffer)
            if isinstance(msg, codec.DecodeError):
                log.warning("event=chat_bad_frame session=%s reason=%r", identity, msg.reason)
                continue
            if isinstance(msg, m.Accepted):
                fut = self._acks.get(msg.key)
                if fut is not None and not fut.done():
                    fut.set_result(msg)
                continue
            if isinstance(msg, (m.Ok, m.Error)):
                reply = self._replies.get(msg.id)
                if reply is not None and not reply.done():
                    reply.set_result(msg)
                elif isinstance(msg, m.Error):
                    log.warning("event=chat_error session=%s code=%s", identity, msg.code)
                continue
            if isinstance(msg, (m.Event, m.Hello)) and msg.session != identity:
                log.warning("event=chat_wrong_session identity=%s claimed=%s", identity,
                            msg.session)
                continue
            try:
                result = self._handler(identity, msg)
                if result is not None:
                    await result
            except Exception:
                log.exception("event=chat_handler_failed session=%s kind=%s", identity,
                              type(msg).__name__)
