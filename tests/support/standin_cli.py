"""The one scripted stand-in for the Claude CLI, for faults the real one cannot be made to show.

It speaks just enough warm stream-json: one `user` line in, `system/init`, `assistant` and
`result` out. `install(dir, mode)` writes an executable wrapper that runs this file with the
test's Python and the mode as its first argument (`--standin-mode=MODE`); the CLI's own
arguments follow and are ignored. It must never reach the network or outlive its stdin (the
`deaf` fault excepted, which its test kills).

Modes:

    scripted   the user's text picks the behaviour (the worker's fault tests):
                   malformed      a line that starts like JSON but is not, then a normal answer
                   badutf8        a line that is not UTF-8, then a normal answer
                   badutf8text    the answer's own line has a byte that is not UTF-8 (and no
                                  normal answer)
                   debug          a plain debug line (not JSON), then a normal answer
                   unknown        an event of a type nobody knows, then a normal answer
                   crashmidline   half an assistant line, then exit 3 at once
                   deaf           streams slowly and ignores interrupts (and never ends)
                   anything else  answers `fake: <text>`
    badline    before every answer, a line of raw invalid bytes; the answer is the sandbox's
               echo (`echo: <text>`), so a test matches it as it matches a real turn. With
               `poison` in the text, the assistant line itself carries an invalid byte inside
               its JSON string (the whole stack's bad-input tests).
"""
from __future__ import annotations

import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

SCRIPTED = "scripted"
BADLINE = "badline"
MODES = (SCRIPTED, BADLINE)
MODE_ARG = "--standin-mode="

DEAF_PING_EVERY = 0.2  # the "deaf" CLI's stream: a ping this often, forever
SESSION = os.environ.get("FAKE_SESSION_ID") or str(uuid.uuid4())
BAD_LINE = b"\xff\xfe\xfa not utf-8 \xc3\x28 at all \xed\xa0\x80\n"


def out(obj: object) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def raw(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def init(model: str, **extra: Any) -> None:
    out({"type": "system", "subtype": "init", "session_id": SESSION, "model": model,
         "tools": [], **extra})


def result(text: str) -> None:
    out({"type": "result", "subtype": "success", "is_error": False, "result": text,
         "session_id": SESSION, "total_cost_usd": 0.0, "duration_ms": 1, "num_turns": 1})


def assistant(text: str) -> dict[str, Any]:
    return {"type": "assistant", "session_id": SESSION,
            "message": {"role": "assistant", "content": [{"type": "text", "text": text}]}}


def answer(text: str) -> None:
    init("fake")
    out(assistant(text))
    result(text)


def user_text(msg: dict[str, Any]) -> str:
    content = msg.get("message", {}).get("content", "")
    if isinstance(content, list):
        return " ".join(b.get("text", "") for b in content if isinstance(b, dict))
    return str(content)


def scripted_turn(text: str) -> None:
    if text == "malformed":
        raw(b'{"type": "assistant", oops\n')
    elif text == "badutf8":
        raw(b'{"type": "assistant", "x": "\xff\xfe"}\n')
    elif text == "badutf8text":
        # The answer itself carries a byte that is not UTF-8: its text must still arrive.
        raw(b'{"type": "assistant", "session_id": "' + SESSION.encode() + b'", "message":'
            b' {"role": "assistant", "content": [{"type": "text", "text": "caf\xe9 ok"}]}}\n')
        result("caf? ok")
        return
    elif text == "debug":
        raw(b"[DEBUG] fake cli warming up\n")
    elif text == "unknown":
        out({"type": "brand_new_event", "session_id": SESSION, "detail": 1})
    elif text == "crashmidline":
        raw(b'{"type": "assistant", "message": {"content": [{"type": "te')
        os._exit(3)
    elif text == "deaf":
        init("fake")
        while True:  # ignores stdin, interrupts included
            out({"type": "stream_event", "event": {"type": "ping"}, "session_id": SESSION})
            time.sleep(DEAF_PING_EVERY)
    answer(f"fake: {text}")


def badline_turn(text: str) -> None:
    text = f"echo: {text}"
    init("standin", cwd=str(Path.cwd()))
    raw(BAD_LINE)
    line = json.dumps(assistant(text + (" caf@@BAD@@" if "poison" in text else ""))).encode()
    # An invalid byte inside a JSON string: the line is JSON, but not UTF-8.
    raw(line.replace(b"@@BAD@@", b"\xe9") + b"\n")
    result(text)


def main(argv: list[str]) -> int:
    mode = next((a[len(MODE_ARG):] for a in argv if a.startswith(MODE_ARG)), SCRIPTED)
    if mode not in MODES:
        print(f"unknown stand-in mode {mode!r}; one of {', '.join(MODES)}", file=sys.stderr)
        return 2
    turn = scripted_turn if mode == SCRIPTED else badline_turn
    for line in sys.stdin.buffer:
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if msg.get("type") != "user":
            continue
        turn(user_text(msg) if mode == BADLINE else str(msg["message"]["content"]))
    return 0


def install(directory: Path, mode: str) -> str:
    """An executable `claude` stand-in in `directory` that runs this file in `mode`."""
    if mode not in MODES:
        raise ValueError(f"unknown stand-in mode {mode!r}; one of {', '.join(MODES)}")
    path = directory / f"standin-claude-{mode}"
    path.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{Path(__file__).resolve()}"'
                    f' {MODE_ARG}{mode} "$@"\n')
    path.chmod(0o755)
    return str(path)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
