"""Which file a session may send to its chat: the one judge for Claude's send_file tool and /get.

`judge(path, base, roots)` resolves `path` (relative to `base`, the session's working dir),
follows every link to the real file, and accepts it only if that real file lies inside one of
`roots` (the working dir and the uploads dir, themselves resolved), is a regular file, and fits
Telegram's 50 MB upload limit for bots. What it refuses comes back as one sentence that names the
problem and the fix; Claude reads it as the tool's error, the owner reads it in the chat.
Images up to Telegram's 10 MB photo limit go as photos, everything else as a document.

It must never accept a path whose real file is outside the roots (a link out of them included)
and never read a file's content.
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

MAX_UPLOAD = 50 * 1024 * 1024  # Telegram: files a bot sends, sendDocument
MAX_PHOTO = 10 * 1024 * 1024  # Telegram: sendPhoto
PHOTO_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp"})


@dataclass(frozen=True)
class Outgoing:
    """A file the session may send: its real path, the name shown, its size, photo or not."""

    path: str
    name: str
    size: int
    photo: bool


@dataclass(frozen=True)
class Refused:
    sentence: str


def _inside(real: str, roots: list[str]) -> bool:
    return any(real == r or real.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def judge(path: str, base: Path, roots: list[Path]) -> Outgoing | Refused:
    """Whether `path` (absolute, or relative to `base`) may be sent; see the module doc."""
    shown = path.strip()
    if not shown:
        return Refused("No path was given: name the file, relative to the working directory.")
    if "\0" in shown:
        return Refused("That path holds a NUL character: name the file plainly.")
    full = Path(os.path.expanduser(shown))
    if not full.is_absolute():
        full = base / full
    real_roots = [os.path.realpath(r) for r in roots]
    lexical = os.path.normpath(str(full))
    real = os.path.realpath(lexical)
    if not _inside(real, real_roots):
        if _inside(lexical, real_roots) or _inside(lexical, [str(r) for r in roots]):
            return Refused(f"{shown} is a link to a place outside this session's folders: only"
                           " files inside its working directory and uploads can be sent.")
        return Refused(f"{shown} is outside this session's folders: only files inside its"
                       " working directory and uploads can be sent.")
    try:
        st = os.stat(real)
    except FileNotFoundError:
        return Refused(f"There is no file {shown}: check the path (relative to the working"
                       " directory).")
    except OSError as exc:
        return Refused(f"{shown} cannot be read ({exc.strerror}): check its permissions.")
    if stat.S_ISDIR(st.st_mode):
        return Refused(f"{shown} is a directory, not a file: send one file (pack a folder into"
                       " an archive first).")
    if not stat.S_ISREG(st.st_mode):
        return Refused(f"{shown} is not a regular file: only plain files can be sent.")
    if not os.access(real, os.R_OK):
        return Refused(f"{shown} cannot be read: check its permissions.")
    if st.st_size == 0:
        return Refused(f"{shown} is empty, and Telegram takes no empty files: write something"
                       " into it first.")
    if st.st_size > MAX_UPLOAD:
        mb = st.st_size / (1024 * 1024)
        return Refused(f"{shown} is {mb:.1f} MB, over Telegram's 50 MB limit for files a bot"
                       " sends: compress or split it first.")
    name = os.path.basename(real)
    photo = Path(name).suffix.lower() in PHOTO_SUFFIXES and st.st_size <= MAX_PHOTO
    return Outgoing(path=real, name=name, size=st.st_size, photo=photo)
