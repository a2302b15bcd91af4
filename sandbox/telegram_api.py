"""A sandbox Telegram Bot API server on 127.0.0.1, so that the real python-telegram-bot runs
against it in tests, benchmarks and ``switchboard demo``.

Run::

    python -m sandbox.telegram_api --port 0 [--token TOKEN ...] [--bot-username NAME]
        [--topics-enabled] [--users-create-topics]

It prints one line ``LISTENING http://127.0.0.1:PORT`` and serves until SIGTERM or SIGINT (exit
0). Tokens may come from ``SANDBOX_TELEGRAM_TOKENS`` (comma-separated) instead, so that they never
show in ``ps``; the default is one bot with token ``123456:SANDBOX-TOKEN``.

PTB is pointed at it with ``base_url=f"{url}/bot"`` and ``base_file_url=f"{url}/file/bot"``.
Bot API methods: getMe, getUpdates, deleteWebhook, getWebhookInfo, set/get/deleteMyCommands,
sendMessage, editMessageText, editMessageCaption, editMessageReplyMarkup, deleteMessage,
pinChatMessage, unpinChatMessage, unpinAllChatMessages (private chats; see sandbox.telegram_pins),
sendChatAction, answerCallbackQuery, sendDocument, sendPhoto, getFile, and file downloads; Bot API
9.3-10.3: sendMessageDraft (with can_stop / keep_on_stop), createForumTopic, editForumTopic,
closeForumTopic, reopenForumTopic, deleteForumTopic, ``message_thread_id`` on every send method.
``--topics-enabled`` and ``--users-create-topics`` set getMe's ``has_topics_enabled`` (topics in
private chats) and ``allows_users_to_create_topics``; both are off by default.

The test's side, under ``{url}/_sandbox/`` (JSON in, JSON out; ``token`` picks the bot, default
the first). Every request carries the ``X-Sandbox-Key`` header with the random key the server
read from the first line of its stdin (``--user-key-on-stdin``); without it: 403. Only the
process that started the server (:class:`TelegramSandbox`: the tests, ``make demo``) knows it:

- ``POST send {user_id, text, chat_id?, chat_type?, first_name?, username?, reply_to_message_id?,
  message_thread_id?, is_forum?}`` (``is_forum``: the supergroup is a forum),
  ``POST send_document {user_id, filename, content_b64, caption?, mime_type?}``,
  ``POST send_photo {user_id, content_b64, caption?}``: a user's message, as an update (a group
  the bot left takes none until it is added again); the answer has the update, the message and
  ``created``, the wall-clock time the update came to exist;
- ``POST add_bot {user_id, chat_id, chat_type?, title?}``: the user adds the bot to a group (a
  ``my_chat_member`` update); ``GET member?chat_id=``: whether the bot is in it (``leaveChat``
  takes it out, with a ``my_chat_member`` update of its own);
- ``POST tap {user_id, message_id, data, chat_id?}``: a tap on an inline button (400 if the
  message has no such button); ``GET callbacks``: every tap and how the bot answered it;
- ``GET chat/{chat_id}?deleted=0&content=1&thread=``: the chat as the user sees it, oldest first
  (``thread``: one topic's messages; 0: those outside every topic);
- ``POST create_topic {user_id, name, chat_id?, icon_color?}``, ``POST close_topic {user_id,
  message_thread_id, chat_id?, closed?}`` (closed false: reopen), ``POST delete_topic {user_id,
  message_thread_id, chat_id?}``: a user's topics; ``GET topics?chat_id=``;
- ``GET drafts?chat_id=&thread=``: every draft with its history; ``POST stop_draft {user_id,
  draft_id, chat_id?, message_thread_id?}``: the user taps Stop; ``POST advance_clock
  {seconds}``: the draft clock moves on (a draft goes 30 s after its last change);
- ``GET previews?chat_id=``: the bot's messages that show a link preview;
- ``GET calls?method=&after=``: every Bot API call (method, params as sent, status, time of
  arrival, fault, and ``n``, its number; ``after``: only the calls numbered above it);
- ``GET updates``: updates not yet confirmed; ``GET commands``: what setMyCommands stored;
- ``POST block {user_id, blocked}``: the user blocks the bot (sends fail with 403);
- ``POST faults {kind, method?, chat_id?, count?, retry_after?, delay?, status?}`` with kind
  "429", "5xx", "slow", "drop_before" or "drop_after" (method "download" for file downloads);
  ``GET``/``DELETE faults``; ``POST reset``.

:class:`TelegramSandbox` runs the server as a subprocess and wraps that API with the standard
library only (aiohttp is imported by the server process alone).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import secrets
import signal
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from sandbox.server_process import (  # noqa: F401
    PROJECT_ROOT,
    START_DEADLINE_S,
    USER_KEY_HEADER,
    ServerProcess,
)
from sandbox.telegram_topics_client import TopicsAndDrafts

DEFAULT_TOKEN = "123456:SANDBOX-TOKEN"
TOKENS_ENV = "SANDBOX_TELEGRAM_TOKENS"

Chat = list[dict[str, Any]]


class SandboxError(RuntimeError):
    """The control API refused a request (bad input from the test)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class TelegramSandbox(TopicsAndDrafts, ServerProcess):
    """The sandbox server as a subprocess: ``with TelegramSandbox() as tg: tg.url ...``.

    ``tg.send(user_id, "/start")`` acts as a user; ``tg.chat(chat_id)`` is the chat as that user
    sees it; ``tg.wait_for(pred, chat_id)`` waits until ``pred(chat)`` holds. Topics, drafts and
    link previews: :class:`sandbox.telegram_topics_client.TopicsAndDrafts`.
    """

    module = "sandbox.telegram_api"
    label = "sandbox telegram api"

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        tokens: list[str] | None = None,
        bot_username: str | None = None,
        start_timeout: float = START_DEADLINE_S,
        has_topics_enabled: bool = False,
        allows_users_to_create_topics: bool = False,
        port: int = 0,
        unavailable_seconds: float = 0.0,
    ) -> None:
        super().__init__(start_timeout)
        self.has_topics_enabled = has_topics_enabled
        self.allows_users_to_create_topics = allows_users_to_create_topics
        self.port = port  # 0: any free port; else this one (a Telegram that comes back there)
        self.unavailable_seconds = unavailable_seconds
        self.tokens = list(tokens) if tokens else [token]
        self.token = self.tokens[0]
        self.bot_username = bot_username
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        self.user_key = secrets.token_urlsafe(32)  # the user's side answers only this key

    def stdin_secret(self) -> str:
        return self.user_key

    def server_args(self) -> list[str]:
        # After the base class's `--port 0`: argparse keeps the last one.
        args = ["--user-key-on-stdin"]
        args += ["--port", str(self.port)] if self.port else []
        if self.unavailable_seconds > 0:
            args += ["--unavailable-seconds", str(self.unavailable_seconds)]
        if self.bot_username:
            args += ["--bot-username", self.bot_username]
        if self.has_topics_enabled:
            args.append("--topics-enabled")
        if self.allows_users_to_create_topics:
            args.append("--users-create-topics")
        return args

    def server_env(self) -> dict[str, str]:
        return {TOKENS_ENV: ",".join(self.tokens)}

    @property
    def bot_kwargs(self) -> dict[str, str]:
        """Keyword arguments for ``telegram.Bot(**tg.bot_kwargs)``."""
        return {
            "token": self.token,
            "base_url": f"{self.url}/bot",
            "base_file_url": f"{self.url}/file/bot",
        }

    # ------------------------------------------------------------------------ control API

    def _request(
        self,
        verb: str,
        path: str,
        body: dict[str, Any] | None = None,
        query: dict[str, Any] | None = None,
    ) -> Any:
        q = {k: v for k, v in (query or {}).items() if v is not None}
        url = f"{self.url}/_sandbox/{path}" + (f"?{urllib.parse.urlencode(q)}" if q else "")
        data = None
        headers = {USER_KEY_HEADER: self.user_key}
        if body is not None:
            data = json.dumps({k: v for k, v in body.items() if v is not None}).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(url, data=data, method=verb, headers=headers)
        try:
            with self._opener.open(req, timeout=30) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read()).get("error", "")
            except ValueError:
                message = exc.reason
            raise SandboxError(exc.code, message) from None

    def send(
        self,
        user_id: int,
        text: str,
        chat_id: int | None = None,
        *,
        chat_type: str | None = None,
        first_name: str | None = None,
        username: str | None = None,
        reply_to_message_id: int | None = None,
        token: str | None = None,
        message_thread_id: int | None = None,
        is_forum: bool | None = None,
    ) -> dict[str, Any]:
        """The user sends a text (in a topic: ``message_thread_id``; ``is_forum`` makes the
        supergroup a forum); returns ``{"update": ..., "message": ...}``."""
        return self._request(
            "POST",
            "send",
            {
                "user_id": user_id, "chat_id": chat_id, "text": text, "chat_type": chat_type,
                "first_name": first_name, "username": username,
                "reply_to_message_id": reply_to_message_id, "token": token,
                "message_thread_id": message_thread_id, "is_forum": is_forum,
            },
        )  # fmt: skip

    def add_bot(self, user_id: int, chat_id: int, *, chat_type: str = "group",
                title: str | None = None, token: str | None = None) -> dict[str, Any]:
        """The user adds the bot to the group ``chat_id``: the bot gets a ``my_chat_member``
        update; after a ``leaveChat`` the group takes no messages until it is added again."""
        body = {"user_id": user_id, "chat_id": chat_id, "chat_type": chat_type, "title": title,
                "token": token}
        return self._request("POST", "add_bot", body)

    def is_member(self, chat_id: int, *, token: str | None = None) -> bool:
        """Whether the bot is in the chat ``chat_id`` (after a ``leaveChat`` it is not)."""
        reply = self._request("GET", "member", query={"chat_id": chat_id, "token": token})
        return bool(reply["member"])

    def send_document(
        self,
        user_id: int,
        filename: str,
        content: bytes,
        chat_id: int | None = None,
        *,
        caption: str | None = None,
        mime_type: str | None = None,
        token: str | None = None,
    ) -> dict[str, Any]:
        body = {
            "user_id": user_id, "chat_id": chat_id, "filename": filename, "caption": caption,
            "content_b64": base64.b64encode(content).decode(), "mime_type": mime_type,
            "token": token,
        }  # fmt: skip
        return self._request("POST", "send_document", body)

    def send_photo(
        self,
        user_id: int,
        content: bytes,
        chat_id: int | None = None,
        *,
        caption: str | None = None,
        token: str | None = None,
    ) -> dict[str, Any]:
        body = {
            "user_id": user_id, "chat_id": chat_id, "caption": caption,
            "content_b64": base64.b64encode(content).decode(), "token": token,
        }  # fmt: skip
        return self._request("POST", "send_photo", body)

    def send_voice(self, user_id: int, content: bytes, chat_id: int | None = None, *,
                   duration: int | None = None, mime_type: str | None = None,
                   caption: str | None = None, token: str | None = None) -> dict[str, Any]:
        """The user records a voice note: the bot gets a message with a ``voice`` (Voice)."""
        body = {
            "user_id": user_id, "chat_id": chat_id, "duration": duration, "caption": caption,
            "content_b64": base64.b64encode(content).decode(), "mime_type": mime_type,
            "token": token,
        }  # fmt: skip
        return self._request("POST", "send_voice", body)

    def send_audio(self, user_id: int, content: bytes, chat_id: int | None = None, *,
                   filename: str | None = None, duration: int | None = None,
                   mime_type: str | None = None, title: str | None = None,
                   caption: str | None = None, token: str | None = None) -> dict[str, Any]:
        """The user sends an audio file: the bot gets a message with an ``audio`` (Audio)."""
        body = {
            "user_id": user_id, "chat_id": chat_id, "filename": filename, "duration": duration,
            "mime_type": mime_type, "title": title, "caption": caption,
            "content_b64": base64.b64encode(content).decode(), "token": token,
        }  # fmt: skip
        return self._request("POST", "send_audio", body)
    def send_album(
        self,
        user_id: int,
        photos: list[bytes],
        chat_id: int | None = None,
        *,
        caption: str | None = None,
        token: str | None = None,
    ) -> dict[str, Any]:
        """The user sends an album of ``photos`` (the caption on the first, as clients do): one
        message and one update per photo, all with one ``media_group_id``."""
        parts = [{"content_b64": base64.b64encode(p).decode(),
                  "caption": caption if i == 0 else None} for i, p in enumerate(photos)]
        body = {"user_id": user_id, "chat_id": chat_id, "photos": parts, "token": token}
        return self._request("POST", "send_album", body)

    def send_other(self, user_id: int, kind: str, chat_id: int | None = None, *,
                   token: str | None = None) -> dict[str, Any]:
        """The user sends a voice note, audio, video, video note, sticker, location, contact or
        poll (``kind``: the Bot API field name)."""
        body = {"user_id": user_id, "chat_id": chat_id, "kind": kind, "token": token}
        return self._request("POST", "send_other", body)

    def edit(self, user_id: int, message_id: int, text: str, chat_id: int | None = None, *,
             token: str | None = None) -> dict[str, Any]:
        """The user edits the text of their message: the bot gets an ``edited_message``."""
        body = {"user_id": user_id, "chat_id": chat_id, "message_id": message_id, "text": text,
                "token": token}
        return self._request("POST", "edit", body)

    def tap(
        self,
        user_id: int,
        message_id: int,
        data: str,
        chat_id: int | None = None,
        *,
        token: str | None = None,
    ) -> dict[str, Any]:
        """The user taps the inline button with this callback_data; returns the update and
        ``callback_query_id``."""
        body = {
            "user_id": user_id,
            "chat_id": chat_id,
            "message_id": message_id,
            "data": data,
            "token": token,
        }
        return self._request("POST", "tap", body)

    def block(self, user_id: int, blocked: bool = True, *, token: str | None = None) -> None:
        """The user blocks the bot: sends to them fail with 403."""
        self._request("POST", "block", {"user_id": user_id, "blocked": blocked, "token": token})

    def chat(
        self, chat_id: int, *, deleted: bool = False, content: bool = True, token: str | None = None
    ) -> Chat:
        """The chat as the user sees it now, oldest first."""
        return self._request(
            "GET",
            f"chat/{chat_id}",
            query={"deleted": int(deleted), "content": int(content), "token": token},
        )

    def calls(self, method: str | None = None, *, after: int = 0) -> list[dict[str, Any]]:
        """The log of Bot API calls (``method``, ``params``, ``status``, ``time``, ``n``...);
        ``after``: only those whose ``n`` is greater (cheap to poll)."""
        return self._request("GET", "calls", query={"method": method, "after": after or None})

    def callbacks(self, *, token: str | None = None) -> list[dict[str, Any]]:
        """Every tap, with ``answered`` and the ``answer`` the bot gave."""
        return self._request("GET", "callbacks", query={"token": token})

    def pending_updates(self, *, token: str | None = None) -> list[dict[str, Any]]:
        """Updates not yet confirmed by the bot."""
        return self._request("GET", "updates", query={"token": token})

    def commands(self, *, token: str | None = None) -> list[dict[str, Any]]:
        """What setMyCommands stored: ``[{scope, language_code, commands}]``."""
        return self._request("GET", "commands", query={"token": token})

    def fault(
        self,
        kind: str,
        method: str | None = None,
        chat_id: int | None = None,
        count: int = 1,
        *,
        retry_after: int | None = None,
        delay: float | None = None,
        status: int | None = None,
        description: str | None = None,
        seconds: float | None = None,
    ) -> dict[str, Any]:
        """Inject a fault: kind is "429", "5xx" (any error `status` but 401/404/409/429, with an
        optional `description`), "slow", "drop_before" or "drop_after"; `count` times, or with
        `seconds` every matching call for that long."""
        body = {
            "kind": kind, "method": method, "chat_id": chat_id, "count": count,
            "retry_after": retry_after, "delay": delay, "status": status,
            "description": description, "seconds": seconds,
        }  # fmt: skip
        return self._request("POST", "faults", body)

    def clear_faults(self) -> None:
        self._request("DELETE", "faults")

    def reset(self) -> None:
        """Forget every chat, update, file, call and fault (tokens stay)."""
        self._request("POST", "reset", {})

    # ------------------------------------------------------------------------ waiting

    def wait_until(
        self, condition: Callable[[], Any], timeout: float = 5.0, what: str = "condition"
    ) -> Any:
        """Poll ``condition()`` until it is truthy; return its value or raise AssertionError."""
        deadline = time.monotonic() + timeout
        delay = 0.01
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() >= deadline:
                raise AssertionError(f"{what} did not hold within {timeout} s")
            time.sleep(min(delay, max(deadline - time.monotonic(), 0)))
            delay = min(delay * 1.5, 0.1)

    def wait_for(
        self,
        predicate: Callable[[Chat], Any],
        chat_id: int,
        timeout: float = 5.0,
        *,
        content: bool = True,
    ) -> Chat:
        """Return the chat once ``predicate(chat)`` holds, polling it with short waits; raise an
        AssertionError showing the chat if it does not hold within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        delay = 0.01
        while True:
            chat = self.chat(chat_id, content=content)
            if predicate(chat):
                return chat
            if time.monotonic() >= deadline:
                shown = json.dumps(chat, ensure_ascii=False, indent=1)
                if len(shown) > 6000:
                    shown = "..." + shown[-6000:]
                raise AssertionError(
                    f"chat {chat_id}: condition not met within {timeout} s; the chat now:\n{shown}"
                )
            time.sleep(min(delay, max(deadline - time.monotonic(), 0)))
            delay = min(delay * 1.5, 0.1)

    def wait_for_call(
        self, method: str, timeout: float = 5.0, *, pending: bool | None = None
    ) -> dict[str, Any]:
        """The first logged call of ``method`` (``pending=True``: still unanswered)."""

        def find() -> dict[str, Any] | None:
            for c in self.calls(method):
                if pending is None or (c["status"] is None) == pending:
                    return c
            return None

        return self.wait_until(find, timeout, f"a {method} call")

    @staticmethod
    def entity_texts(text: str, entities: list[dict[str, Any]]) -> list[tuple[str, str]]:
        """``[(type, covered text)]``: entities count UTF-16 units, Python strings do not."""
        raw = text.encode("utf-16-le")
        return [
            (e["type"], raw[2 * e["offset"] : 2 * (e["offset"] + e["length"])].decode("utf-16-le"))
            for e in entities
        ]


# ---------------------------------------------------------------------------- the server CLI


def _read_line(fd: int) -> str:
    """One line from `fd`, a byte at a time: nothing after it is taken from the pipe."""
    line = b""
    while not line.endswith(b"\n"):
        byte = os.read(fd, 1)
        if not byte:
            break
        line += byte
    return line.decode().strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.telegram_api", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument(
        "--token", action="append", default=[], help=f"bot token (repeatable; or ${TOKENS_ENV})"
    )
    parser.add_argument("--bot-username", default="sandbox_bot")
    parser.add_argument("--unavailable-seconds", type=float, default=0.0,
                        help="every Bot API method answers 502 for this long from the start")
    parser.add_argument(
        "--topics-enabled", action="store_true", help="getMe: has_topics_enabled (private topics)"
    )
    parser.add_argument(
        "--users-create-topics", action="store_true", help="getMe: allows_users_to_create_topics"
    )
    parser.add_argument(
        "--exit-on-stdin-eof", action="store_true", help="stop when stdin closes (parent gone)"
    )
    parser.add_argument(
        "--user-key-on-stdin", action="store_true",
        help="read the key of the /_sandbox/ endpoints from stdin's first line (else they 403)",
    )
    args = parser.parse_args(argv)
    user_key = _read_line(sys.stdin.fileno()) if args.user_key_on_stdin else ""
    tokens = args.token or [
        t.strip() for t in os.environ.get(TOKENS_ENV, "").split(",") if t.strip()
    ]
    tokens = tokens or [DEFAULT_TOKEN]

    from sandbox.telegram_server import serve  # aiohttp is needed only by the server

    async def run() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        if args.exit_on_stdin_eof:

            def watch_stdin() -> None:
                try:
                    while os.read(sys.stdin.fileno(), 4096):
                        pass
                except OSError:
                    pass
                loop.call_soon_threadsafe(stop.set)

            threading.Thread(target=watch_stdin, daemon=True).start()
        await serve(
            tokens,
            args.bot_username,
            args.port,
            stop,
            args.unavailable_seconds,
            has_topics_enabled=args.topics_enabled,
            allows_users_to_create_topics=args.users_create_topics,
            user_key=user_key,
        )

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
