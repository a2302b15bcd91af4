"""wire.storage: which SQLite errors are storage failures, and the one sentence with the fix."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from wire.storage import StorageFailure, is_storage_error, sentence

DB = Path("/srv/sb/state/bot.db")


@pytest.mark.parametrize(("exc", "storage"), [
    (sqlite3.OperationalError("database or disk is full"), True),
    (sqlite3.OperationalError("disk I/O error"), True),
    (sqlite3.OperationalError("attempt to write a readonly database"), True),
    (sqlite3.DatabaseError("database disk image is malformed"), True),
    (sqlite3.InternalError("unknown"), True),
    (sqlite3.IntegrityError("UNIQUE constraint failed"), False),  # a bug, not the disk
    (sqlite3.ProgrammingError("Cannot operate on a closed database."), False),
    (ValueError("x"), False),
])
def test_storage_errors_are_told_from_bugs(exc: BaseException, storage: bool) -> None:
    assert is_storage_error(exc) is storage


@pytest.mark.parametrize(("error", "expected"), [
    ("database or disk is full",
     "bot.db could not be written (disk full): free space in /srv/sb/state."),
    ("disk I/O error",
     "bot.db could not be written (I/O error): check the disk that holds /srv/sb/state."),
    ("attempt to write a readonly database",
     "bot.db could not be written (read-only): make /srv/sb/state writable by this user."),
    ("database disk image is malformed",
     "bot.db could not be written (the file is damaged): move /srv/sb/state/bot.db aside"
     " (a new one is made at the next start)."),
])
def test_the_sentence_names_the_problem_and_the_fix(error: str, expected: str) -> None:
    assert sentence(DB, sqlite3.OperationalError(error)) == expected


def test_the_first_failure_is_the_one_reported() -> None:
    f = StorageFailure(DB)
    assert f.why == ""
    f.note(sqlite3.OperationalError("database or disk is full"))
    f.note(sqlite3.OperationalError("disk I/O error"))
    assert "disk full" in f.why


def test_a_real_full_database_is_a_storage_failure(tmp_path: Path) -> None:
    """SQLite's own SQLITE_FULL, from a database that may not grow (max_page_count)."""
    db = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
    db.execute("CREATE TABLE t (v TEXT)")
    db.execute("PRAGMA max_page_count = 3")
    with pytest.raises(sqlite3.Error) as err:
        for _ in range(100):
            db.execute("INSERT INTO t VALUES (?)", ("x" * 2000,))
    assert is_storage_error(err.value)
    assert "disk full" in sentence(tmp_path / "x.db", err.value)
    db.close()
