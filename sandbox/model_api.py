"""A sandbox Anthropic Messages API for the real Claude Code CLI (ANTHROPIC_BASE_URL).

Run it: ``python -m sandbox.model_api --port 0`` prints ``LISTENING http://127.0.0.1:PORT`` as
its first stdout line and serves until SIGTERM/SIGINT.

Endpoints:
    HEAD|GET /                      200
    POST /v1/messages               scripted answer (SSE when "stream" is true, else a Message)
    POST /v1/messages/count_tokens  {"input_tokens": N}
    GET  /_sandbox/requests         every recorded /v1/messages body (+ "path", "query", "headers")
    GET  /_sandbox/state            {"requests": N, "queued": N, "open_streams": N}
    POST /_sandbox/reset            clear the record and the queued scripts
    POST /_sandbox/script           queue a JSON object of directives for the next model request
    POST /v1/audio/transcriptions   OpenAI-compatible transcription (sandbox.transcription)
    GET  /_sandbox/transcriptions   every recorded transcription request

Scripting: see sandbox.model_scripts. Side requests (no tools and a small model or max_tokens,
e.g. a title) are always echoed and never consume a queued script.

The second half of this module is the client side used by tests, benchmarks and the demo:
``ModelSandbox`` (runs the server as a subprocess; stdlib only) and ``cli_environment``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import shutil
import signal
import sys
import threading
import time
import urllib.request
import uuid
from collections import deque
from pathlib import Path
from typing import Any

from sandbox.model_scripts import (
    THINKING_SIGNATURE,
    DirectiveError,
    Plan,
    Script,
    error_body,
    estimate_tokens,
    is_side_request,
    plan_response,
    rate_limit_headers,
    script_from_directives,
)
from sandbox.server_process import PROJECT_ROOT, ServerProcess
from sandbox.transcription import Transcriptions

HIDDEN_HEADERS = frozenset({"x-api-key", "authorization"})
HANG_POLL_S = 0.05


# ================================================================================================
# Server (aiohttp is imported lazily so the client half works with the stdlib alone)
# ================================================================================================


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class ModelServer:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.queue: deque[Script] = deque()
        self.stopping = asyncio.Event()
        self.open_streams = 0
        self.transcriptions = Transcriptions()

    # --- app -----------------------------------------------------------------------------------

    def app(self) -> Any:
        from aiohttp import web

        @web.middleware
        async def errors(request: web.Request, handler: Any) -> web.StreamResponse:
            if request.path.startswith("/v1/messages") and not (
                request.headers.get("x-api-key") or request.headers.get("authorization")
            ):
                return self._error(401, "x-api-key header is required")
            try:
                return await handler(request)
            except web.HTTPNotFound:
                return self._error(404, f"Not found: {request.method} {request.path}")
            except web.HTTPMethodNotAllowed:
                return self._error(404, f"Not found: {request.method} {request.path}")

        app = web.Application(middlewares=[errors], client_max_size=1024**3)
        app.router.add_get("/", self.root)  # also answers HEAD
        app.router.add_post("/v1/messages", self.messages)
        app.router.add_post("/v1/messages/count_tokens", self.count_tokens)
        app.router.add_get("/_sandbox/requests", self.get_requests)
        app.router.add_get("/_sandbox/state", self.get_state)
        app.router.add_post("/_sandbox/reset", self.reset)
        app.router.add_post("/_sandbox/script", self.queue_script)
        self.transcriptions.add_routes(app)  # POST /v1/audio/transcriptions (sandbox.transcription)
        return app

    @staticmethod
    def _error(
        status: int, message: str | None = None, headers: dict[str, str] | None = None
    ) -> Any:
        from aiohttp import web

        h = {"request-id": "req_sb_" + uuid.uuid4().hex[:20]}
        h.update(headers or {})
        return web.json_response(error_body(status, message), status=status, headers=h)

    # --- control API ---------------------------------------------------------------------------

    async def root(self, request: Any) -> Any:
        from aiohttp import web

        return web.Response(text="sandbox model api\n")

    async def get_requests(self, request: Any) -> Any:
        from aiohttp import web

        return web.json_response(self.records)

    async def get_state(self, request: Any) -> Any:
        from aiohttp import web

        return web.json_response(
            {
                "requests": len(self.records),
                "queued": len(self.queue),
                "open_streams": self.open_streams,
            }
        )

    async def reset(self, request: Any) -> Any:
        from aiohttp import web

        self.records.clear()
        self.queue.clear()
        return web.json_response({"ok": True})

    async def queue_script(self, request: Any) -> Any:
        from aiohttp import web

        try:
            directives = await request.json()
            if not isinstance(directives, dict):
                raise DirectiveError("a JSON object of directives is expected")
            script = script_from_directives(directives)
        except (ValueError, DirectiveError) as exc:
            return self._error(400, str(exc))
        self.queue.append(script)
        return web.json_response({"ok": True, "queued": len(self.queue)})

    # --- Messages API --------------------------------------------------------------------------

    async def count_tokens(self, request: Any) -> Any:
        from aiohttp import web

        raw = await request.read()
        return web.json_response({"input_tokens": estimate_tokens(len(raw))})

    async def messages(self, request: Any) -> Any:
        from aiohttp import web

        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError as exc:
            return self._error(400, f"invalid JSON body: {exc}")
        if not isinstance(body, dict):
            return self._error(400, "the request body must be a JSON object")
        headers = {
            k.lower(): v for k, v in request.headers.items() if k.lower() not in HIDDEN_HEADERS
        }
        self.records.append(
            dict(body, path=request.path, query=request.query_string, headers=headers,
                 received=time.time())  # wall clock: the benchmarks line it up with Telegram's
        )

        override = None
        if self.queue and not is_side_request(body):
            override = self.queue.popleft()
        plan = plan_response(body, override)
        if plan.error is not None:
            extra = {"retry-after": "1"} if plan.error == 429 else {}
            return self._error(plan.error, None, extra)

        model = str(body.get("model", "claude-sandbox"))
        input_tokens = estimate_tokens(len(raw))
        if not body.get("stream"):
            extra = rate_limit_headers(*plan.ratelimit, time.time()) if plan.ratelimit else {}
            return web.json_response(
                self._message(plan, model, input_tokens, final=True), headers=extra)
        return await self._stream(request, plan, model, input_tokens)

    @staticmethod
    def _usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
        return {
            "input_tokens": input_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": output_tokens,
        }

    def _message(self, plan: Plan, model: str, input_tokens: int, final: bool) -> dict[str, Any]:
        return {
            "id": "msg_sb_" + uuid.uuid4().hex[:20],
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [b.content() for b in plan.blocks] if final else [],
            "stop_reason": plan.stop_reason if final else None,
            "stop_sequence": None,
            "usage": self._usage(input_tokens, estimate_tokens(plan.output_chars) if final else 1),
        }

    async def _stream(self, request: Any, plan: Plan, model: str, input_tokens: int) -> Any:
        from aiohttp import web

        headers = {
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
            "request-id": "req_sb_" + uuid.uuid4().hex[:20],
        }
        if plan.ratelimit is not None:
            headers.update(rate_limit_headers(*plan.ratelimit, time.time()))
        resp = web.StreamResponse(status=200, headers=headers)
        await resp.prepare(request)
        self.open_streams += 1
        try:
            await self._write_stream(request, resp, plan, model, input_tokens)
        finally:
            self.open_streams -= 1
        return resp

    async def _write_stream(
        self, request: Any, resp: Any, plan: Plan, model: str, input_tokens: int
    ) -> None:
        deltas_sent = 0
        try:
            await resp.write(
                _sse(
                    "message_start",
                    {
                        "type": "message_start",
                        "message": self._message(plan, model, input_tokens, False),
                    },
                )
            )
            for index, block in enumerate(plan.blocks):
                if block.type == "text":
                    start: dict[str, Any] = {"type": "text", "text": ""}
                elif block.type == "thinking":
                    start = {"type": "thinking", "thinking": "", "signature": ""}
                else:
                    start = {
                        "type": "tool_use",
                        "id": block.tool_id,
                        "name": block.tool_name,
                        "input": {},
                    }
                await resp.write(
                    _sse(
                        "content_block_start",
                        {"type": "content_block_start", "index": index, "content_block": start},
                    )
                )
                if index == 0:
                    await resp.write(_sse("ping", {"type": "ping"}))
                for chunk in block.chunks:
                    if deltas_sent and plan.delay_s:
                        await asyncio.sleep(plan.delay_s)
                    if block.type == "text":
                        delta: dict[str, Any] = {"type": "text_delta", "text": chunk}
                    elif block.type == "thinking":
                        delta = {"type": "thinking_delta", "thinking": chunk}
                    else:
                        delta = {"type": "input_json_delta", "partial_json": chunk}
                    await resp.write(
                        _sse(
                            "content_block_delta",
                            {"type": "content_block_delta", "index": index, "delta": delta},
                        )
                    )
                    deltas_sent += 1
                    if plan.hang:
                        await self._hang(request)
                        return
                if block.type == "thinking":
                    await resp.write(
                        _sse(
                            "content_block_delta",
                            {
                                "type": "content_block_delta",
                                "index": index,
                                "delta": {
                                    "type": "signature_delta",
                                    "signature": THINKING_SIGNATURE,
                                },
                            },
                        )
                    )
                await resp.write(
                    _sse("content_block_stop", {"type": "content_block_stop", "index": index})
                )
            await resp.write(
                _sse(
                    "message_delta",
                    {
                        "type": "message_delta",
                        "delta": {"stop_reason": plan.stop_reason, "stop_sequence": None},
                        "usage": self._usage(input_tokens, estimate_tokens(plan.output_chars)),
                    },
                )
            )
            await resp.write(_sse("message_stop", {"type": "message_stop"}))
            await resp.write_eof()
        except (ConnectionError, RuntimeError):
            pass  # the client went away mid-stream

    async def _hang(self, request: Any) -> None:
        """Wait, sending nothing, until the client disconnects or the server stops."""
        while not self.stopping.is_set():
            transport = request.transport
            if transport is None or transport.is_closing():
                return
            try:
                await asyncio.wait_for(self.stopping.wait(), HANG_POLL_S)
            except TimeoutError:
                pass
        if request.transport is not None:
            request.transport.close()


async def serve(host: str, port: int, exit_on_stdin_eof: bool = False) -> None:
    from aiohttp import web

    # Handlers first: whoever read the LISTENING line may send SIGTERM at once, and that must
    # be a clean stop.
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = ModelServer()
    runner = web.AppRunner(server.app(), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    actual = runner.addresses[0][1]
    sys.stdout.write(f"LISTENING http://{host}:{actual}\n")
    sys.stdout.flush()
    if exit_on_stdin_eof:

        def watch_stdin() -> None:
            try:
                while os.read(0, 4096):  # raw fd: no buffered-reader lock at shutdown
                    pass
            except (OSError, ValueError):
                pass
            loop.call_soon_threadsafe(stop.set)

        threading.Thread(target=watch_stdin, name="stdin-eof", daemon=True).start()
    await stop.wait()
    server.stopping.set()
    await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.model_api", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = an ephemeral port")
    parser.add_argument(
        "--exit-on-stdin-eof",
        action="store_true",
        help="also stop when stdin closes (so the server dies with the process that started it)",
    )
    args = parser.parse_args(argv)
    asyncio.run(serve(args.host, args.port, args.exit_on_stdin_eof))
    return 0


# ================================================================================================
# Client side (stdlib only)
# ================================================================================================

SANDBOX_API_KEY = "sk-sandbox-key"


class ModelSandbox(ServerProcess):
    """The sandbox server as a subprocess: ``with ModelSandbox() as sb: sb.url ...``."""

    module = "sandbox.model_api"
    label = "sandbox model api"

    # --- control API ---------------------------------------------------------------------------

    def _call(self, method: str, path: str, payload: Any = None, timeout: float = 10.0) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        req = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"} if data is not None else {},
        )
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read())

    def requests(self) -> list[dict[str, Any]]:
        """Every recorded /v1/messages request body, oldest first (+ path, query, headers, and
        `received`: the wall-clock time it arrived)."""
        return self._call("GET", "/_sandbox/requests")

    def script(self, **directives: Any) -> None:
        """Queue a behaviour for the next model request, e.g. ``script(error=529)``."""
        self._call("POST", "/_sandbox/script", directives)

    def state(self) -> dict[str, int]:
        """{"requests": N, "queued": N, "open_streams": N} (open_streams: SSE answers in flight)."""
        return self._call("GET", "/_sandbox/state")

    def reset(self) -> None:
        self._call("POST", "/_sandbox/reset", {})

    def transcriptions(self) -> list[dict[str, Any]]:
        """Every recorded POST /v1/audio/transcriptions (model, filename, size, sha256, ...)."""
        return self._call("GET", "/_sandbox/transcriptions")

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Poll until at least ``count`` requests are recorded (deadline: TimeoutError)."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.requests()
            if len(got) >= count:
                return got
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(got)} of {count} requests after {timeout} s")
            time.sleep(0.02)


_DROP_PREFIXES = ("ANTHROPIC_", "CLAUDE", "TELEGRAM_")
_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "ftp_proxy")


def find_claude() -> str | None:
    """The Claude CLI for tests, benchmarks and the demo: $SWITCHBOARD_CLAUDE_BIN, else the copy
    `make setup` pins into .cli/, else one on PATH."""
    env = os.environ.get("SWITCHBOARD_CLAUDE_BIN")
    if env and Path(env).exists():
        return env
    local = PROJECT_ROOT / ".cli" / "node_modules" / ".bin" / "claude"
    if local.exists():
        return str(local)
    return shutil.which("claude")


def subscription_token() -> str:
    """An unsigned token whose audience is Claude's gateway: with it in ANTHROPIC_AUTH_TOKEN
    the CLI reads the `anthropic-ratelimit-unified-*` headers of the answers (as for a
    subscription) and reports them as `rate_limit_event` lines (see #sb:ratelimit)."""
    def part(obj: dict[str, Any]) -> str:
        raw = json.dumps(obj, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part({'aud': 'claude-gateway'})}.sandbox"


def cli_environment(base_url: str, home: Path, subscription: bool = False) -> dict[str, str]:
    """A complete environment for the real CLI against the sandbox: private HOME and config dir,
    dummy key, no telemetry/updater, no proxies (only the loopback sandbox is reachable).
    `subscription`: the CLI also reports subscription limits (subscription_token)."""
    home = Path(home)
    config_dir = home / ".claude"
    config_dir.mkdir(parents=True, exist_ok=True)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.upper().startswith(_DROP_PREFIXES) and k.lower() not in _PROXY_VARS
    }
    env.update(
        {
            "ANTHROPIC_BASE_URL": base_url,
            "ANTHROPIC_API_KEY": SANDBOX_API_KEY,
            "HOME": str(home),
            "CLAUDE_CONFIG_DIR": str(config_dir),
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_AUTOUPDATER": "1",
            "DISABLE_TELEMETRY": "1",
            "DISABLE_ERROR_REPORTING": "1",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            # the CLI refuses bypassPermissions as root unless it is told it runs in a sandbox
            "IS_SANDBOX": "1",
        }
    )
    if subscription:
        env["ANTHROPIC_AUTH_TOKEN"] = subscription_token()
    _write_global_config(config_dir / ".claude.json")
    return env


def _write_global_config(path: Path) -> None:
    """Pre-accept onboarding, the API key and bypass mode (prompts of the interactive UI)."""
    try:
        config = json.loads(path.read_text()) if path.exists() else {}
        if not isinstance(config, dict):
            config = {}
    except (OSError, ValueError):
        config = {}
    config.setdefault("hasCompletedOnboarding", True)
    config.setdefault("bypassPermissionsModeAccepted", True)
    approved = config.setdefault("customApiKeyResponses", {"approved": [], "rejected": []})
    if SANDBOX_API_KEY[-20:] not in approved.setdefault("approved", []):
        approved["approved"].append(SANDBOX_API_KEY[-20:])
    path.write_text(json.dumps(config, indent=2))


if __name__ == "__main__":
    sys.exit(main())
