"""Pure scripting logic of the sandbox Messages API (no I/O, unit-testable).

A request's behaviour is chosen by directives in the text of the newest user message: tokens
``#sb:NAME`` or ``#sb:NAME=VALUE``. A value runs to the next whitespace, except for the names in
``LINE_VALUED`` (``bash``, ``text``) whose value runs to the end of the line.

    (none)            echo: answer ``echo: <the user's text>``
    #sb:size=N        an answer of exactly N ASCII characters ending with "END" (see sized_text)
    #sb:bash=CMD      a Bash tool_use; the follow-up request (carrying the tool_result) gets
                      ``tool said: <first 200 chars of the result>``
    #sb:tool=NAME {JSON}  a tool_use of any tool NAME (an MCP tool is ``mcp__server__tool``)
                      with the JSON object as its input; the follow-up as for bash
    #sb:text=TEXT     answer exactly TEXT
    #sb:slow=MS       MS milliseconds between deltas, one word per delta
    #sb:words=N       the answer is ``w1 w2 ... wN`` (default 20 with slow), one word per delta
    #sb:error=CODE    HTTP error CODE with Anthropic's error body (401, 429, 500, 529, ...)
    #sb:hang          message_start and one delta, then nothing until the client goes away
    #sb:markdown      a fixed Markdown answer (MARKDOWN_ANSWER)
    #sb:thinking      a thinking block before the answer
    #sb:ratelimit=U   the answer carries the subscription rate-limit headers the CLI turns into
                      a rate_limit_event: the 5-hour window at utilization U (0.85 = 85 %);
                      ``7d:U`` for the weekly window (see RATE_LIMIT_WINDOWS)

``plan_response`` turns a request body (plus an optional queued override) into a ``Plan``; the
server only renders plans as SSE or JSON.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

LINE_VALUED = frozenset({"bash", "text", "tool"})
KNOWN = frozenset(
    {"size", "bash", "text", "tool", "slow", "words", "error", "hang", "markdown", "thinking",
     "echo", "ratelimit"}
)
# The unified windows the CLI reads from `anthropic-ratelimit-unified-<short>-*` headers:
# short name -> (the CLI's rateLimitType, the window's length in seconds).
RATE_LIMIT_WINDOWS: dict[str, tuple[str, int]] = {
    "5h": ("five_hour", 5 * 3600),
    "7d": ("seven_day", 7 * 86400),
}
DEFAULT_WORDS = 20
BIG_CHUNK = 1_000_000  # characters per delta for large answers
TOOL_RESULT_PREVIEW = 200

ERROR_TYPES: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request (sandbox)"),
    401: ("authentication_error", "invalid x-api-key"),
    403: (
        "permission_error",
        "Your API key does not have permission to use the specified resource.",
    ),
    404: ("not_found_error", "Not found"),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: (
        "rate_limit_error",
        "Number of request tokens has exceeded your per-minute rate limit (sandbox)",
    ),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}

MARKDOWN_ANSWER = """# Sandbox heading

Some **bold text**, some `inline code` and a list:

- first item
- second item with **bold**
- third item

```python
def greet(name: str) -> str:
    return f"hello {name}"
```

Done."""

THINKING_TEXT = "Let me think about this in the sandbox. The answer is scripted."

_TOKEN = re.compile(r"#sb:([A-Za-z][A-Za-z0-9_]*)")
_WORD_VALUE = re.compile(r"\S*")
_REMINDER = re.compile(r"<system-reminder>.*?</system-reminder>", re.DOTALL)
# What the CLI records of a local command it ran (/model, /compact) rides along with the next
# user message; like a system reminder, it is not what the user said.
_LOCAL_COMMAND = re.compile(
    r"<(local-command-caveat|command-name|command-message|command-args|local-command-stdout"
    r"|local-command-stderr)>.*?</\1>", re.DOTALL)
# After an automatic compaction the CLI opens the next user message with the summary of the
# earlier conversation; like a system reminder, it is not what the user said.
_CONTINUATION = "This session is being continued from a previous conversation"
_PATTERN = "The quick brown fox jumps over the lazy dog 0123456789. "


class DirectiveError(ValueError):
    """A directive with an unusable value."""


def parse_directives(text: str) -> dict[str, str | None]:
    """Every ``#sb:NAME[=VALUE]`` token in ``text`` as {name: value or None}; the last one wins."""
    out: dict[str, str | None] = {}
    pos = 0
    while (m := _TOKEN.search(text, pos)) is not None:
        name = m.group(1).lower()
        end = m.end()
        value: str | None = None
        if end < len(text) and text[end] == "=":
            if name in LINE_VALUED:
                nl = text.find("\n", end)
                stop = len(text) if nl < 0 else nl
                value = text[end + 1 : stop].strip()
            else:
                vm = _WORD_VALUE.match(text, end + 1)
                assert vm is not None
                value, stop = vm.group(), vm.end()
            end = stop
        out[name] = value
        pos = max(end, m.end())
    return out


@dataclass(frozen=True)
class Script:
    """A validated behaviour, from prompt directives or from the control API."""

    error: int | None = None
    size: int | None = None
    bash: str | None = None
    tool: tuple[str, str] | None = None  # (name, JSON text of the input object)
    text: str | None = None
    slow_ms: int | None = None
    words: int | None = None
    hang: bool = False
    markdown: bool = False
    thinking: bool = False
    ratelimit: tuple[str, float] | None = None  # (window short name, utilization 0..1)

    @property
    def empty(self) -> bool:
        return self == Script()


def _int(name: str, value: Any, minimum: int = 0) -> int:
    if isinstance(value, bool):
        raise DirectiveError(f"#sb:{name} needs a number, got {value!r}")
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise DirectiveError(f"#sb:{name} needs a number, got {value!r}") from None
    if n < minimum:
        raise DirectiveError(f"#sb:{name} must be >= {minimum}, got {n}")
    return n


def _flag(name: str, value: Any) -> bool:
    if value is None or value is True:
        return True
    if value is False:
        return False
    s = str(value).strip().lower()
    if s in ("", "1", "true", "yes", "on"):
        return True
    if s in ("0", "false", "no", "off"):
        return False
    raise DirectiveError(f"#sb:{name} is a flag, got {value!r}")


def _tool(value: Any) -> tuple[str, str]:
    """``NAME {JSON object}`` (or ``NAME`` alone: an empty input) as (name, JSON text)."""
    raw = "" if value is None or value is True else str(value).strip()
    name, _, rest = raw.partition(" ")
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", name):
        raise DirectiveError(f"#sb:tool needs a tool name, got {raw!r}")
    rest = rest.strip() or "{}"
    try:
        parsed = json.loads(rest)
    except json.JSONDecodeError as exc:
        raise DirectiveError(f"#sb:tool's input is not JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise DirectiveError("#sb:tool's input must be a JSON object")
    return name, json.dumps(parsed)


def _ratelimit(value: Any) -> tuple[str, float]:
    """``U`` or ``WINDOW:U`` (WINDOW in RATE_LIMIT_WINDOWS, U a fraction 0..1)."""
    raw = "" if value is None or value is True else str(value).strip()
    window, _, util = raw.rpartition(":")
    window = window or "5h"
    if window not in RATE_LIMIT_WINDOWS:
        raise DirectiveError(
            f"#sb:ratelimit's window must be one of {sorted(RATE_LIMIT_WINDOWS)}, got {window!r}")
    try:
        u = float(util)
    except ValueError:
        raise DirectiveError(
            f"#sb:ratelimit needs a utilization such as 0.85, got {raw!r}") from None
    if not 0.0 <= u <= 1.0:
        raise DirectiveError(f"#sb:ratelimit's utilization must be within 0..1, got {u}")
    return window, u


def rate_limit_headers(window: str, utilization: float, now: float) -> dict[str, str]:
    """The `anthropic-ratelimit-unified-*` headers of a subscription at `utilization` of one
    window, as the real API sends them; past 80 % the window says it surpassed that threshold
    (the CLI then reports `allowed_warning`)."""
    claim, seconds = RATE_LIMIT_WINDOWS[window]
    # The end of the window now running: one stable number for the whole window.
    reset = str(int(now // seconds * seconds + seconds))
    headers = {
        "anthropic-ratelimit-unified-status": "allowed" if utilization < 1.0 else "rejected",
        "anthropic-ratelimit-unified-reset": reset,
        "anthropic-ratelimit-unified-representative-claim": claim,
        f"anthropic-ratelimit-unified-{window}-utilization": f"{utilization:g}",
        f"anthropic-ratelimit-unified-{window}-reset": reset,
        f"anthropic-ratelimit-unified-{window}-status": "allowed" if utilization < 1.0
        else "rejected",
    }
    if utilization >= 0.8:
        headers[f"anthropic-ratelimit-unified-{window}-surpassed-threshold"] = "0.8"
    return headers


def script_from_directives(directives: dict[str, Any]) -> Script:
    """Validate directives (parsed from text, or a JSON object from the control API).

    Unknown names raise DirectiveError, so a typo in a test does not silently echo.
    """
    unknown = set(directives) - KNOWN
    if unknown:
        raise DirectiveError(f"unknown directive(s): {', '.join(sorted(unknown))}")
    kw: dict[str, Any] = {}
    for name, value in directives.items():
        if name == "error":
            code = _int(name, value, 100)
            if code not in ERROR_TYPES:
                raise DirectiveError(f"#sb:error supports {sorted(ERROR_TYPES)}, got {code}")
            kw["error"] = code
        elif name == "size":
            kw["size"] = _int(name, value, 0)
        elif name == "slow":
            kw["slow_ms"] = _int(name, value, 0)
        elif name == "words":
            kw["words"] = _int(name, value, 1)
        elif name in ("bash", "text"):
            if value is None or value is True or str(value) == "":
                raise DirectiveError(f"#sb:{name} needs a value")
            kw[name] = str(value)
        elif name == "tool":
            kw["tool"] = _tool(value)
        elif name in ("hang", "markdown", "thinking"):
            kw[name] = _flag(name, value)
        elif name == "ratelimit":
            kw["ratelimit"] = _ratelimit(value)
        elif name == "echo":
            pass  # explicit default behaviour
    return Script(**kw)


# --- reading requests ---------------------------------------------------------------------------


def _block_text(content: Any) -> str:
    """Text of a message content or tool_result content (string or list of blocks)."""
    if isinstance(content, str):
        return content
    parts: list[str] = []
    if isinstance(content, list):
        for block in content:
            if isinstance(block, dict) and block.get("type") == "text":
                parts.append(str(block.get("text", "")))
    return "\n".join(parts)


def newest_user_message(messages: Any) -> dict[str, Any] | None:
    if not isinstance(messages, list):
        return None
    for msg in reversed(messages):
        if isinstance(msg, dict) and msg.get("role") == "user":
            return msg
    return None


def user_text(message: dict[str, Any] | None) -> str:
    """The user's own text in a message: text blocks without <system-reminder> parts.

    tool_result blocks are not the user's text.
    """
    if message is None:
        return ""
    content = message.get("content")
    if isinstance(content, str):
        pieces = [content]
    elif isinstance(content, list):
        pieces = [
            str(b.get("text", ""))
            for b in content
            if isinstance(b, dict) and b.get("type") == "text"
        ]
    else:
        pieces = []
    kept = [_LOCAL_COMMAND.sub("", _REMINDER.sub("", p)).strip() for p in pieces
            if not p.startswith(_CONTINUATION)]
    return "\n".join(p for p in kept if p)


def tool_results(message: dict[str, Any] | None) -> list[dict[str, Any]]:
    if message is None or not isinstance(message.get("content"), list):
        return []
    return [b for b in message["content"] if isinstance(b, dict) and b.get("type") == "tool_result"]


def estimate_tokens(n_chars: int) -> int:
    return max(1, n_chars // 4)


# --- answers ------------------------------------------------------------------------------------


def sized_text(n: int) -> str:
    """Exactly n ASCII characters: a repeating sentence, ending with "END" (if n >= 3)."""
    if n <= 0:
        return ""
    if n < 3:
        return "END"[-n:]
    body = n - 3
    reps = body // len(_PATTERN) + 1
    return (_PATTERN * reps)[:body] + "END"


def words_text(n: int) -> str:
    return " ".join(f"w{i}" for i in range(1, n + 1))


def split_words(text: str) -> list[str]:
    """Split into one word per chunk, the separating whitespace kept before the word."""
    chunks = re.findall(r"\s*\S+", text)
    tail = text[len("".join(chunks)) :]
    if tail:
        if chunks:
            chunks[-1] += tail
        else:
            chunks = [tail]
    return chunks or [""]


def split_big(text: str, chunk: int = BIG_CHUNK) -> list[str]:
    """A few large deltas (small answers in one)."""
    if len(text) <= chunk:
        return [text]
    return [text[i : i + chunk] for i in range(0, len(text), chunk)]


@dataclass
class Block:
    """One content block of an answer, with the deltas it is streamed in."""

    type: str  # "text" | "thinking" | "tool_use"
    chunks: list[str]  # text pieces, or partial_json pieces for tool_use
    tool_id: str = ""
    tool_name: str = ""
    tool_input: dict[str, Any] = field(default_factory=dict)

    @property
    def full(self) -> str:
        return "".join(self.chunks)

    def content(self) -> dict[str, Any]:
        """The block as it appears in a non-streamed Message."""
        if self.type == "text":
            return {"type": "text", "text": self.full}
        if self.type == "thinking":
            return {"type": "thinking", "thinking": self.full, "signature": THINKING_SIGNATURE}
        return {
            "type": "tool_use",
            "id": self.tool_id,
            "name": self.tool_name,
            "input": self.tool_input,
        }


THINKING_SIGNATURE = "sandbox-signature"


@dataclass
class Plan:
    blocks: list[Block] = field(default_factory=list)
    stop_reason: str = "end_turn"
    delay_s: float = 0.0  # between deltas
    hang: bool = False
    error: int | None = None
    error_message: str = ""
    ratelimit: tuple[str, float] | None = None  # headers of Script.ratelimit on the answer

    @property
    def output_chars(self) -> int:
        return sum(len(b.full) for b in self.blocks)

    def error_body(self) -> dict[str, Any]:
        assert self.error is not None
        return error_body(self.error, self.error_message or None)


def error_body(status: int, message: str | None = None) -> dict[str, Any]:
    etype, default = ERROR_TYPES.get(status, ("api_error", "Error"))
    return {"type": "error", "error": {"type": etype, "message": message or default}}


def new_tool_id() -> str:
    return "toolu_sb_" + uuid.uuid4().hex[:20]


def is_side_request(body: dict[str, Any]) -> bool:
    """A request the CLI makes besides the model turns (a title, a quota check): no tools, and a
    small model or a small max_tokens. Side requests are always echoed: they never act on
    directives nor consume a queued script."""
    if body.get("tools"):
        return False
    model = str(body.get("model", "")).lower()
    max_tokens = body.get("max_tokens")
    small = isinstance(max_tokens, int) and max_tokens < 1024
    return "haiku" in model or small


def plan_response(body: dict[str, Any], override: Script | None = None) -> Plan:
    """What to answer to a /v1/messages request body.

    Priority: a queued override, then a pending tool_result (the follow-up of a tool_use), then
    the directives in the newest user message's text, else echo. Side requests are echoed.
    """
    newest = newest_user_message(body.get("messages"))
    text = user_text(newest)
    if is_side_request(body):
        return plan_from_script(Script(), text)
    if override is not None:
        script = override
    else:
        results = tool_results(newest)
        if results:
            said = _block_text(results[-1].get("content"))
            answer = "tool said: " + said[:TOOL_RESULT_PREVIEW]
            return Plan(blocks=[Block("text", [answer])])
        try:
            script = script_from_directives(parse_directives(text))
        except DirectiveError as exc:
            return Plan(blocks=[Block("text", [f"sandbox: bad directive: {exc}"])])
    return plan_from_script(script, text)


def plan_from_script(script: Script, user_said: str) -> Plan:
    if script.error is not None:
        return Plan(error=script.error)
    plan = Plan(ratelimit=script.ratelimit)
    by_word = script.slow_ms is not None or script.words is not None
    plan.delay_s = (script.slow_ms or 0) / 1000.0
    plan.hang = script.hang
    if script.thinking:
        plan.blocks.append(
            Block("thinking", split_words(THINKING_TEXT) if by_word else [THINKING_TEXT])
        )
    if script.bash is not None or script.tool is not None:
        if script.tool is not None:
            tool_name, raw = script.tool
            tool_input = json.loads(raw)
        else:
            tool_name = "Bash"
            tool_input = {"command": script.bash, "description": "sandbox command"}
            raw = json.dumps(tool_input)
        mid = len(raw) // 2
        plan.blocks.append(
            Block(
                "tool_use",
                [raw[:mid], raw[mid:]],
                tool_id=new_tool_id(),
                tool_name=tool_name,
                tool_input=tool_input,
            )
        )
        plan.stop_reason = "tool_use"
        return plan
    if script.size is not None:
        answer = sized_text(script.size)
    elif script.text is not None:
        answer = script.text
    elif script.markdown:
        answer = MARKDOWN_ANSWER
    elif by_word:
        answer = words_text(script.words or DEFAULT_WORDS)
    else:
        answer = "echo: " + user_said
    if by_word and script.size is None:
        chunks = split_words(answer)
    else:
        chunks = split_big(answer)
    if script.hang and len(chunks) < 2:
        # hang = one delta, then silence: make sure there is something left to withhold
        chunks = [answer[: len(answer) // 2], answer[len(answer) // 2 :]]
    plan.blocks.append(Block("text", chunks))
    return plan
