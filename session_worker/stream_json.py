"""The stream-json wire format of the Claude CLI: stdout framed into lines and parsed, and the
lines the worker writes to the CLI's stdin.

Pure code: bytes in, typed values out, no I/O and no clock, so every case is a table row in
tests/unit/test_worker_stream.py. What a parsed event means is translate.py.

- `LineFramer` splits a byte stream into lines with no line-size cliff: a 50 MB line is kept as
  a list of chunks and joined once (memory ~2x the line), and only a line past `max_line` (far
  beyond anything the CLI prints) is dropped and reported instead of growing without bound.
- `parse_line` turns one line into a JSON object, a skipped debug line, or a readable error.
- `user_line`, `interrupt_line`, `permission_line`, `control_error_line` are what we send.

It must never raise on any input: the CLI's output is untrusted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

DEFAULT_MAX_LINE = 200 * 1024 * 1024


# --------------------------------------------------------------------------- framing


@dataclass(frozen=True)
class Oversized:
    """A line longer than max_line: dropped, only its size is kept."""

    size: int


class LineFramer:
    """Feed chunks, get complete lines (without the newline). Search only new bytes for '\\n'."""

    def __init__(self, max_line: int = DEFAULT_MAX_LINE) -> None:
        self.max_line = max_line
        self._parts: list[bytes] = []
        self._size = 0
        self._dropping = False  # inside an oversized line: discard until its newline

    def feed(self, chunk: bytes) -> list[bytes | Oversized]:
        out: list[bytes | Oversized] = []
        start = 0
        while True:
            nl = chunk.find(b"\n", start)
            if nl < 0:
                rest = chunk[start:]
                if rest:
                    self._add(rest)
                return out
            piece = chunk[start:nl]
            if self._dropping or self._size + len(piece) > self.max_line:
                out.append(Oversized(self._size + len(piece)))
            elif self._parts:
                self._parts.append(piece)
                out.append(b"".join(self._parts))
            else:
                out.append(piece)
            self._parts = []
            self._size = 0
            self._dropping = False
            start = nl + 1

    def _add(self, data: bytes) -> None:
        self._size += len(data)
        if self._dropping:
            return
        if self._size > self.max_line:
            self._parts = []
            self._dropping = True
            return
        self._parts.append(data)

    def finish(self) -> list[bytes | Oversized]:
        """At EOF: a last line without a newline is still a line."""
        if self._dropping:
            out: list[bytes | Oversized] = [Oversized(self._size)]
        elif self._parts:
            out = [b"".join(self._parts)]
        else:
            out = []
        self._parts, self._size, self._dropping = [], 0, False
        return out

    @property
    def pending(self) -> int:
        return self._size


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class Skipped:
    """A line that is not JSON at all (a debug print): log it and go on."""

    preview: str


@dataclass(frozen=True)
class BadLine:
    """A line that looks like JSON but cannot be read: becomes a warning Notice."""

    reason: str
    size: int


@dataclass(frozen=True)
class Repaired:
    """A JSON object read after replacing bytes that are not UTF-8 (shown as U+FFFD): its text
    is kept, and the user is told that some characters were lost."""

    obj: dict[str, Any]
    reason: str


_json = msgspec.json.Decoder()


def parse_line(line: bytes | Oversized) -> dict[str, Any] | Skipped | BadLine | Repaired:
    if isinstance(line, Oversized):
        return BadLine(f"a line of {line.size} bytes is over the size limit", line.size)
    stripped = line.strip()
    if not stripped:
        return Skipped("")
    if not stripped.startswith(b"{"):
        return Skipped(_preview_bytes(stripped))
    repaired = ""
    try:
        stripped.decode("utf-8")
    except UnicodeDecodeError as exc:
        repaired = f"a line is not valid UTF-8 (byte {exc.start})"
        stripped = stripped.decode("utf-8", "replace").encode()
    try:
        obj = _json.decode(stripped)
    except msgspec.DecodeError as exc:
        return BadLine(repaired or f"a line is not valid JSON ({exc})", len(line))
    if not isinstance(obj, dict):
        return BadLine("a line is JSON but not an object", len(line))
    return Repaired(obj, repaired) if repaired else obj


def _preview_bytes(data: bytes, limit: int = 200) -> str:
    return data[:limit].decode("utf-8", "replace")


# --------------------------------------------------------------------------- lines to the CLI


def user_line(content: str | list[dict[str, Any]]) -> bytes:
    """A user turn: its text, or content blocks (text and images) as the Messages API has them."""
    return _encode({"type": "user", "message": {"role": "user", "content": content}})


def mcp_response_line(request_id: str, response: dict[str, Any] | None) -> bytes:
    """The answer to an mcp_message control request: the JSON-RPC response (none for a
    notification)."""
    body: dict[str, Any] = {} if response is None else {"mcp_response": response}
    return _encode(
        {
            "type": "control_response",
            "response": {"subtype": "success", "request_id": request_id, "response": body},
        }
    )


def interrupt_line(request_id: str) -> bytes:
    return _encode(
        {"type": "control_request", "request_id": request_id, "request": {"subtype": "interrupt"}}
    )


def control_line(request_id: str, request: dict[str, Any]) -> bytes:
    """One of our control requests (set_model, get_context_usage, ...)."""
    return _encode({"type": "control_request", "request_id": request_id, "request": request})


def permission_line(
    request_id: str, allow: bool, tool_input: dict[str, Any], message: str
) -> bytes:
    answer: dict[str, Any] = (
        {"behavior": "allow", "updatedInput": tool_input}
        if allow
        else {"behavior": "deny", "message": message or "The user denied this."}
    )
    return _encode(
        {
            "type": "control_response",
            "response": {"subtype": "success", "request_id": request_id, "response": answer},
        }
    )


def control_error_line(request_id: str, error: str) -> bytes:
    return _encode(
        {
            "type": "control_response",
            "response": {"subtype": "error", "request_id": request_id, "error": error},
        }
    )


def _encode(obj: dict[str, Any]) -> bytes:
    return msgspec.json.encode(obj) + b"\n"
