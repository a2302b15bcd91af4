"""Where a program named in the config is: one lookup for `run`, `doctor`, `init` and the worker.

A name with a '/' is a path (already made absolute by the config, relative to its file); any
other name is looked up on PATH the way a shell would. This module only looks: it never runs
what it finds.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

# [claude] binary when the config does not say: the Claude Code CLI found on PATH.
DEFAULT_CLAUDE_BINARY = "claude"


def is_path(binary: str) -> bool:
    """A value naming a file (looked at as it is), not a command (looked up on PATH)."""
    return "/" in binary


def find_binary(binary: str, path: str | None = None) -> str | None:
    """The absolute path of the executable `binary` names, or None when there is none.

    `path` is the PATH to search (the environment the program will run in); None means ours.
    """
    if is_path(binary):
        p = Path(binary).expanduser()
        return os.path.abspath(p) if p.is_file() and os.access(p, os.X_OK) else None
    found = shutil.which(binary, path=path)
    return os.path.abspath(found) if found else None
