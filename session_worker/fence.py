"""The fence around a session's tools: the `--settings` JSON that turns on Claude Code's sandbox.

Switchboard's controls and secrets are its config file, the env file beside it (the bot token),
its state dir (every session's conversation, the bot's journal, the logs) and its runtime dir
(the control, chat and events sockets). A sandboxed session's Bash commands, and everything they
start, run under bubblewrap with those paths unreadable and unwritable, unix sockets blocked (the
Linux default, so `allowAllUnixSockets` is never set) and no way out of the sandbox
(`allowUnsandboxedCommands: false`, `failIfUnavailable: true`). The session's own work dir stays
readable and writable (a project's directory, or its git worktree under the state dir, whose
repository's shared .git dir is writable too so that a commit works: `writable`). Claude's own
file tools are not under bubblewrap, so the same paths are denied to them with permission rules
in the same JSON (Read may still reach the `readable` dirs, Edit and Write only the work dir).

Pure: it builds values from paths and never looks at the disk. It must never widen what a
session may do beyond its own directories: no `autoAllowBashIfSandboxed` (the owner still
approves every command), no allowed domains, no allow rules, and an `allowWrite` only for the
`writable` dirs the supervisor named (never inside the state or runtime dir).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

# Claude's tools that read or change files: Read rules cover Grep and Glob too, Edit rules every
# editing tool; Write is named as well so that no version's reading of the rules leaves it out.
FILE_TOOLS = ("Read", "Edit", "Write")


@dataclass(frozen=True)
class Fence:
    """What a session's tools must not reach, and the one place inside it they may."""

    state_dir: str
    runtime_dir: str
    work_dir: str
    config_file: str | None = None
    env_file: str | None = None
    # The sessions in the state dir when the CLI starts: a later one is covered by the sandbox
    # for Bash at once, and by the tools' rules from this session's next CLI start.
    sessions: tuple[str, ...] = ()
    # More directories its Bash may write (a worktree's shared .git dir), never inside the
    # state or runtime dir.
    writable: tuple[str, ...] = ()
    # Its own files in the state dir that its tools may read though its work dir lies elsewhere
    # (the chat's uploads of a session in a project).
    readable: tuple[str, ...] = ()


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _spellings(path: str) -> list[str]:
    """The path as given and as the kernel resolves it: a link must not be a way around."""
    absolute = os.path.abspath(path)
    real = os.path.realpath(absolute)
    return [absolute] if real == absolute else [absolute, real]


# Switchboard's own files in the state dir and in each session's dir (ARCHITECTURE.md, "On
# disk"), for the tools' rules when the work dir lies inside the state dir. Claude's rule
# patterns have no "all but" (a bracket class like `[!w]*` is not a negation there and denied
# the work dir itself), so the files are named and other sessions are listed one by one. Every
# file Switchboard keeps there has a dot in its name (bot.db, sessions.json, supervisor.lock,
# metadata.json, session.db-wal, ...) and no dir on the way to a work dir has one (session
# names cannot), so `*.*` names them all, a later one too.
STATE_FILES = ("*.*", "logs", "logs/**")
SESSION_FILES = ("*.*", "stop-by-user")


def _denied_beside(state: str, keep: list[str], others: tuple[str, ...]) -> list[str]:
    """Rule paths for Switchboard's files under `state` and the other sessions' dirs, leaving
    the `keep` dirs (inside `state`: a work dir, the uploads of a session working elsewhere)
    open."""
    root = state.rstrip("/")
    out = [f"{root}/{g}" for g in STATE_FILES]
    out += [f"{root}/sessions/*/{g}" for g in SESSION_FILES]
    kept = [os.path.relpath(k, root).split("/") for k in keep]
    for name in others:
        if not any(k[:2] == ["sessions", name] for k in kept):
            out += [f"{root}/sessions/{name}", f"{root}/sessions/{name}/**"]
        if not any(k[:1] == ["worktrees"] and k[2:3] == [name] for k in kept):  # a worktree
            out += [f"{root}/worktrees/*/{name}", f"{root}/worktrees/*/{name}/**"]
    return out


def _rule_path(path: str) -> str:
    """An absolute path in a permission rule starts with `//` (`/x` is relative to a settings
    file)."""
    return "/" + path


def _denied_paths(fence: Fence, opened: list[str]) -> list[str]:
    """The fenced paths, leaving the `opened` dirs (and what holds them) open."""
    paths: list[str] = []
    for f in (fence.config_file, fence.env_file):
        if f:
            paths += _spellings(f)
    for spelling in _spellings(fence.runtime_dir):
        paths += [spelling, f"{spelling}/**"]
    for spelling in _spellings(fence.state_dir):
        keep = [w for w in opened if _inside(w, spelling)]
        if not keep:
            paths += [spelling, f"{spelling}/**"]
        else:
            paths += _denied_beside(spelling, keep, fence.sessions)
    return list(dict.fromkeys(paths))


def tool_rules(fence: Fence) -> list[str]:
    """The permission deny rules for Claude's own file tools, covering the fenced paths.

    Reading may reach the work dir and the `readable` dirs; editing and writing only the work
    dir, so a session working outside the state dir may change nothing in it."""
    work = _spellings(os.path.abspath(fence.work_dir))
    read = _denied_paths(fence, work + [r for d in fence.readable for r in _spellings(d)])
    edit = _denied_paths(fence, work)
    return [f"{tool}({_rule_path(p)})" for tool in FILE_TOOLS
            for p in (read if tool == "Read" else edit)]


def sandbox_settings(fence: Fence) -> dict[str, object]:
    """The settings object: the sandbox on, the fenced paths denied, the tools' deny rules."""
    work = os.path.abspath(fence.work_dir)
    files = [s for f in (fence.config_file, fence.env_file) if f for s in _spellings(f)]
    dirs = [s for d in (fence.state_dir, fence.runtime_dir) for s in _spellings(d)]
    deny_read = list(dict.fromkeys(files + dirs))
    # A denyWrite beats every allowWrite, the work dir's too: a dir that holds the work dir is
    # left to the sandbox's default (writes only in the work dir and the session's temp dir).
    deny_write = [p for p in deny_read
                  if not (_inside(work, p) or _inside(os.path.realpath(work), p))]
    filesystem: dict[str, object] = {"denyRead": deny_read, "denyWrite": deny_write}
    reopen = _spellings(work) if len(deny_write) < len(deny_read) else []
    reopen += [r for d in fence.readable for r in _spellings(d)
               if any(_inside(r, p) for p in deny_read)]
    if reopen:  # re-opens the work dir (or its uploads) inside the state dir
        filesystem["allowRead"] = list(dict.fromkeys(reopen))
    writable = [s for d in fence.writable for s in _spellings(d)
                if not any(_inside(s, p) for p in dirs + files)]
    if writable:
        filesystem["allowWrite"] = list(dict.fromkeys(writable))
    return {
        "sandbox": {
            "enabled": True,
            "failIfUnavailable": True,
            "allowUnsandboxedCommands": False,
            "filesystem": filesystem,
        },
        "permissions": {"deny": tool_rules(fence)},
    }


def settings_arg(fence: Fence) -> str:
    """The `--settings` value (compact JSON)."""
    return json.dumps(sandbox_settings(fence), separators=(",", ":"))
