"""Personas: personas/*.json loaded into wire.messages.Persona, refused whole if one is wrong.

An invalid file is an error at load naming the file and the field, never a half-loaded set.
A `default` persona (Claude Code as it comes) always exists unless a file overrides it.

Each `allowed_tools`/`disallowed_tools` entry becomes a word of the CLI's argv, so it must be a
tool name (`Bash`, `mcp__x__y`) with at most one specifier in parentheses (`Bash(git status:*)`):
an entry starting with `-` would be read as a flag (`--dangerously-skip-permissions`), and one with
other whitespace or control characters is not a tool name either; both are refused at load.
"""
from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path

import msgspec

from supervisor.config import Config, ConfigError
from wire.messages import Persona
from wire.settings import DEFAULT_PERSONA

DEFAULT = Persona(name=DEFAULT_PERSONA, description="Claude Code with its own defaults")
_PERMISSION_MODES = {"default", "acceptEdits", "bypassPermissions", "plan", "dontAsk"}
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# A name, then an optional specifier that may hold plain spaces (`Bash(git status:*)`).
_TOOL_RE = re.compile(r"[A-Za-z0-9_*][A-Za-z0-9_.*:-]*(\(.*\))?")
TOOL_FIELDS = ("allowed_tools", "disallowed_tools")


def tool_problem(tool: str) -> str | None:
    """Why `tool` is not a tool rule for the CLI's argv, or None when it is one (pure)."""
    if tool.startswith("-"):
        return "starts with '-', so the CLI would read it as an option"
    bad = [c for c in tool if (c.isspace() and c != " ") or unicodedata.category(c) in ("Cc", "Cf")]
    if bad:
        return f"holds the control or whitespace character {bad[0]!r}"
    if not _TOOL_RE.fullmatch(tool):
        return "is not a tool name like Bash, mcp__server__tool or Bash(git status:*)"
    return None


class PersonaError(ValueError):
    """One or more persona files are invalid; str() names each file and field."""


def _field_of(exc: msgspec.ValidationError) -> str:
    m = re.search(r"at `\$\.?([^`]*)`", str(exc))
    return m.group(1) if m else ""


def load_file(path: Path) -> Persona:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PersonaError(f"{path}: cannot read it ({exc.strerror})") from None
    try:
        json.loads(raw)
    except ValueError as exc:
        raise PersonaError(f"{path}: not valid JSON ({exc})") from None
    try:
        persona = msgspec.json.decode(raw, type=Persona)
    except msgspec.ValidationError as exc:
        field = _field_of(exc)
        if field == "sandbox":
            raise PersonaError(f"{path}: field 'sandbox' must be true or false (leave it out to"
                               " have it on where bubblewrap and socat are installed)") from None
        where = f" field '{field}'" if field else ""
        raise PersonaError(f"{path}:{where} {exc}") from None
    if not _NAME_RE.fullmatch(persona.name):
        raise PersonaError(f"{path}: field 'name' must be 1-64 letters, digits, '-', '_' or '.'")
    if persona.permission_mode not in _PERMISSION_MODES:
        modes = ", ".join(sorted(_PERMISSION_MODES))
        raise PersonaError(f"{path}: field 'permission_mode' must be one of {modes}")
    for field in TOOL_FIELDS:
        for tool in getattr(persona, field):
            problem = tool_problem(tool)
            if problem:
                raise PersonaError(f"{path}: field '{field}': the entry {tool!r} {problem};"
                                   " remove it or write the tool's name")
    return persona


def load_dir(directory: Path) -> dict[str, Persona]:
    """All personas in `directory` by name (plus the built-in default); PersonaError if one is
    bad."""
    personas: dict[str, Persona] = {DEFAULT.name: DEFAULT}
    origin: dict[str, Path] = {}
    problems: list[str] = []
    if directory.is_dir():
        for path in sorted(directory.glob("*.json")):
            try:
                p = load_file(path)
            except PersonaError as exc:
                problems.append(str(exc))
                continue
            if p.name in origin:
                problems.append(f"{path}: field 'name' repeats '{p.name}' from {origin[p.name]}")
                continue
            origin[p.name] = path
            personas[p.name] = p
    elif directory.exists():
        problems.append(f"{directory}: personas_dir is not a directory")
    if problems:
        raise PersonaError("; ".join(problems))
    return personas


def load_for(cfg: Config) -> dict[str, Persona]:
    """The personas a config names, checked against it: everything `run`, `check-config` and a
    SIGHUP reload refuse, as one PersonaError or ConfigError that names the field."""
    personas = load_dir(cfg.personas_path)
    if cfg.claude.default_persona not in personas:
        raise ConfigError(cfg.path, [
            f"claude.default_persona '{cfg.claude.default_persona}' is not a persona in"
            f" {cfg.personas_dir} (there: {', '.join(sorted(personas))})"])
    return personas
