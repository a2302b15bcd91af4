"""A stand-in Claude CLI whose stdout is not valid UTF-8: a fault the real CLI cannot show.

It speaks the warm stream-json protocol (one `user` line in, `system/init`, `assistant` and
`result` out), but before each answer it writes a line of raw invalid bytes. The answer is the
sandbox's echo (`echo: <text>`), so a test matches it the same way as a real turn. With `poison`
in the user's text, the assistant line itself carries an invalid byte inside its JSON string.

`install(dir)` writes an executable wrapper that runs this file with the test's Python.
"""
from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

SESSION = str(uuid.uuid4())
BAD_LINE = b"\xff\xfe\xfa not utf-8 \xc3\x28 at all \xed\xa0\x80\n"


def emit(obj: object, *, poison: bytes = b"") -> None:
    data = json.dumps(obj).encode()
    if poison:
        # An invalid byte inside a JSON string: the line is JSON, but not UTF-8.
        data = data.replace(b"@@BAD@@", poison)
    sys.stdout.buffer.write(data + b"\n")
    sys.stdout.buffer.flush()


def user_text(msg: dict) -> str:
    content = msg.get("message", {}).get("content", "")
    if isinstance(content, list):
        return " ".join(b.get("text", "") for b in content if isinstance(b, dict))
    return str(content)


def main() -> int:
    for line in sys.stdin.buffer:
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if msg.get("type") != "user":
            continue
        text = f"echo: {user_text(msg)}"
        emit({"type": "system", "subtype": "init", "session_id": SESSION, "model": "standin",
              "tools": [], "cwd": str(Path.cwd())})
        sys.stdout.buffer.write(BAD_LINE)
        sys.stdout.buffer.flush()
        poisoned = "poison" in text
        emit({"type": "assistant", "session_id": SESSION,
              "message": {"role": "assistant",
                          "content": [{"type": "text",
                                       "text": text + (" caf@@BAD@@" if poisoned else "")}]}},
             poison=b"\xe9" if poisoned else b"")
        emit({"type": "result", "subtype": "success", "is_error": False, "result": text,
              "session_id": SESSION, "total_cost_usd": 0.0, "duration_ms": 1, "num_turns": 1})
    return 0


def install(directory: Path) -> str:
    path = directory / "standin-claude"
    path.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{Path(__file__).resolve()}" "$@"\n')
    path.chmod(0o755)
    return str(path)


if __name__ == "__main__":
    sys.exit(main())
