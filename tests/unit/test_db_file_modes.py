"""Every SQLite file of Switchboard and its side files (-wal, -shm) are 0600, whatever the umask."""
from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot.journal import Journal
from session_worker.store import Store
from wire import dbfiles


@pytest.fixture
def loose_umask() -> Iterator[None]:
    old = os.umask(0o022)  # a login shell's: files 0644 unless we say otherwise
    try:
        yield
    finally:
        os.umask(old)


def modes(db: Path) -> dict[str, str]:
    return {p.name: oct(stat.S_IMODE(os.lstat(p).st_mode))
            for p in (db, *dbfiles.side_files(db)) if p.exists()}


OPENERS: list[tuple[str, Callable[[Path], object]]] = [
    ("session.db", lambda p: Store(p)),
    ("bot.db", lambda p: Journal(p)),
]


@pytest.mark.parametrize("name, opener", OPENERS)
def test_a_new_database_and_its_wal_and_shm_are_0600(
        tmp_path: Path, loose_umask: None, name: str, opener: Callable[[Path], object]) -> None:
    db = tmp_path / name
    handle = opener(db)
    try:
        found = modes(db)
        assert {f"{name}-wal", f"{name}-shm"} <= set(found), found  # WAL mode made them
        assert set(found.values()) == {"0o600"}, found
    finally:
        handle.close()  # type: ignore[attr-defined]


@pytest.mark.parametrize("name, opener", OPENERS)
def test_an_older_loose_database_is_tightened(
        tmp_path: Path, loose_umask: None, name: str, opener: Callable[[Path], object]) -> None:
    db = tmp_path / name
    opener(db).close()  # type: ignore[attr-defined]
    for p in (db, *dbfiles.side_files(db)):
        if p.exists():
            p.chmod(0o644)
    handle = opener(db)
    try:
        assert set(modes(db).values()) == {"0o600"}, modes(db)
    finally:
        handle.close()  # type: ignore[attr-defined]


def test_a_symlinked_side_file_is_not_chmodded_through(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("x")
    target.chmod(0o644)
    db = tmp_path / "x.db"
    (tmp_path / "x.db-wal").symlink_to(target)
    dbfiles.private_db(db)
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
