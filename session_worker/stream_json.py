"""Line framing of the CLI's stdout and the translation of its stream-json events into wire bodies.

Pure code: bytes in, typed values out, no I/O and no clock, so every case is a table row in
tests/unit/test_worker_stream.py.

- `LineFramer` splits a byte stream into lines with no line-size cliff: a 50 MB line is kept as
  a list of chunks and joined once (memory ~2x the line), and only a line past `max_line` (far
  beyond anything the CLI prints) is dropped and reported instead of growing without bound.
- `parse_line` turns one line into a JSON object, a skipped debug line, or a readable error.
- `Translator` turns one CLI event into what the worker must do: bodies to emit, a session id
  to store, a turn that ended, a permission prompt, a control response.

It must never raise on any input: the CLI's output is untrusted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import msgspec

from wire import messages as m

DEFAULT_MAX_LINE = 200 * 1024 * 1024
TOOL_PREVIEW = 200
SUMMARY_MAX = 120
RAW_MAX = 64 * 1024
RESULT_TEXT_MAX = 16 * 1024


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


# --------------------------------------------------------------------------- translating


@dataclass(frozen=True)
class Emit:
    """A body to send; ephemeral ones (seq 0) are never stored."""

    body: m.EventBody
    ephemeral: bool = False


@dataclass(frozen=True)
class PermissionAsk:
    request_id: str
    tool_name: str
    input: dict[str, Any]
    summary: str
    input_json: str


@dataclass(frozen=True)
class ControlReply:
    """A control_response from the CLI to one of our control requests."""

    request_id: str
    ok: bool
    error: str = ""


@dataclass(frozen=True)
class OtherControlRequest:
    """A control request from the CLI we do not serve: answer it with an error."""

    request_id: str
    subtype: str


@dataclass
class Outcome:
    emits: list[Emit] = field(default_factory=list)
    session_id: str | None = None
    result: m.TurnResult | None = None
    total_cost_usd: float | None = None  # the CLI's running total for this process
    permission: PermissionAsk | None = None
    control_reply: ControlReply | None = None
    other_request: OtherControlRequest | None = None
    cancelled_request: str | None = None  # the CLI withdrew one of its control requests
    api_retry: ApiRetry | None = None  # the CLI is retrying a failed API call


@dataclass(frozen=True)
class ApiRetry:
    status: int | None
    attempt: int
    max_retries: int


def _s(v: Any) -> str:
    return v if isinstance(v, str) else ""


def _compact(v: Any) -> str:
    try:
        return json.dumps(v, ensure_ascii=False, separators=(",", ":"), default=str)
    except (TypeError, ValueError):
        return "{}"


def one_line(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


_SUMMARY_KEYS = {
    "Bash": "command",
    "Read": "file_path",
    "Write": "file_path",
    "Edit": "file_path",
    "MultiEdit": "file_path",
    "NotebookEdit": "notebook_path",
    "Glob": "pattern",
    "Grep": "pattern",
    "WebFetch": "url",
    "WebSearch": "query",
    "Task": "description",
    "Skill": "skill",
}


def tool_summary(name: str, tool_input: Any) -> str:
    """One compact line such as `Bash: ls -la`, whatever the tool."""
    arg = ""
    if isinstance(tool_input, dict):
        key = _SUMMARY_KEYS.get(name)
        if key and isinstance(tool_input.get(key), str):
            arg = tool_input[key]
        else:
            for v in tool_input.values():
                if isinstance(v, str) and v:
                    arg = v
                    break
            else:
                arg = _compact(tool_input) if tool_input else ""
    return one_line(f"{name}: {arg}" if arg else name, SUMMARY_MAX)


def _tool_result_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, dict):
                if block.get("type") == "text":
                    parts.append(_s(block.get("text")))
                else:
                    parts.append(f"[{_s(block.get('type')) or 'block'}]")
        return "\n".join(parts)
    return "" if content is None else _compact(content)


def _raw(obj: dict[str, Any]) -> str:
    text = _compact(obj)
    return text if len(text) <= RAW_MAX else text[: RAW_MAX - 1] + "…"


def _int(v: Any, default: int = 0) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) else default


def _float(v: Any) -> float:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else 0.0


class Translator:
    """CLI events -> Outcome. Keeps only what the stream itself tells: what the last
    SessionInit announced (so a warm CLI's repeated init is not re-emitted) and the running cost
    of this CLI process. The session's id itself is the worker's (state.py): the Outcome only
    reports it."""

    def __init__(self, announced_session_id: str | None = None) -> None:
        # (session id, model) of the last SessionInit sent; a resumed worker starts from the id
        # it already knows.
        self._announced: tuple[str | None, str] = (announced_session_id, "")
        self._last_total_cost = 0.0
        self.init_seen = False

    def new_process(self) -> None:
        """A fresh CLI process starts its running cost at zero and has not said init yet."""
        self._last_total_cost = 0.0
        self.init_seen = False

    def translate(self, ev: dict[str, Any]) -> Outcome:
        try:
            return self._translate(ev)
        except Exception:  # noqa: BLE001 - a surprising shape must not stop the session
            return Outcome(
                emits=[Emit(m.Unknown(type=f"unreadable:{_s(ev.get('type'))}", raw_json=_raw(ev)))]
            )

    def _translate(self, ev: dict[str, Any]) -> Outcome:
        t = _s(ev.get("type"))
        out = Outcome()
        sid = ev.get("session_id")
        if isinstance(sid, str) and sid:
            out.session_id = sid
        if t == "stream_event":
            event = ev.get("event")
            if isinstance(event, dict) and event.get("type") == "content_block_delta":
                delta = event.get("delta")
                if isinstance(delta, dict) and delta.get("type") == "text_delta":
                    text = _s(delta.get("text"))
                    if text and ev.get("parent_tool_use_id") is None:
                        out.emits.append(Emit(m.TextDelta(text=text), ephemeral=True))
            return out
        if t == "system":
            sub = _s(ev.get("subtype"))
            if sub == "init":
                self.init_seen = True
                model = _s(ev.get("model"))
                tools = [x for x in ev.get("tools") or [] if isinstance(x, str)]
                if isinstance(sid, str) and sid and (sid, model) != self._announced:
                    out.emits.append(
                        Emit(m.SessionInit(claude_session_id=sid, model=model, tools=tools))
                    )
                known = sid if isinstance(sid, str) and sid else self._announced[0]
                self._announced = (known, model)
                return out
            if sub == "api_retry":
                keys = ("error_status", "attempt", "max_retries")
                status, attempt, most = (ev.get(k) for k in keys)
                out.api_retry = ApiRetry(
                    status=status if isinstance(status, int) else None,
                    attempt=attempt if isinstance(attempt, int) else 0,
                    max_retries=most if isinstance(most, int) else 0,
                )
            ephemeral = sub in ("status", "api_retry")
            out.emits.append(
                Emit(m.Unknown(type=f"system/{sub}", raw_json=_raw(ev)), ephemeral=ephemeral)
            )
            return out
        if t == "assistant":
            msg = ev.get("message")
            content = msg.get("content") if isinstance(msg, dict) else None
            for block in content if isinstance(content, list) else []:
                if not isinstance(block, dict):
                    continue
                bt = block.get("type")
                if bt == "text":
                    text = _s(block.get("text"))
                    if text:
                        out.emits.append(Emit(m.AssistantText(text=text)))
                elif bt == "thinking":
                    text = _s(block.get("thinking")) or _s(block.get("text"))
                    if text:
                        out.emits.append(Emit(m.Thinking(text=text)))
                elif bt == "tool_use":
                    name = _s(block.get("name")) or "tool"
                    tin = block.get("input")
                    out.emits.append(
                        Emit(
                            m.ToolUse(
                                tool_use_id=_s(block.get("id")),
                                name=name,
                                summary=tool_summary(name, tin),
                                input_json=_raw(tin) if isinstance(tin, dict) else "{}",
                            )
                        )
                    )
                # redacted_thinking and other block types carry nothing to show
            return out
        if t == "user":
            msg = ev.get("message")
            content = msg.get("content") if isinstance(msg, dict) else None
            # A plain string is the CLI echoing a user line (e.g. "[Request interrupted by user]").
            for block in content if isinstance(content, list) else []:
                if isinstance(block, dict) and block.get("type") == "tool_result":
                    text = _tool_result_text(block.get("content"))
                    out.emits.append(
                        Emit(
                            m.ToolResult(
                                tool_use_id=_s(block.get("tool_use_id")),
                                is_error=block.get("is_error") is True,
                                preview=one_line(text, TOOL_PREVIEW),
                            )
                        )
                    )
            return out
        if t == "result":
            total = _float(ev.get("total_cost_usd"))
            cost = max(0.0, total - self._last_total_cost)
            self._last_total_cost = total
            out.total_cost_usd = total
            text = _s(ev.get("result"))
            is_error = ev.get("is_error") is True
            if not is_error and len(text) > RESULT_TEXT_MAX:
                text = ""  # the assistant events already carry it in full
            status = ev.get("api_error_status")
            reason = ev.get("terminal_reason")
            out.result = m.TurnResult(
                subtype=_s(ev.get("subtype")) or "success",
                is_error=is_error,
                text=text,
                cost_usd=cost,
                duration_ms=_int(ev.get("duration_ms")),
                num_turns=_int(ev.get("num_turns")),
                api_error_status=status if isinstance(status, int) else None,
                terminal_reason=reason if isinstance(reason, str) else None,
            )
            return out
        if t == "rate_limit_event":
            out.emits.append(Emit(m.RateLimit(raw_json=_raw(ev))))
            return out
        if t == "control_request":
            rid = _s(ev.get("request_id"))
            req = ev.get("request")
            req = req if isinstance(req, dict) else {}
            sub = _s(req.get("subtype"))
            if sub == "can_use_tool" and rid:
                name = _s(req.get("tool_name")) or "tool"
                tin = req.get("input")
                tin = tin if isinstance(tin, dict) else {}
                out.permission = PermissionAsk(
                    request_id=rid,
                    tool_name=name,
                    input=tin,
                    summary=tool_summary(name, tin),
                    input_json=_raw(tin),
                )
            else:
                out.other_request = OtherControlRequest(request_id=rid, subtype=sub)
            return out
        if t == "control_response":
            resp = ev.get("response")
            resp = resp if isinstance(resp, dict) else {}
            out.control_reply = ControlReply(
                request_id=_s(resp.get("request_id")),
                ok=resp.get("subtype") == "success",
                error=_s(resp.get("error")),
            )
            return out
        if t == "control_cancel_request":
            out.cancelled_request = _s(ev.get("request_id")) or None
            out.emits.append(Emit(m.Unknown(type=t, raw_json=_raw(ev)), ephemeral=True))
            return out
        out.emits.append(Emit(m.Unknown(type=t or "untyped", raw_json=_raw(ev))))
        return out


# --------------------------------------------------------------------------- lines to the CLI


def user_line(text: str) -> bytes:
    return _encode({"type": "user", "message": {"role": "user", "content": text}})


def interrupt_line(request_id: str) -> bytes:
    return _encode(
        {"type": "control_request", "request_id": request_id, "request": {"subtype": "interrupt"}}
    )


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
