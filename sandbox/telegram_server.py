"""The sandbox Telegram Bot API as an aiohttp application on 127.0.0.1.

- ``{base}/bot{token}/{method}``: the Bot API (see :mod:`sandbox.telegram_methods`), with the
  call log and the injected faults;
- ``{base}/file/bot{token}/{file_path}``: file downloads;
- ``/_sandbox/...`` (each request carries the ``X-Sandbox-Key`` its starter was given, else 403):
  the test's side (act as a user, read a chat, its topics and drafts, the call
  log, faults, reset).

Run it with ``python -m sandbox.telegram_api`` (see there); this module needs aiohttp.
"""

from __future__ import annotations

import asyncio
import collections
import hmac
import json
import re
import socket
import time
from typing import Any

from aiohttp import web

from sandbox import telegram_drafts as drafts
from sandbox import telegram_media as media
from sandbox import telegram_topics as topics
from sandbox import telegram_users as users
from sandbox.server_process import USER_KEY_HEADER
from sandbox.telegram_methods import METHODS, Params, Upload
from sandbox.telegram_state import DEFAULT_TOKEN, ApiError, BotState, dumps

TOKEN_RE = re.compile(r"\d+:[A-Za-z0-9_-]+")
FAULT_KINDS = {"429", "5xx", "slow", "drop_before", "drop_after"}
STATUS_TEXT = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
MAX_CALLS = 100_000


class Faults:
    """Rules a test switches on: each matches a method (or any) and a chat (or any), ``count``
    times, or with ``seconds`` every time for that long (a Telegram behind a proxy that answers
    502 for a while: ``{"kind": "5xx", "seconds": 60}``). The method name "download" matches
    file downloads."""

    def __init__(self) -> None:
        self.rules: list[dict[str, Any]] = []
        self.next_id = 1

    def add(self, body: dict[str, Any]) -> dict[str, Any]:
        kind = str(body.get("kind", ""))
        if kind not in FAULT_KINDS:
            raise ApiError(400, f"kind must be one of {sorted(FAULT_KINDS)}, not {kind!r}")
        try:
            count, retry_after = int(body.get("count", 1)), int(body.get("retry_after", 1))
            delay, status = float(body.get("delay", 1.0)), int(body.get("status", 502))
            seconds = float(body.get("seconds", 0))
        except (TypeError, ValueError) as exc:
            raise ApiError(400, f"bad fault: {exc}") from None
        if count < 1 or retry_after < 1 or delay < 0 or seconds < 0:
            raise ApiError(400, "count and retry_after must be >= 1, delay and seconds >= 0")
        if not 400 <= status <= 599 or status in (401, 404, 409, 429):
            raise ApiError(400, "status must be 5xx, or a 4xx that is not 401/404/409/429")
        rule = {
            "id": self.next_id,
            "kind": kind,
            "method": str(body["method"]).lower() if body.get("method") else None,
            "chat_id": str(body["chat_id"]) if body.get("chat_id") is not None else None,
            "count": count,
            "retry_after": retry_after,
            "delay": delay,
            "status": status,
            "description": str(body.get("description") or ""),
            "seconds": seconds,
            # monotonic end of a timed rule (count is ignored then); None: a counted rule
            "until": time.monotonic() + seconds if seconds > 0 else None,
        }
        self.next_id += 1
        self.rules.append(rule)
        return rule

    def take(self, method: str, chat_id: Any) -> dict[str, Any] | None:
        for rule in self.rules:
            if rule["method"] not in (None, method.lower()):
                continue
            if rule["chat_id"] is not None and rule["chat_id"] != str(chat_id):
                continue
            if rule["until"] is not None:
                if time.monotonic() >= rule["until"]:
                    self.rules.remove(rule)  # its time is over: like no rule at all
                    return self.take(method, chat_id)
                return dict(rule)
            rule["count"] -= 1
            if rule["count"] <= 0:
                self.rules.remove(rule)
            return dict(rule)
        return None


def _json(obj: Any, status: int = 200) -> web.Response:
    return web.Response(text=dumps(obj), status=status, content_type="application/json")


def _api_error(
    code: int, description: str, parameters: dict[str, Any] | None = None
) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return _json(body, code)


class _Dropped(Exception):
    """Raised after the connection was closed without an answer."""


def _drop(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.abort()
    raise _Dropped


class TelegramServer:
    def __init__(
        self,
        tokens: list[str],
        bot_username: str = "sandbox_bot",
        *,
        has_topics_enabled: bool = False,
        allows_users_to_create_topics: bool = False,
        user_key: str = "",
    ) -> None:
        # The user's side (/_sandbox/...) answers only requests carrying this key, so that no
        # other local process can act as the user (tap Allow, send a command) in a demo.
        self.user_key = user_key
        if not tokens:
            tokens = [DEFAULT_TOKEN]
        self.bots = {
            t: BotState(
                t,
                bot_username if i == 0 else f"{bot_username}{i + 1}",
                has_topics_enabled=has_topics_enabled,
                allows_users_to_create_topics=allows_users_to_create_topics,
            )
            for i, t in enumerate(tokens)
        }
        self.default = tokens[0]
        self.faults = Faults()
        self.calls: collections.deque[dict[str, Any]] = collections.deque(maxlen=MAX_CALLS)
        self.logged = 0  # calls ever logged: each call's `n`, for `calls?after=`

    def app(self) -> web.Application:
        app = web.Application(client_max_size=60 * 1024 * 1024,
                              middlewares=[self._user_side_key, self._dropped])
        r = app.router
        r.add_route("*", "/bot{token}/{method}", self.bot_api)
        r.add_get("/file/bot{token}/{path:.+}", self.download)
        r.add_post("/_sandbox/send", self.control(users.send))
        r.add_post("/_sandbox/add_bot", self.control(users.add_bot))
        r.add_get("/_sandbox/member", self.control(users.membership))
        r.add_post("/_sandbox/send_document", self.control(users.send_document))
        r.add_post("/_sandbox/send_photo", self.control(users.send_photo))
        r.add_post("/_sandbox/send_album", self.control(users.send_album))
        r.add_post("/_sandbox/tap", self.control(users.tap))
        r.add_post("/_sandbox/send_other", self.control(users.send_other))
        r.add_post("/_sandbox/send_voice", self.control(media.send_voice))
        r.add_post("/_sandbox/send_audio", self.control(media.send_audio))
        r.add_post("/_sandbox/edit", self.control(users.edit))
        r.add_post("/_sandbox/create_topic", self.control(topics.user_create_topic))
        r.add_post("/_sandbox/close_topic", self.control(topics.user_close_topic))
        r.add_post("/_sandbox/delete_topic", self.control(topics.user_delete_topic))
        r.add_get("/_sandbox/topics", self.control(topics.topics_view))
        r.add_post("/_sandbox/stop_draft", self.control(drafts.user_stop))
        r.add_post("/_sandbox/advance_clock", self.control(drafts.advance_clock))
        r.add_get("/_sandbox/drafts", self.control(drafts.drafts_view))
        r.add_get("/_sandbox/previews", self.control(users.enabled_previews))
        r.add_post("/_sandbox/block", self.control(self._block))
        r.add_get("/_sandbox/chat/{chat_id}", self.chat)
        r.add_get("/_sandbox/calls", self.call_log)
        r.add_get("/_sandbox/callbacks", self.control(lambda b, body: list(b.callbacks.values())))
        r.add_get("/_sandbox/updates", self.control(lambda b, body: b.updates))
        r.add_get("/_sandbox/commands", self.control(self._commands))
        r.add_post("/_sandbox/faults", self.control(lambda b, body: self.faults.add(body)))
        r.add_get("/_sandbox/faults", self.control(lambda b, body: self.faults.rules))
        r.add_delete("/_sandbox/faults", self.control(self._clear_faults))
        r.add_post("/_sandbox/reset", self.control(self._reset))
        r.add_get(
            "/_sandbox/health",
            self.control(lambda b, body: {"bots": [x.me() for x in self.bots.values()]}),
        )
        return app

    @web.middleware
    async def _user_side_key(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith("/_sandbox/"):
            given = request.headers.get(USER_KEY_HEADER, "")
            if not self.user_key or not hmac.compare_digest(given, self.user_key):
                return _json({"error": f"the user's side of the sandbox needs the {USER_KEY_HEADER}"
                              " header its starter was given: use TelegramSandbox's methods."},
                             403)
        return await handler(request)

    @web.middleware
    async def _dropped(self, request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            return await handler(request)
        except _Dropped:
            resp = web.Response()
            resp.force_close()
            return resp

    # ------------------------------------------------------------------------ the Bot API

    async def bot_api(self, request: web.Request) -> web.StreamResponse:
        token, method = request.match_info["token"], request.match_info["method"]
        record: dict[str, Any] = {
            "method": method,
            "params": {},
            "status": None,
            "time": time.time(),
        }
        self._log(record)
        bot = self.bots.get(token)
        if bot is None:
            record["status"] = 401 if TOKEN_RE.fullmatch(token) else 404
            return _api_error(
                record["status"], "Unauthorized" if record["status"] == 401 else "Not Found"
            )
        record["bot_id"] = bot.id
        try:
            params = await self._params(request)
        except ApiError as exc:
            record["status"] = exc.code
            return _api_error(exc.code, exc.description)
        record["params"] = params.loggable()
        entry = METHODS.get(method.lower())
        if entry is None:
            record["status"] = 404
            return _api_error(404, "Not Found")
        name, fn = entry
        record["method"] = name
        fault = self.faults.take(name, params.raw("chat_id"))
        if fault is not None:
            record["fault"] = fault["kind"]
            if fault["kind"] == "429":
                record["status"] = 429
                secs = fault["retry_after"]
                return _api_error(
                    429, f"Too Many Requests: retry after {secs}", {"retry_after": secs}
                )
            if fault["kind"] == "5xx":
                record["status"] = fault["status"]
                return _api_error(fault["status"], fault["description"]
                                  or STATUS_TEXT.get(fault["status"], "Server Error"))
            if fault["kind"] == "drop_before":
                record["status"] = 0
                _drop(request)
            if fault["kind"] == "slow":
                await asyncio.sleep(fault["delay"])
        try:
            result = await fn(bot, params)
            record["status"] = 200
            response = _json({"ok": True, "result": result})
        except ApiError as exc:
            record["status"] = exc.code
            record["description"] = exc.description
            response = _api_error(exc.code, exc.description, exc.parameters)
        if fault is not None and fault["kind"] == "drop_after":
            record["answered_status"], record["status"] = record["status"], 0
            _drop(request)
        return response

    async def _params(self, request: web.Request) -> Params:
        values: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            ctype = request.content_type
            if ctype == "application/json":
                try:
                    body = json.loads(await request.read() or b"{}")
                except ValueError:
                    raise ApiError(400, "Bad Request: can't parse JSON encoded request") from None
                if not isinstance(body, dict):
                    raise ApiError(400, "Bad Request: JSON request must be an object")
                values.update(body)
            elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
                form = await request.post()
                for key, value in form.items():
                    if isinstance(value, web.FileField):
                        values[key] = Upload(value.filename, value.file.read(), value.content_type)
                    else:
                        values[key] = value
            else:
                await request.read()
        return Params(values)

    async def download(self, request: web.Request) -> web.StreamResponse:
        bot = self.bots.get(request.match_info["token"])
        if bot is None:
            return _api_error(401, "Unauthorized")
        path = request.match_info["path"]
        record: dict[str, Any] = {
            "method": "download",
            "params": {"file_path": path},
            "status": None,
            "time": time.time(),
        }
        self._log(record)
        fault = self.faults.take("download", None)
        if fault is not None:
            record["fault"] = fault["kind"]
            if fault["kind"] in ("429", "5xx"):
                record["status"] = 429 if fault["kind"] == "429" else fault["status"]
                return _api_error(
                    record["status"],
                    "Too Many Requests" if fault["kind"] == "429" else "Bad Gateway",
                )
            if fault["kind"].startswith("drop"):
                record["status"] = 0
                _drop(request)
            await asyncio.sleep(fault["delay"])
        f = bot.files_by_path.get(path)
        if f is None:
            record["status"] = 404
            return _api_error(404, "Not Found")
        record["status"] = 200
        return web.Response(body=f.data, content_type=f.mime_type or "application/octet-stream")

    # ------------------------------------------------------------------------ the test's side

    def _bot(self, token: str | None) -> BotState:
        bot = self.bots.get(token or self.default)
        if bot is None:
            raise ApiError(400, "no bot with that token in this sandbox")
        return bot

    def control(self, action: Any) -> Any:
        async def handler(request: web.Request) -> web.Response:
            body: dict[str, Any] = dict(request.query)
            if request.can_read_body:
                try:
                    data = await request.json()
                except ValueError:
                    return _json({"error": "the body must be JSON"}, 400)
                if not isinstance(data, dict):
                    return _json({"error": "the body must be a JSON object"}, 400)
                body.update(data)
            try:
                return _json(action(self._bot(body.get("token")), body))
            except ApiError as exc:
                return _json({"error": exc.description}, exc.code)

        return handler

    def _block(self, bot: BotState, body: dict[str, Any]) -> Any:
        user_id = int(body["user_id"])
        (bot.blocked.add if body.get("blocked", True) else bot.blocked.discard)(user_id)
        return True

    def _commands(self, bot: BotState, body: dict[str, Any]) -> Any:
        return [
            {"scope": json.loads(scope), "language_code": lang, "commands": cmds}
            for (scope, lang), cmds in bot.commands.items()
        ]

    def _clear_faults(self, bot: BotState, body: dict[str, Any]) -> Any:
        self.faults.rules.clear()
        return True

    def _reset(self, bot: BotState, body: dict[str, Any]) -> Any:
        for b in self.bots.values():
            b.reset()
        self.faults.rules.clear()
        self.calls.clear()
        return True

    async def chat(self, request: web.Request) -> web.Response:
        q = request.query
        try:
            bot = self._bot(q.get("token"))
            chat_id = int(request.match_info["chat_id"])
        except (ApiError, ValueError) as exc:
            return _json({"error": str(exc)}, 400)
        flag = {"1": True, "true": True, "0": False, "false": False}
        try:
            thread = int(q["thread"]) if q.get("thread") else None
        except ValueError:
            return _json({"error": "thread must be an integer"}, 400)
        view = users.chat_view(
            bot,
            chat_id,
            include_deleted=flag.get(q.get("deleted", "0").lower(), False),
            content=flag.get(q.get("content", "1").lower(), True),
            thread=thread,
        )
        return _json(view)

    def _log(self, record: dict[str, Any]) -> None:
        self.logged += 1
        record["n"] = self.logged
        self.calls.append(record)

    async def call_log(self, request: web.Request) -> web.Response:
        method = request.query.get("method")
        after = int(request.query.get("after") or 0)
        calls = [c for c in self.calls if c["n"] > after
                 and (method is None or c["method"].lower() == method.lower())]
        return _json(calls)

    def shutdown(self) -> None:
        """End waiting getUpdates calls (they answer an empty list)."""
        for bot in self.bots.values():
            bot.epoch += 1
            bot.notify()


async def serve(
    tokens: list[str],
    bot_username: str,
    port: int,
    stop: asyncio.Event,
    unavailable_seconds: float = 0.0,
    *,
    has_topics_enabled: bool = False,
    allows_users_to_create_topics: bool = False,
    user_key: str = "",
) -> None:
    """Serve until ``stop`` is set; print the LISTENING line once bound. With
    ``unavailable_seconds`` every Bot API method answers 502 for that long from the start.
    ``user_key``: what every ``/_sandbox/`` request must carry (none: they are all refused)."""
    server = TelegramServer(
        tokens,
        bot_username,
        has_topics_enabled=has_topics_enabled,
        allows_users_to_create_topics=allows_users_to_create_topics,
        user_key=user_key,
    )
    if unavailable_seconds > 0:
        server.faults.add({"kind": "5xx", "status": 502, "seconds": unavailable_seconds})
    runner = web.AppRunner(
        server.app(), access_log=None, handle_signals=False, shutdown_timeout=1.0
    )
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    site = web.SockSite(runner, sock)
    await site.start()
    print(f"LISTENING http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    try:
        await stop.wait()
    finally:
        server.shutdown()
        await runner.cleanup()
