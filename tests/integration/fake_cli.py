"""A scripted stand-in for the Claude CLI, for faults the real one cannot be made to show.

It speaks just enough stream-json: one `user` line in, a few events and a `result` out. The
user's text picks the behaviour:

    malformed       a line that starts like JSON but is not, then a normal answer
    badutf8         a line that is not UTF-8, then a normal answer
    badutf8text     the answer's own line has a byte that is not UTF-8 (and no normal answer)
    debug           a plain debug line (not JSON), then a normal answer
    unknown         an event of a type nobody knows, then a normal answer
    crashmidline    half an assistant line, then exit 3 at once
    deaf            streams slowly and ignores interrupts (and never ends)
    anything else   answers `fake: <text>`

`make_fake_cli(dir)` writes an executable wrapper that runs this file with the test's Python.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from pathlib import Path

DEAF_PING_EVERY = 0.2  # the "deaf" CLI's stream: a ping this often, forever
SESSION = os.environ.get("FAKE_SESSION_ID") or str(uuid.uuid4())


def out(obj: object) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def raw(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def answer(text: str) -> None:
    out({"type": "system", "subtype": "init", "session_id": SESSION, "model": "fake", "tools": []})
    out(
        {
            "type": "assistant",
            "session_id": SESSION,
            "message": {"role": "assistant", "content": [{"type": "text", "text": text}]},
        }
    )
    out(
        {
            "type": "result",
            "subtype": "success",
            "is_error": False,
            "result": text,
            "session_id": SESSION,
            "total_cost_usd": 0.0,
            "duration_ms": 1,
            "num_turns": 1,
        }
    )


def main() -> int:
    for line in sys.stdin:
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if msg.get("type") != "user":
            continue
        text = str(msg["message"]["content"])
        if text == "malformed":
            raw(b'{"type": "assistant", oops\n')
        elif text == "badutf8":
            raw(b'{"type": "assistant", "x": "\xff\xfe"}\n')
        elif text == "badutf8text":
            # The answer itself carries a byte that is not UTF-8: its text must still arrive.
            raw(b'{"type": "assistant", "session_id": "' + SESSION.encode() + b'", "message":'
                b' {"role": "assistant", "content": [{"type": "text", "text": "caf\xe9 ok"}]}}\n')
            out({"type": "result", "subtype": "success", "is_error": False, "result": "caf? ok",
                 "session_id": SESSION, "total_cost_usd": 0.0, "duration_ms": 1, "num_turns": 1})
            continue
        elif text == "debug":
            raw(b"[DEBUG] fake cli warming up\n")
        elif text == "unknown":
            out({"type": "brand_new_event", "session_id": SESSION, "detail": 1})
        elif text == "crashmidline":
            raw(b'{"type": "assistant", "message": {"content": [{"type": "te')
            os._exit(3)
        elif text == "deaf":
            out(
                {
                    "type": "system",
                    "subtype": "init",
                    "session_id": SESSION,
                    "model": "fake",
                    "tools": [],
                }
            )
            while True:  # ignores stdin, interrupts included
                out({"type": "stream_event", "event": {"type": "ping"}, "session_id": SESSION})
                time.sleep(DEAF_PING_EVERY)
        answer(f"fake: {text}")
    return 0


def make_fake_cli(directory: Path) -> str:
    path = directory / "fake-claude"
    path.write_text(f'#!/bin/sh\nexec {sys.executable} {Path(__file__).resolve()} "$@"\n')
    path.chmod(0o755)
    return str(path)


if __name__ == "__main__":
    sys.exit(main())
