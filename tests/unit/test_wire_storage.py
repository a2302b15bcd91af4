"""wire.storage: which SQLite errors are storage failures, the one sentence with the fix, and
the one statement runner the bot's journal and the worker's store share."""
from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from wire.storage import StorageFailure, execute, is_storage_error, sentence

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


class Refused(Exception):
    """The caller's own storage error type."""


def test_execute_raises_a_storage_error_as_the_callers_type_and_logs_it_once_as_an_error(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "session.db"
    db = sqlite3.connect(path, isolation_level=None)
    failure = StorageFailure(path)
    log = logging.getLogger("test.storage")
    execute(db, failure, Refused, log, "CREATE TABLE k (v TEXT PRIMARY KEY)")
    execute(db, failure, Refused, log, "CREATE TABLE t (v TEXT)")
    execute(db, failure, Refused, log, "INSERT INTO k VALUES (?)", ("a",))
    with pytest.raises(sqlite3.IntegrityError):  # a bug is not a storage failure
        execute(db, failure, Refused, log, "INSERT INTO k VALUES (?)", ("a",))
    assert failure.why == ""
    execute(db, failure, Refused, log, "PRAGMA max_page_count = 4")
    with caplog.at_level(logging.WARNING, logger="test.storage"):
        for _ in range(2):
            with pytest.raises(Refused) as err:
                for _ in range(100):
                    execute(db, failure, Refused, log, "INSERT INTO t VALUES (?)", ("x" * 2000,))
            assert str(err.value) == failure.why
            assert isinstance(err.value.__cause__, sqlite3.OperationalError)
    assert failure.why.startswith("session.db could not be written (disk full)")
    assert [r.levelname for r in caplog.records] == ["ERROR", "WARNING"]
    assert all("event=storage_failed db=session.db" in r.getMessage() for r in caplog.records)
    db.close()
