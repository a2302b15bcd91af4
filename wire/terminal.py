"""Terminal handoff, the pure part: the command that continues a session at a terminal, and how a
Claude CLI that holds a Claude session id is recognised by its command line.

`resume_command` is what `/handoff` and `switchboardctl attach` print: `cd DIR && claude --resume
ID`, with `CLAUDE_CONFIG_DIR=...` in front only when the session's CLI keeps its conversations
somewhere other than the default `~/.claude` (otherwise a plain `claude` at the terminal finds
the same conversation and the line stays short). `resumes` tells whether an argv resumes a given
id (`--resume ID`, `--resume=ID`, `-r ID`): a CLI the user runs outside Switchboard, which a
session must wait for instead of resuming a second CLI on the same id.

Pure: no I/O, no environment read here; callers pass what they know.
"""
from __future__ import annotations

import os
import shlex
from collections.abc import Mapping, Sequence

CONFIG_DIR_ENV = "CLAUDE_CONFIG_DIR"
RESUME_FLAGS = ("--resume", "-r")


def config_dir(env: Mapping[str, str], home: str) -> str:
    """Where a CLI run with `env` keeps its conversations: $CLAUDE_CONFIG_DIR, else
    $HOME/.claude (`home` when the environment has no HOME)."""
    explicit = env.get(CONFIG_DIR_ENV)
    if explicit:
        return os.path.normpath(explicit)
    return os.path.join(env.get("HOME") or home, ".claude")


def resume_command(cwd: str, session_id: str, binary: str, env: Mapping[str, str],
                   home: str) -> str:
    """`cd CWD && [CLAUDE_CONFIG_DIR=...] BINARY --resume ID`, every part shell-quoted.

    `env` is the session CLI's environment, `home` the user's own home directory (what a
    terminal's `claude` would use): the config dir is named only when the two differ."""
    parts = [f"cd {shlex.quote(cwd)} &&"]
    used = config_dir(env, home)
    if used != config_dir({}, home):
        parts.append(f"{CONFIG_DIR_ENV}={shlex.quote(used)}")
    parts += [shlex.quote(binary), "--resume", shlex.quote(session_id)]
    return " ".join(parts)


def resumes(cmdline: Sequence[str], session_id: str) -> bool:
    """Whether this argv resumes `session_id` (`--resume ID`, `--resume=ID`, `-r ID`, `-rID`)."""
    if not session_id:
        return False
    for i, arg in enumerate(cmdline):
        if arg in RESUME_FLAGS and i + 1 < len(cmdline) and cmdline[i + 1] == session_id:
            return True
        if arg in (f"--resume={session_id}", f"-r{session_id}", f"-r={session_id}"):
            return True
    return False
