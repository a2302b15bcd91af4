"""The one TOML renderer the harnesses write `switchboard.toml` with, and short temp dirs.

Tests write configs as Python values so each test states only the fields it changes; this turns
them into TOML a user could have typed. It must never drop or coerce a value silently: anything
it cannot render is a TypeError.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any


def toml_value(value: Any) -> str:
    """A Python value as TOML (json's string escapes are valid TOML basic strings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        pairs = ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items())
        return "{ " + pairs + " }"
    raise TypeError(f"no TOML for {value!r}")


def render_config(top: dict[str, Any], sections: dict[str, dict[str, Any]]) -> str:
    """Top-level keys first, then one `[section]` table per entry of `sections`."""
    lines = [f"{k} = {toml_value(v)}" for k, v in top.items()]
    for name, fields in sections.items():
        lines.append(f"\n[{name}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in fields.items()]
    return "\n".join(lines) + "\n"


def short_dir(prefix: str = "sb-") -> Path:
    """A fresh temp dir short enough for unix socket paths (a pytest tmp_path can be too long)."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
