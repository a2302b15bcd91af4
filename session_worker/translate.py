"""The translation of the Claude CLI's stream-json events into what the worker must do.

Pure code: one parsed event (a dict, from stream_json.parse_line) in, an `Outcome` out: bodies to
emit (typed wire events the bot renders without knowing the CLI's JSON), the session id the
CLI reported, a turn that ended, a permission prompt, a control response, an API retry. No I/O
and no clock, so every case is a table row in tests/unit/test_worker_stream.py.

It must never raise on any input (the CLI's output is untrusted: an unreadable shape becomes an
Unknown event), and never hold the session's id (state.py owns it; the Outcome reports it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from session_worker import meter
from wire import messages as m

TOOL_PREVIEW = 200
SUMMARY_MAX = 120
RAW_MAX = 64 * 1024
RESULT_TEXT_MAX = 16 * 1024


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
    payload: dict[str, Any] = field(default_factory=dict)  # the response's own fields


@dataclass(frozen=True)
class OtherControlRequest:
    """A control request from the CLI we do not serve: answer it with an error."""

    request_id: str
    subtype: str


@dataclass(frozen=True)
class McpRequest:
    """A JSON-RPC message from the CLI for one of the worker's own MCP servers (mcp_message)."""

    request_id: str
    server: str
    message: Any


@dataclass
class Outcome:
    emits: list[Emit] = field(default_factory=list)
    session_id: str | None = None
    result: m.TurnResult | None = None
    total_cost_usd: float | None = None  # the CLI's running total for this process
    permission: PermissionAsk | None = None
    control_reply: ControlReply | None = None
    other_request: OtherControlRequest | None = None
    mcp: McpRequest | None = None
    cancelled_request: str | None = None  # the CLI withdrew one of its control requests
    api_retry: ApiRetry | None = None  # the CLI is retrying a failed API call
    # A rate_limit_event's subscription windows (session_worker.meter.rate_windows).
    rate_windows: list[m.RateWindow] = field(default_factory=list)


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
        self.model = ""  # the model the CLI last said it uses (init, a result, set_model)

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
                self.model = model or self.model
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
            if sub == "compact_boundary":
                sentence = meter.compacted_sentence(ev.get("compact_metadata"))
                out.emits.append(Emit(m.Notice(level="info", message=sentence)))
                return out
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
            used = meter.turn_usage(ev, self.model)
            self.model = used.model or self.model
            out.result = m.TurnResult(
                subtype=_s(ev.get("subtype")) or "success",
                is_error=is_error,
                text=text,
                cost_usd=cost,
                duration_ms=_int(ev.get("duration_ms")),
                num_turns=_int(ev.get("num_turns")),
                api_error_status=status if isinstance(status, int) else None,
                terminal_reason=reason if isinstance(reason, str) else None,
                model=used.model,
                tokens_in=used.tokens_in,
                tokens_out=used.tokens_out,
                context_percent=used.context_percent,
            )
            return out
        if t == "rate_limit_event":
            out.rate_windows = meter.rate_windows(ev)
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
                # The whole input, never cut: it is what the user is shown and what an Allow
                # approves (session_worker.prompts answers with exactly this).
                out.permission = PermissionAsk(
                    request_id=rid,
                    tool_name=name,
                    input=tin,
                    summary=tool_summary(name, tin),
                    input_json=_compact(tin),
                )
            elif sub == "mcp_message" and rid:
                out.mcp = McpRequest(request_id=rid, server=_s(req.get("server_name")),
                                     message=req.get("message"))
            else:
                out.other_request = OtherControlRequest(request_id=rid, subtype=sub)
            return out
        if t == "control_response":
            resp = ev.get("response")
            resp = resp if isinstance(resp, dict) else {}
            payload = resp.get("response")
            out.control_reply = ControlReply(
                request_id=_s(resp.get("request_id")),
                ok=resp.get("subtype") == "success",
                error=_s(resp.get("error")),
                payload=payload if isinstance(payload, dict) else {},
            )
            return out
        if t == "control_cancel_request":
            out.cancelled_request = _s(ev.get("request_id")) or None
            out.emits.append(Emit(m.Unknown(type=t, raw_json=_raw(ev)), ephemeral=True))
            return out
        out.emits.append(Emit(m.Unknown(type=t or "untyped", raw_json=_raw(ev))))
        return out
