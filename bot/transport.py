"""The bot's HTTP to Telegram: PTB's requests over aiohttp instead of its default httpx.

Every update and every change a user sees takes one Bot API call, so the call's own cost is on
the path of every answer: aiohttp's round trip is well under half of httpx's here (see
docs/BENCHMARKS.md, "Streaming: the baseline, and where a warm turn's time goes"). PTB still
does everything else (parameters, files, the answer's parsing and its errors); this class only
moves bytes, as PTB's `BaseRequest` asks: (status, body) back, `TimedOut` for a timeout,
`NetworkError` for any other failure to talk to Telegram, never with the token in the sentence.

It must never parse an answer, retry, or log a URL (URLs carry the token).
"""
from __future__ import annotations

import re
from typing import Any

import aiohttp
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

DEFAULT_TIMEOUT = 5.0
MEDIA_WRITE_TIMEOUT = 20.0
_TOKEN = re.compile(r"bot\d+:[A-Za-z0-9_-]+")


def _seconds(value: Any, default: float | None) -> float | None:
    """A PTB timeout argument: its value, or ours when the caller left it at PTB's default."""
    if value is BaseRequest.DEFAULT_NONE:
        return default
    return None if value is None else float(value)


def _sentence(err: BaseException) -> str:
    return _TOKEN.sub("bot<token>", f"aiohttp.{type(err).__name__}: {err}")


class AiohttpRequest(BaseRequest):
    """One aiohttp session (its own connection pool) for PTB: one for getUpdates' long poll,
    another for everything else, as PTB's builder does with httpx."""

    def __init__(self, connection_pool_size: int = 256, read_timeout: float = DEFAULT_TIMEOUT,
                 connect_timeout: float = DEFAULT_TIMEOUT) -> None:
        self._pool = connection_pool_size
        self._read = read_timeout
        self._connect = connect_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        return self._read

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool),
                timeout=aiohttp.ClientTimeout(total=None),
                headers={"User-Agent": self.USER_AGENT}, auto_decompress=True,
                trust_env=True)  # HTTPS_PROXY and the like, as httpx honoured them

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        session = self._session
        if session is None or session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        files = request_data.multipart_data if request_data else None
        fields = request_data.json_parameters if request_data else {}
        body: aiohttp.FormData | dict[str, str] | None
        if files:
            body = aiohttp.FormData(quote_fields=False)
            for name, value in fields.items():
                body.add_field(name, value)
            for name, part in files.items():
                if isinstance(part, tuple):
                    file_name, content, *rest = part
                    body.add_field(name, content, filename=file_name,
                                   content_type=rest[0] if rest else None)
                else:
                    body.add_field(name, part)
        else:
            body = fields or None
        read = _seconds(read_timeout, self._read)
        write = _seconds(write_timeout, MEDIA_WRITE_TIMEOUT if files else DEFAULT_TIMEOUT)
        connect = _seconds(connect_timeout, self._connect)
        pool = _seconds(pool_timeout, 1.0)
        # aiohttp has no write timeout of its own: the whole call gets read + write + connect.
        parts = [t for t in (read, write, connect, pool) if t is not None]
        total = sum(parts) if len(parts) == 4 else None
        timeout = aiohttp.ClientTimeout(total=total, sock_connect=connect, sock_read=read)
        try:
            async with session.request(method, url, data=body, timeout=timeout) as res:
                return res.status, await res.read()
        except TimeoutError as err:
            raise TimedOut(_sentence(err)) from None
        except aiohttp.ClientError as err:
            raise NetworkError(_sentence(err)) from None
