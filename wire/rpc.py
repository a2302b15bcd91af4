"""Request/reply over ZeroMQ DEALER sockets, with ids, deadlines and clear timeouts.

`Requester` (asyncio, in wire.rpc_async) is what the bot and the workers use to talk to the
supervisor's control socket, and it answers the supervisor's heartbeat `Ping`s on the same
socket. `request_sync` is the blocking form that `switchboardctl` uses; it lives here without
asyncio so that a `switchboardctl status` does not pay for importing it. Both time out with a
sentence that names the fix instead of hanging when the other side is not there.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import zmq

from wire import auth, codec
from wire import messages as m

if TYPE_CHECKING:  # type checkers see the class; at run time it is imported lazily (below)
    from wire.rpc_async import Requester as Requester

log = logging.getLogger(__name__)


class RpcTimeout(TimeoutError):
    """No answer in time; str() says what to do."""


def configure(sock: zmq.Socket, max_frame: int = codec.MAX_FRAME) -> None:  # type: ignore[type-arg]
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.MAXMSGSIZE, max_frame)


def __getattr__(name: str) -> Any:
    if name == "Requester":  # imported lazily: it pulls in asyncio
        from wire.rpc_async import Requester

        return Requester
    raise AttributeError(name)


def not_running_message(endpoint: str) -> str:
    return (
        f"the supervisor is not answering on {endpoint}: start it with `switchboard run -c CONFIG`"
        " (or check that -c names the same config)."
    )


def owner_keys_for(endpoint: str) -> auth.ClientKeys:
    """The owner's key for the supervisor behind `endpoint` (its runtime dir's owner.key)."""
    try:
        return auth.load_owner_keys(Path(endpoint.removeprefix("ipc://")).parent).control
    except auth.KeyFileError as exc:
        raise RpcTimeout(str(exc)) from None


def request_sync(endpoint: str, msg: m.Msg, timeout: float = 5.0,
                 keys: auth.ClientKeys | None = None) -> m.Ok | m.Error:
    """One blocking request as the owner (or with `keys`); raises RpcTimeout with a clear
    sentence when nobody answers."""
    path = endpoint.removeprefix("ipc://")
    if endpoint.startswith("ipc://") and not Path(path).exists():
        raise RpcTimeout(
            f"the supervisor is not running (no socket at {path}): start it with"
            " `switchboard run -c CONFIG`."
        )
    keys = keys or owner_keys_for(endpoint)
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    configure(sock)
    try:
        auth.as_client(sock, keys)
        sock.connect(endpoint)
        sock.send(codec.encode(msg))
        req_id: str = getattr(msg, "id")  # noqa: B009 - every request has one; Msg does not
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
