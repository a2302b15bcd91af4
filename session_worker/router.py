"""The CLI-output router: every stdout line of the CLI, parsed and sent where it belongs.

`Router.on_line` parses one line (stream_json.parse_line), translates it (translate.Translator)
and routes what it says: events out to the chat, the Claude session id to the session's state,
permission asks to the prompts, replies to our own control requests to whoever waits on them,
unsupported control requests back to the CLI as errors, API retries and turn results to the
turn runner.

It must never raise on a line (the CLI's output is untrusted) and never decide what a turn's
end means (that is policy.py, through turns.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from session_worker import notices, stream_json, translate
from session_worker.emitter import Emitter
from session_worker.prompts import Prompts, Send
from session_worker.state import SessionState
from session_worker.store import InboxItem
from session_worker.stream_json import Oversized
from session_worker.translate import ApiRetry, ControlReply
from wire import messages as m

log = logging.getLogger(__name__)


class TurnSide(Protocol):
    """What the router needs of the turn runner (turns.TurnRunner)."""

    def current_item(self) -> InboxItem | None: ...

    def on_result(self, result: m.TurnResult) -> None: ...

    def on_api_retry(self, retry: ApiRetry) -> None: ...


class ControlWaiters:
    """Our control requests to the CLI (interrupt) that wait for its control_response."""

    def __init__(self) -> None:
        self._waiters: dict[str, asyncio.Future[ControlReply]] = {}

    def expect(self, request_id: str) -> asyncio.Future[ControlReply]:
        fut: asyncio.Future[ControlReply] = asyncio.get_running_loop().create_future()
        self._waiters[request_id] = fut
        return fut

    def forget(self, request_id: str) -> None:
        self._waiters.pop(request_id, None)

    def resolve(self, reply: ControlReply) -> None:
        fut = self._waiters.pop(reply.request_id, None)
        if fut is not None and not fut.done():
            fut.set_result(reply)

    def cancel_all(self) -> None:
        """The CLI is gone: nothing it was asked will be answered."""
        for fut in self._waiters.values():
            if not fut.done():
                fut.cancel()
        self._waiters.clear()


# One JSON-RPC message for the worker's MCP server -> its response (None: a notification).
McpHandler = Callable[[Any], Awaitable[dict[str, Any] | None]]


class Router:
    def __init__(
        self,
        translator: translate.Translator,
        state: SessionState,
        emitter: Emitter,
        prompts: Prompts,
        waiters: ControlWaiters,
        send: Send,
        turns: TurnSide,
        mcp: dict[str, McpHandler] | None = None,
        on_rate_window: Callable[[m.RateWindow], None] | None = None,
    ) -> None:
        self.translator = translator
        self._mcp = mcp or {}
        self._state = state
        self._out = emitter
        self._prompts = prompts
        self._waiters = waiters
        self._send = send
        self._turns = turns
        self._on_rate_window = on_rate_window

    # ------------------------------------------------------------------- lines

    async def on_line(self, line: bytes | Oversized) -> None:
        parsed = stream_json.parse_line(line)
        if isinstance(parsed, stream_json.Skipped):
            if parsed.preview:
                log.info("event=cli_debug_line line=%r", parsed.preview)
            return
        if isinstance(parsed, stream_json.BadLine):
            log.warning("event=cli_bad_line reason=%r size=%d", parsed.reason, parsed.size)
            self._out.notice("warning", notices.unreadable_line(parsed.reason))
            return
        if isinstance(parsed, stream_json.Repaired):
            log.warning("event=cli_line_repaired reason=%r", parsed.reason)
            self._out.notice("warning", notices.repaired_line(parsed.reason))
            parsed = parsed.obj
        out = self.translator.translate(parsed)
        if out.session_id:
            self._state.set_claude_session_id(out.session_id)
        for e in out.emits:
            self._out.emit(e.body, ephemeral=e.ephemeral)
        if out.permission is not None:
            item = self._turns.current_item()
            await self._prompts.ask(
                out.permission, item.chat_id if item else None, item.key if item else ""
            )
        if out.control_reply is not None:
            self._waiters.resolve(out.control_reply)
        if out.other_request is not None:
            await self._refuse(out.other_request)
        if out.mcp is not None:
            await self._serve_mcp(out.mcp)
        if out.cancelled_request is not None:
            self._prompts.withdrawn(out.cancelled_request)
        if out.api_retry is not None:
            self._turns.on_api_retry(out.api_retry)
        if self._on_rate_window is not None:
            for window in out.rate_windows:
                self._on_rate_window(window)
        if out.result is not None:
            self._turns.on_result(out.result)

    async def _serve_mcp(self, req: translate.McpRequest) -> None:
        handler = self._mcp.get(req.server)
        if handler is None:
            log.info("event=mcp_unknown_server server=%r", req.server)
            await self._send(stream_json.control_error_line(
                req.request_id, f"no MCP server {req.server!r} here"))
            return
        try:
            response = await handler(req.message)
        except Exception as exc:  # noqa: BLE001 - a tool's failure is Claude's error, not ours
            log.exception("event=mcp_failed server=%s", req.server)
            await self._send(stream_json.control_error_line(req.request_id, str(exc)))
            return
        await self._send(stream_json.mcp_response_line(req.request_id, response))

    async def _refuse(self, req: translate.OtherControlRequest) -> None:
        log.info("event=control_request_unsupported subtype=%s", req.subtype)
        await self._send(
            stream_json.control_error_line(req.request_id, f"unsupported: {req.subtype}")
        )

