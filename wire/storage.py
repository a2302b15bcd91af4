"""A database that can no longer be written: which SQLite errors mean that, and the one sentence.

The bot (bot.db) and every worker (session.db) keep their promise only while their SQLite file
takes writes. When it stops (disk full, I/O error, a read-only or corrupt file), the process
must not limp on looking healthy: it says so in one sentence, in its log and in its heartbeat
(`Pong.unhealthy`), and the supervisor restarts it. `StorageFailure` is that state: the first
sentence is kept (later errors are usually the same fault again). `execute` is the one way both
run a statement: a storage error is noted, logged with its fix and raised as the caller's own
error type, whose str() is that sentence. `sync_wal` makes every write so far survive a power
cut, for the writes that skip their own fsync to stay off a turn's path.

No I/O beyond naming the file and running the statement it is given; it must never hide an
error that is a bug (a constraint or a programming error is not a storage failure and is not
matched here: it is raised as it is).
"""
from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path
from typing import Any


def is_storage_error(exc: BaseException) -> bool:
    """True for the SQLite errors that mean the file cannot be written or read, not a bug."""
    if isinstance(exc, sqlite3.OperationalError | sqlite3.InternalError):
        return True
    # A bare DatabaseError is a corrupt or unreadable file; its subclasses (IntegrityError,
    # ProgrammingError, ...) are the program's own mistakes.
    return type(exc) is sqlite3.DatabaseError


def cause_and_fix(path: Path, exc: BaseException) -> tuple[str, str]:
    text = str(exc).lower()
    where = str(path.parent)
    if "full" in text:
        return "disk full", f"free space in {where}"
    if "readonly" in text or "read-only" in text:
        return "read-only", f"make {where} writable by this user"
    if "malformed" in text or "not a database" in text:
        return "the file is damaged", f"move {path} aside (a new one is made at the next start)"
    if "locked" in text or "busy" in text:
        return "locked by another process", f"stop the other process using {path}"
    if "i/o" in text or "disk" in text:
        return "I/O error", f"check the disk that holds {where}"
    return str(exc) or type(exc).__name__, f"check {path} and the disk that holds it"


def sentence(path: Path, exc: BaseException) -> str:
    """e.g. "bot.db could not be written (disk full): free space in /var/lib/switchboard"."""
    cause, fix = cause_and_fix(path, exc)
    return f"{path.name} could not be written ({cause}): {fix}."


class StorageFailure:
    """The first storage error of a process, as one sentence ("" while healthy)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.why = ""

    def note(self, exc: BaseException) -> str:
        """Remember this error (the first one wins); the sentence for it."""
        said = sentence(self.path, exc)
        if not self.why:
            self.why = said
        return said


def execute(db: sqlite3.Connection, failure: StorageFailure, error: type[Exception],
            log: logging.Logger, sql: str, args: Any = ()) -> sqlite3.Cursor:
    """Run one statement on `db`. A storage error is noted in `failure`, logged on `log` (an
    error the first time, a warning after) and raised as `error(sentence)`; any other error is
    raised as it is."""
    try:
        return db.execute(sql, args)
    except sqlite3.Error as exc:
        if not is_storage_error(exc):
            raise
        first = not failure.why
        said = failure.note(exc)
        (log.error if first else log.warning)(
            "event=storage_failed db=%s error=%r fix=%r", failure.path.name, str(exc), said)
        raise error(said) from exc


def sync_wal(path: Path, failure: StorageFailure, error: type[Exception],
             log: logging.Logger) -> None:
    """fsync the WAL of the database at `path`: every write committed so far survives a power
    cut (safe from a thread while the connection goes on). A failure is noted, logged and raised
    as `error(sentence)`, as `execute` does."""
    try:
        fd = os.open(f"{path}-wal", os.O_RDONLY)
    except FileNotFoundError:
        return  # nothing in a WAL: everything is in the database file already
    try:
        os.fsync(fd)
    except OSError as exc:
        said = failure.note(exc)
        log.error("event=storage_failed db=%s error=%r fix=%r", path.name, str(exc), said)
        raise error(said) from exc
    finally:
        os.close(fd)
