"""Where a file sent from the chat is written: `<session>/work/uploads/<name>`, never elsewhere.

The session's tools run as the same user and can plant a symbolic link at `work`,
`work/uploads` or the file's own name, aimed at a file of the user's (`~/.bashrc`) or of
Switchboard's. So the path is walked one directory at a time from the session's folder with
O_NOFOLLOW, and the file is created with O_EXCL (which never follows a link): a link anywhere
on the way is refused with `LinkRefused`, and nothing is written. Never follows a link and never
writes outside the session's folder.
"""
from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

PARTS = ("work", "uploads")


class LinkRefused(Exception):
    """A symbolic link (or a non-directory) where the upload path needs a real folder or file;
    str() names which one."""


def _open_dir(name: str, parent_fd: int, shown: str) -> int:
    try:
        os.mkdir(name, 0o700, dir_fd=parent_fd)
    except FileExistsError:
        pass
    try:
        return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise LinkRefused(shown) from None
        raise


def _create(name: str, dir_fd: int, shown: str) -> int:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        return os.open(name, flags, 0o600, dir_fd=dir_fd)
    except FileExistsError:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if not stat.S_ISREG(st.st_mode):
            raise LinkRefused(shown) from None
        os.unlink(name, dir_fd=dir_fd)  # the same message again (a redelivered update)
        return os.open(name, flags, 0o600, dir_fd=dir_fd)


def save_upload(session_dir: Path, name: str, data: bytes) -> Path:
    """Write `data` to `<session_dir>/work/uploads/<name>` (a plain file name, 0600); the path.

    Raises LinkRefused for a link on the way, OSError for a disk that refuses."""
    if not name or "/" in name or name in (".", ".."):
        raise ValueError(f"not a plain file name: {name!r}")
    fd = os.open(session_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        shown = ""
        for part in PARTS:
            shown = f"{shown}/{part}" if shown else part
            next_fd = _open_dir(part, fd, shown)
            os.close(fd)
            fd = next_fd
        out = _create(name, fd, f"{shown}/{name}")
    finally:
        os.close(fd)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(out, view):]
    finally:
        os.close(out)
    return session_dir.joinpath(*PARTS, name)
