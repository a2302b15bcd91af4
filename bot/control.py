"""The bot's side of the supervisor's control socket: register, answer pings, ask for things.

Every failure comes back as `Refused` whose str() is one sentence for the chat: the
supervisor's own `Error.message`, or a plain "not answering" when it does not reply in time.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable

import zmq.asyncio

from wire import auth
from wire import messages as m
from wire.names import BOT_PROGRAM
from wire.rpc import Requester, RpcTimeout

log = logging.getLogger(__name__)

NOT_ANSWERING = (
    "The supervisor is not answering right now: try again in a moment, or check"
    " `switchboard run` on the host."
)


class Refused(Exception):
    """A request that did not work; str() is the sentence for the user."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class SupervisorClient:
    """The bot's client of the supervisor (a DEALER with the bot's key)."""

    def __init__(self, ctx: zmq.asyncio.Context, endpoint: str, keys: auth.ClientKeys,
                 timeout: float = 5.0) -> None:
        self.timeout = timeout
        # "" while the bot can keep its promise; else the sentence the heartbeat reports.
        self.health: Callable[[], str] = lambda: ""
        # Set by bot.app once the parts exist: applies a SIGHUP's settings (bot.reload).
        self.on_reload: Callable[[m.Reload], m.Ok | m.Error] | None = None
        # The supervisor knows us as the bot by our key; the routing id is libzmq's own.
        self.rpc = Requester(ctx, endpoint, keys=keys, on_ping=self._pong,
                             on_reload=self._reload)

    def _pong(self, ping: m.Ping) -> m.Pong:
        return m.Pong(id=ping.id, unhealthy=self.health())

    def _reload(self, msg: m.Reload) -> m.Ok | m.Error:
        if self.on_reload is None:
            return m.Error(id=msg.id, code=m.E_UNAVAILABLE,
                           message="the bot is still starting: send SIGHUP again in a moment.")
        return self.on_reload(msg)

    async def register(self) -> None:
        self.rpc.start()
        await self.rpc.send(m.Register(id=m.new_id(), program=BOT_PROGRAM, pid=os.getpid()))

    async def call(self, msg: m.Msg, timeout: float | None = None) -> m.Result:
        try:
            reply = await self.rpc.request(msg, timeout or self.timeout)
        except RpcTimeout:
            log.warning("event=supervisor_timeout request=%s", type(msg).__name__)
            raise Refused(NOT_ANSWERING, "timeout") from None
        if isinstance(reply, m.Error):
            log.info("event=supervisor_refused request=%s code=%s", type(msg).__name__, reply.code)
            raise Refused(reply.message, reply.code)
        return reply.result

    async def status(self) -> list[m.ProgramStatus]:
        result = await self.call(m.Status(id=m.new_id()))
        if not isinstance(result, m.StatusResult):
            raise Refused("The supervisor gave an unexpected answer: try again.")
        return result.programs

    async def close(self) -> None:
        await self.rpc.close()
