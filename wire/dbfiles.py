"""SQLite files private to their owner: the database and its side files (-wal, -shm, -journal).

SQLite creates the side files with the mode of the database file, so a database that exists
0600 before the first connect gets 0600 side files; `private_db` makes it so, and `tighten`
fixes a file (and side files) made looser by an older version. Every role's SQLite file goes
through these before `sqlite3.connect`. Never opens the database itself.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

SIDE_SUFFIXES = ("-wal", "-shm", "-journal")
MODE = 0o600


def side_files(path: Path) -> list[Path]:
    return [path.with_name(path.name + s) for s in SIDE_SUFFIXES]


def tighten(path: Path) -> None:
    """chmod 0600 the database and each side file that exists and is ours (a symlink is left)."""
    for p in (path, *side_files(path)):
        try:
            st = os.lstat(p)
        except FileNotFoundError:
            continue
        if stat.S_ISREG(st.st_mode) and st.st_uid == os.getuid() and st.st_mode & 0o777 != MODE:
            os.chmod(p, MODE)


def private_db(path: Path) -> None:
    """Create the database file 0600 if it does not exist yet, then tighten what is there."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, MODE))
    except FileExistsError:
        pass
    tighten(path)
