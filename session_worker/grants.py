"""Scoped "allow for this session" grants, with the meaning of Claude Code's permission rules.

A grant is a `Rule`: `Bash(npm test:*)` (a command prefix, word by word), `Edit(/abs/file)`
(one file, for Edit, Write, MultiEdit and NotebookEdit alike), `WebFetch(domain:host)` (one
host, exactly), or a bare tool name for any other tool. `rule_for` proposes the rule a prompt's
button offers; `allowed` says whether the session's grants cover a request.

A Bash command is judged by each of its parts (split at `&&`, `||`, `;`, `|`, `&` and newlines
outside quotes): every part must match a grant. A part that substitutes a command (`$(...)`,
backticks, `<(...)`) or that the shell would read differently than we do (an unclosed quote)
never matches, so it always prompts. Paths are made absolute against the session's cwd and
normalised (`..` removed) before they are compared.

Pure: no I/O, no clock. It must never let a request through that a grant does not cover word for
word; when in doubt it answers "not covered" and the user is asked.
"""
from __future__ import annotations

import posixpath
import shlex
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

EDIT_TOOLS = frozenset({"Edit", "Write", "MultiEdit", "NotebookEdit"})
_PATH_KEYS = ("file_path", "notebook_path")

# Tools whose second word is the real command (`git status`, `npm test`, `cargo build`).
MULTI_WORD = frozenset({
    "git", "npm", "pnpm", "yarn", "bun", "npx", "cargo", "go", "docker", "podman", "kubectl",
    "pip", "pip3", "uv", "poetry", "gh", "dotnet", "mvn", "gradle", "terraform", "systemctl",
    "brew", "apt", "apt-get", "make", "just", "deno", "rustup", "helm",
})
# Commands that run whatever follows them: a grant for `sudo` or `sh` would be a grant for all.
NO_GRANT = frozenset({
    "sh", "bash", "zsh", "dash", "fish", "eval", "exec", "sudo", "doas", "su", "env", "xargs",
    "source", ".", "command", "builtin", "nohup", "time", "timeout", "nice", "ionice", "watch",
    "python", "python3", "node", "perl", "ruby", "php", "busybox", "find", "awk", "ssh",
})
_SEPARATORS = ("&&", "||", "|&", ";", "|", "&", "\n")
_UNMATCHABLE = "\x00"  # a part we cannot judge; no grant's words ever equal it


@dataclass(frozen=True)
class Rule:
    """One grant: `tool` and its `spec` (a command prefix, an absolute path, a host, or "")."""

    tool: str
    spec: str = ""

    @property
    def text(self) -> str:
        """The rule in Claude Code's own notation."""
        if self.tool == "Bash":
            return f"Bash({self.spec}:*)"
        if self.tool == "WebFetch":
            return f"WebFetch(domain:{self.spec})"
        return f"{self.tool}({self.spec})" if self.spec else self.tool

    @property
    def label(self) -> str:
        """What the grant covers, for a button: "`npm test` commands"."""
        if self.tool == "Bash":
            return f"`{self.spec}` commands"
        if self.tool == "Edit":
            return f"edits of {posixpath.basename(self.spec.rstrip('/')) or self.spec}"
        if self.tool == "WebFetch":
            return f"fetches from {self.spec}"
        return f"every {self.tool} call"


# --------------------------------------------------------------------------- Bash


def split_command(command: str) -> list[str]:
    """The parts of a shell command line, each stripped; a part we cannot judge is
    `_UNMATCHABLE` (a command substitution, a process substitution, an unclosed quote)."""
    parts: list[str] = []
    cur: list[str] = []
    bad = False
    quote = ""
    i = 0
    n = len(command)
    while i < n:
        ch = command[i]
        if quote == "'":
            cur.append(ch)
            if ch == "'":
                quote = ""
            i += 1
            continue
        if ch == "\\" and i + 1 < n:
            cur.append(command[i:i + 2])
            i += 2
            continue
        if ch == "`" or (ch == "$" and command[i + 1:i + 2] == "(") or (
                ch in "<>" and command[i + 1:i + 2] == "("):
            bad = True  # the shell runs another command here, inside quotes or not
        if quote == '"':
            cur.append(ch)
            if ch == '"':
                quote = ""
            i += 1
            continue
        if ch in "'\"":
            quote = ch
            cur.append(ch)
            i += 1
            continue
        sep = next((s for s in _SEPARATORS if command.startswith(s, i)), None)
        if sep is not None:
            parts.append(_UNMATCHABLE if bad else "".join(cur).strip())
            cur, bad = [], False
            i += len(sep)
            continue
        cur.append(ch)
        i += 1
    if quote:
        bad = True
    parts.append(_UNMATCHABLE if bad else "".join(cur).strip())
    return [p for p in parts if p]


def _words(part: str) -> list[str] | None:
    if part == _UNMATCHABLE:
        return None
    try:
        return shlex.split(part, comments=False, posix=True)
    except ValueError:
        return None


def command_prefix(part: str) -> str | None:
    """The prefix a grant for this one part would name: its first word, or its first two for
    the tools in MULTI_WORD; None when no safe prefix exists."""
    words = _words(part)
    if not words:
        return None
    first = words[0]
    if first in NO_GRANT or "=" in first or first.startswith(("(", "{", "-")) or first in (
            "!", "[", "[["):
        return None
    if first in MULTI_WORD and len(words) > 1 and not words[1].startswith("-"):
        return f"{first} {words[1]}"
    return first


def _part_matches(part: str, prefix: str) -> bool:
    words = _words(part)
    want = prefix.split(" ")
    return words is not None and words[:len(want)] == want


# --------------------------------------------------------------------------- paths, hosts


def normal_path(path: str, cwd: str) -> str:
    """Absolute and without `.`/`..` (no symlinks resolved: this module touches no disk)."""
    return posixpath.normpath(posixpath.join(cwd, path))


def host_of(url: str) -> str | None:
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not host:
        return None
    return host.lower().rstrip(".")


def _str(tool_input: dict[str, Any], *keys: str) -> str | None:
    for key in keys:
        v = tool_input.get(key)
        if isinstance(v, str) and v:
            return v
    return None


# --------------------------------------------------------------------------- rules


def rule_for(tool: str, tool_input: dict[str, Any], cwd: str) -> Rule | None:
    """The grant an "allow for this session" button offers for this request; None when no
    grant narrower than "everything" would cover it."""
    if tool == "Bash":
        command = _str(tool_input, "command")
        if command is None:
            return None
        prefixes = {command_prefix(p) for p in split_command(command)}
        if len(prefixes) != 1 or None in prefixes:
            return None  # parts of different kinds: each needs its own decision
        prefix = prefixes.pop()
        return None if prefix is None else Rule("Bash", prefix)
    if tool in EDIT_TOOLS:
        path = _str(tool_input, *_PATH_KEYS)
        return None if path is None else Rule("Edit", normal_path(path, cwd))
    if tool == "WebFetch":
        url = _str(tool_input, "url")
        host = None if url is None else host_of(url)
        return None if host is None else Rule("WebFetch", host)
    return Rule(tool)


def allowed(rules: list[Rule], tool: str, tool_input: dict[str, Any], cwd: str) -> bool:
    """Whether the session's grants cover this request (a Bash command: every part of it)."""
    if tool == "Bash":
        command = _str(tool_input, "command")
        if command is None:
            return False
        parts = split_command(command)
        prefixes = [r.spec for r in rules if r.tool == "Bash"]
        return bool(parts) and all(any(_part_matches(p, pre) for pre in prefixes)
                                   for p in parts)
    if tool in EDIT_TOOLS:
        path = _str(tool_input, *_PATH_KEYS)
        if path is None:
            return False
        want = normal_path(path, cwd)
        for r in rules:
            if r.tool != "Edit":
                continue
            if want == r.spec or (r.spec.endswith("/") and want.startswith(r.spec)):
                return True
        return False
    if tool == "WebFetch":
        url = _str(tool_input, "url")
        host = None if url is None else host_of(url)
        return host is not None and any(r.tool == "WebFetch" and r.spec == host for r in rules)
    return any(r.tool == tool and not r.spec for r in rules)
