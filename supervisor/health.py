"""What the supervisor knows of a live child beyond its state (heartbeat, stats, usage), and the
child's own last words from its .stdio file. Data and small readers: no loop, no process."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from supervisor.lifeline import last_sentence
from supervisor.watcher import Usage
from wire import messages as m
from wire.logs import redact


@dataclass
class Health:
    """What the supervisor knows about a live child beyond its state: heartbeat and usage."""

    last_seen: float = 0.0  # monotonic: spawn, Register or Pong
    registered: bool = False
    answered: bool = False  # registered or answered a Ping: past its start-up
    stats: m.WorkerStats | None = None
    stats_at: float = 0.0
    usage: Usage = field(default_factory=Usage)
    stdio_since: int = 0  # where this run's output starts in its .stdio file
    generation: int = 0  # the config generation its settings come from (see Supervisor.reload)


def stdio_size(stdio: Path) -> int:
    try:
        return stdio.stat().st_size
    except OSError:
        return 0


def last_words(stdio: Path, since: int = 0) -> str:
    """The one sentence a child printed last on stdout/stderr, if any: from the file's tail, and
    only what was written after offset `since` (the file is appended to by every run)."""
    try:
        with open(stdio, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(since, size - 4096))
            return redact(last_sentence(f.read().decode(errors="replace")))
    except OSError:
        return ""
