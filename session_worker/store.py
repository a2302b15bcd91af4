"""The session's durable state: `session.db` (SQLite, WAL) and `metadata.json`.

- inbox: every user message, stored before it is acknowledged, unique by the sender's key so a
  resend is recognised; a message is `queued`, then `running`, then `done` or `failed`. After a
  crash, `running` and `queued` rows are the unfinished work, in arrival order.
- outbox: every durable event, already encoded, under its sequence number; a reader asking for
  events after N gets exactly those.
- usage: one row per finished turn (cost, duration), so the session's cost survives restarts.
- kv: small facts such as the Claude session id.
- grants: the scoped "allow for this session" rules the user granted (session_worker.grants).

Only the session's own worker opens this file. Nothing here knows about sockets or the CLI.
A storage error (disk full, I/O) is never swallowed: it is logged with its fix, kept in
`failure` (the worker's heartbeat reports it, so the supervisor restarts the worker) and raised
as `StorageError`, whose str() is that one sentence.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wire import dbfiles, storage
from wire.files import atomic_write
from wire.storage import StorageFailure

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS inbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    chat_id INTEGER NOT NULL,
    text TEXT NOT NULL,
    message_id INTEGER,
    attachments TEXT NOT NULL DEFAULT '[]',
    state TEXT NOT NULL DEFAULT 'queued',
    attempts INTEGER NOT NULL DEFAULT 0,
    received REAL NOT NULL,
    finished REAL
);
CREATE INDEX IF NOT EXISTS inbox_open ON inbox(state) WHERE state IN ('queued', 'running');
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY,
    key TEXT NOT NULL DEFAULT '',
    frame BLOB NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS usage (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    cost_usd REAL NOT NULL,
    duration_ms INTEGER NOT NULL,
    num_turns INTEGER NOT NULL,
    finished REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v TEXT NOT NULL);
"""

# The user's "allow for this session" grants (session_worker.grants rules), durable across
# worker restarts and gone with the session's directory.
GRANTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS grants (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tool TEXT NOT NULL,
    spec TEXT NOT NULL,
    created REAL NOT NULL,
    UNIQUE (tool, spec)
);
"""

OPEN_STATES = ("queued", "running")
# What pruning keeps, whatever else: the newest events (a late replay from a bot whose bot.db was
# reset still gets them, and MAX(seq) stays last_seq) and the newest finished messages (their
# keys still recognise a resend). Usage rows are never pruned: they are the session's cost.
KEEP_EVENTS = 500
KEEP_FINISHED = 1000
KEEP_FINISHED_DAYS = 30.0
HORIZON_KEY = "replayed_after"  # kv: the highest seq the bot asked to replay after


@dataclass(frozen=True)
class InboxItem:
    id: int
    key: str
    chat_id: int
    text: str
    message_id: int | None
    attachments: list[str]
    state: str
    attempts: int
    images: tuple[str, ...] = ()  # photos among the attachments: sent as image content


class StorageError(Exception):
    """session.db could not be read or written; str() is the sentence with the fix."""


class _Guarded:
    """The connection, with every storage error noted in `failure`, logged and re-raised."""

    def __init__(self, db: sqlite3.Connection, failure: StorageFailure) -> None:
        self._conn = db
        self._failure = failure

    def execute(self, sql: str, args: Any = ()) -> sqlite3.Cursor:
        return storage.execute(self._conn, self._failure, StorageError, log, sql, args)

    def executescript(self, sql: str) -> None:
        self._conn.executescript(sql)

    def close(self) -> None:
        self._conn.close()


class Store:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.failure = StorageFailure(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        dbfiles.private_db(path)  # 0600 before SQLite makes -wal and -shm with its mode
        self._db = _Guarded(
            sqlite3.connect(str(path), isolation_level=None, check_same_thread=False),
            self.failure)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL survives a kill -9 of this process (the WAL is in the OS); a user message is
        # committed with FULL (fsync) before it is acknowledged, see add_turn.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(SCHEMA)
        self._db.executescript(GRANTS_SCHEMA)
        columns = {r[1] for r in self._db.execute("PRAGMA table_info(inbox)").fetchall()}
        if "images" not in columns:  # session.db files made before photos went as images
            self._db.execute("ALTER TABLE inbox ADD COLUMN images TEXT NOT NULL DEFAULT '[]'")
        dbfiles.tighten(path)
        row = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM outbox").fetchone()
        self.last_seq: int = int(row[0])

    def close(self) -> None:
        self._db.close()

    # ----------------------------------------------------------------------- inbox

    def add_turn(
        self,
        key: str,
        chat_id: int,
        text: str,
        message_id: int | None = None,
        attachments: list[str] | None = None,
        images: list[str] | None = None,
        *,
        durable: bool = True,
    ) -> bool:
        """Store a user message; False when the key is already there (a resend). With
        `durable=False` the write skips its fsync (it survives a kill -9 at once, a power cut
        only after `sync`): for a turn that should start before the disk has answered."""
        if durable:
            self._db.execute("PRAGMA synchronous=FULL")
        try:
            cur = self._db.execute(
                "INSERT OR IGNORE INTO inbox"
                " (key, chat_id, text, message_id, attachments, received, images)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key, chat_id, text, message_id, json.dumps(attachments or []), time.time(),
                 json.dumps(images or [])),
            )
        finally:
            self._db.execute("PRAGMA synchronous=NORMAL")
        return cur.rowcount == 1

    def sync(self) -> None:
        """fsync the WAL: every write so far survives a power cut (safe from a thread)."""
        storage.sync_wal(self.path, self.failure, StorageError, log)

    def next_open(self) -> InboxItem | None:
        row = self._db.execute(
            "SELECT id, key, chat_id, text, message_id, attachments, state, attempts, images"
            " FROM inbox"
            " WHERE state IN ('queued', 'running') ORDER BY id LIMIT 1"
        ).fetchone()
        return None if row is None else _item(row)

    def open_count(self, before: int | None = None) -> int:
        """Messages queued or running (`before`: only those that came before that row id)."""
        sql = "SELECT COUNT(*) FROM inbox WHERE state IN ('queued', 'running')"
        if before is None:
            row = self._db.execute(sql).fetchone()
        else:
            row = self._db.execute(sql + " AND id < ?", (before,)).fetchone()
        return int(row[0])

    def mark_running(self, item_id: int) -> int:
        """Mark a message as being answered; returns its attempt number (1 the first time)."""
        self._db.execute(
            "UPDATE inbox SET state='running', attempts=attempts+1 WHERE id=?", (item_id,)
        )
        row = self._db.execute("SELECT attempts FROM inbox WHERE id=?", (item_id,)).fetchone()
        return int(row[0])

    def mark_queued(self, item_id: int) -> None:
        self._db.execute("UPDATE inbox SET state='queued' WHERE id=?", (item_id,))

    def finish(self, item_id: int, ok: bool = True) -> None:
        self._db.execute(
            "UPDATE inbox SET state=?, finished=? WHERE id=?",
            ("done" if ok else "failed", time.time(), item_id),
        )

    def replace_text(self, key: str, text: str) -> str:
        """The user edited a message: 'replaced' when its turn has not started yet, 'unknown'
        when no row has that key, 'started' when it is running or over (left as it is)."""
        cur = self._db.execute(
            "UPDATE inbox SET text=? WHERE key=? AND state='queued' AND attempts=0", (text, key)
        )
        if cur.rowcount == 1:
            return "replaced"
        return "unknown" if self.item(key) is None else "started"

    def item(self, key: str) -> InboxItem | None:
        row = self._db.execute(
            "SELECT id, key, chat_id, text, message_id, attachments, state, attempts, images"
            " FROM inbox"
            " WHERE key=?",
            (key,),
        ).fetchone()
        return None if row is None else _item(row)

    # ----------------------------------------------------------------------- outbox

    def append(self, key: str, encode: Any) -> tuple[int, bytes]:
        """Give the next seq to `encode(seq) -> frame`, store the frame, return both."""
        seq = self.last_seq + 1
        frame: bytes = encode(seq)
        self._db.execute(
            "INSERT INTO outbox (seq, key, frame, created) VALUES (?, ?, ?, ?)",
            (seq, key, frame, time.time()),
        )
        self.last_seq = seq
        return seq, frame

    def events_after(self, after_seq: int, limit: int = 64) -> list[tuple[int, bytes]]:
        rows = self._db.execute(
            "SELECT seq, frame FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?", (after_seq, limit)
        ).fetchall()
        return [(int(s), bytes(f)) for s, f in rows]

    def iter_after(self, after_seq: int) -> Iterator[tuple[int, bytes]]:
        while True:
            rows = self.events_after(after_seq)
            if not rows:
                return
            yield from rows
            after_seq = rows[-1][0]

    # ----------------------------------------------------------------------- pruning

    def note_replayed_after(self, seq: int) -> int:
        """The bot asked for the events after `seq`: everything up to it was delivered. Returns
        the highest such seq ever asked (a lower, later ask never lowers it)."""
        known = int(self.get(HORIZON_KEY) or 0)
        if seq > known:  # written only when it moves: a repeated ask leaves the file alone
            self.put(HORIZON_KEY, str(seq))
        return max(seq, known)

    def prune(self, keep_events: int = KEEP_EVENTS, keep_finished: int = KEEP_FINISHED,
              keep_days: float = KEEP_FINISHED_DAYS) -> tuple[int, int]:
        """Delete delivered events (seq up to the replay horizon) but the newest `keep_events`,
        and finished messages beyond the newest `keep_finished` or older than `keep_days`; open
        messages and usage always stay. Returns (events, messages) deleted."""
        horizon = int(self.get(HORIZON_KEY) or 0)
        upto = min(horizon, self.last_seq - max(1, keep_events))
        events = self._db.execute("DELETE FROM outbox WHERE seq <= ?", (upto,)).rowcount
        cutoff = time.time() - keep_days * 86400
        turns = self._db.execute(
            "DELETE FROM inbox WHERE state IN ('done', 'failed') AND (finished < ? OR id <"
            " (SELECT MIN(id) FROM (SELECT id FROM inbox WHERE state IN ('done', 'failed')"
            " ORDER BY id DESC LIMIT ?)))",
            (cutoff, keep_finished),
        ).rowcount
        if events or turns:
            # Freed pages are reused by the next rows; the WAL goes back to nothing.
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return max(events, 0), max(turns, 0)

    # ----------------------------------------------------------------------- usage and kv

    def add_usage(self, key: str, cost_usd: float, duration_ms: int, num_turns: int) -> None:
        self._db.execute(
            "INSERT INTO usage (key, cost_usd, duration_ms, num_turns, finished)"
            " VALUES (?, ?, ?, ?, ?)",
            (key, cost_usd, duration_ms, num_turns, time.time()),
        )

    def total_cost(self) -> float:
        row = self._db.execute("SELECT COALESCE(SUM(cost_usd), 0) FROM usage").fetchone()
        return float(row[0])

    def get(self, k: str) -> str | None:
        row = self._db.execute("SELECT v FROM kv WHERE k=?", (k,)).fetchone()
        return None if row is None else str(row[0])

    def put(self, k: str, v: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)", (k, v))

    # ----------------------------------------------------------------------- grants

    def add_grant(self, tool: str, spec: str) -> int:
        """Store one grant (a known one keeps its id); its id."""
        self._db.execute(
            "INSERT OR IGNORE INTO grants (tool, spec, created) VALUES (?, ?, ?)",
            (tool, spec, time.time()),
        )
        row = self._db.execute(
            "SELECT id FROM grants WHERE tool=? AND spec=?", (tool, spec)
        ).fetchone()
        return int(row[0])

    def grants(self) -> list[tuple[int, str, str]]:
        """Every grant as (id, tool, spec), oldest first."""
        rows = self._db.execute("SELECT id, tool, spec FROM grants ORDER BY id").fetchall()
        return [(int(i), str(t), str(s)) for i, t, s in rows]

    def remove_grant(self, grant_id: int) -> bool:
        cur = self._db.execute("DELETE FROM grants WHERE id=?", (grant_id,))
        return cur.rowcount == 1


def _item(row: tuple[Any, ...]) -> InboxItem:
    try:
        attachments = [str(a) for a in json.loads(row[5])]
    except (ValueError, TypeError):
        attachments = []
    try:
        images = tuple(str(a) for a in json.loads(row[8])) if len(row) > 8 else ()
    except (ValueError, TypeError):
        images = ()
    return InboxItem(
        id=int(row[0]),
        key=str(row[1]),
        chat_id=int(row[2]),
        text=str(row[3]),
        message_id=row[4],
        attachments=attachments,
        state=str(row[6]),
        attempts=int(row[7]),
        images=images,
    )


# --------------------------------------------------------------------------- metadata.json


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """A reader sees the old or the new file, never half of one (wire.files.atomic_write)."""
    atomic_write(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
