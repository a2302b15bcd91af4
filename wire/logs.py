"""One log per program under <state_dir>/logs/, rotated by size, as key=value lines.

The children's raw stdout/stderr (`<program>.stdio`, opened by the supervisor at each spawn) roll
over by the same size limit with `rotate_if_over`, at spawn: the file a child writes is never
renamed under it, so one run's output may pass the limit until its next start.

Every role calls `setup(...)` once at start. Lines look like
`time=2026-11-27T06:40:00.123Z level=info program=session:demo session=demo event=turn_done ...`.
Message texts and tokens never go in at info level; `redact` strips a bot token wherever one
slips into a string (httpx logs URLs, and Telegram URLs carry the token): anything shaped like a
token, and the exact secrets a process registered with `add_secret`. `redact_stdio` puts the same
filter on the process's own stdout and stderr, which the supervisor appends to `<program>.stdio`
(a traceback of PTB's InvalidToken quotes the token). Never writes a secret anywhere itself.
"""
from __future__ import annotations

import logging
import logging.handlers
import os
import re
import sys
import time
from pathlib import Path
from typing import TextIO

_TOKEN_RE = re.compile(r"\d{5,}:[A-Za-z0-9_-]{20,}|bot\d+:[^/\s]+")
MAX_BYTES = 5 * 1024 * 1024
BACKUPS = 3


_secrets: set[str] = set()


def add_secret(secret: str) -> None:
    """Redact this exact string (and its part after the colon, a token's secret half) from now on,
    whatever its shape."""
    for s in (secret, secret.partition(":")[2]):
        if len(s) >= 8:  # shorter would redact ordinary words
            _secrets.add(s)


def redact(text: str) -> str:
    for s in sorted(_secrets, key=len, reverse=True):
        if s in text:
            text = text.replace(s, "<token>")
    return _TOKEN_RE.sub("<token>", text)


class RedactingStream:
    """A text stream that redacts every write before passing it on (see redact_stdio)."""

    def __init__(self, inner: TextIO) -> None:
        self._inner = inner

    def write(self, text: str) -> int:
        self._inner.write(redact(text))
        return len(text)

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)


def redact_stdio() -> None:
    """Redact what this process writes to stdout and stderr (tracebacks and prints included)."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, RedactingStream):
            setattr(sys, name, RedactingStream(stream))


def log_path(state_dir: str | Path, program: str) -> Path:
    return Path(state_dir) / "logs" / (program.replace(":", "-") + ".log")


def rotate_if_over(path: Path, max_bytes: int = MAX_BYTES, backups: int = BACKUPS) -> bool:
    """Roll `path` over to `path.1` (… `path.N`, the oldest dropped) when it is over `max_bytes`,
    as the .log files roll; True when it did. For files another process writes (a child's
    .stdio): the caller does it before the writer opens the file, never while it holds it."""
    try:
        if path.stat().st_size <= max_bytes:
            return False
    except FileNotFoundError:
        return False
    for i in range(backups - 1, 0, -1):
        older = path.with_name(f"{path.name}.{i}")
        if older.exists():
            os.replace(older, path.with_name(f"{path.name}.{i + 1}"))
    rolled = path.with_name(f"{path.name}.1")
    os.replace(path, rolled)
    os.chmod(rolled, 0o600)  # a file once made by hand with a looser mode is tightened too
    return True


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """Each new file (the first and every one after a rollover) is 0600."""

    def _open(self):  # type: ignore[no-untyped-def]
        stream = super()._open()
        os.chmod(self.baseFilename, 0o600)
        return stream


class KeyValueFormatter(logging.Formatter):
    def __init__(self, program: str, session: str | None) -> None:
        super().__init__()
        self.program = program
        self.session = session

    def format(self, record: logging.LogRecord) -> str:
        t = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        parts = [
            f"time={t}.{int(record.msecs):03d}Z",
            f"level={record.levelname.lower()}",
            f"program={self.program}",
        ]
        if self.session:
            parts.append(f"session={self.session}")
        parts.append(f"logger={record.name}")
        msg = record.getMessage()
        if "event=" not in msg:
            msg = f"event=log msg={msg!r}"
        parts.append(msg)
        line = " ".join(parts)
        if record.exc_info:
            line += " exc=" + repr(self.formatException(record.exc_info))
        return redact(line)


def setup(
    program: str,
    state_dir: str | Path | None,
    *,
    session: str | None = None,
    level: int = logging.INFO,
    stderr: bool = True,
    max_bytes: int = MAX_BYTES,
) -> None:
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    fmt = KeyValueFormatter(program, session)
    if state_dir is not None:
        path = log_path(state_dir, program)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fh = PrivateRotatingFileHandler(path, maxBytes=max_bytes, backupCount=BACKUPS)
        fh.setFormatter(fmt)
        root.addHandler(fh)
    if stderr:
        sh = logging.StreamHandler(sys.stderr)
        sh.setFormatter(fmt)
        root.addHandler(sh)
    root.setLevel(level)
    # httpx logs every URL at INFO, and a Telegram URL carries the token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
