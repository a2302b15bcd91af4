"""Whether this machine can run Claude Code's own OS sandbox: one answer for doctor and worker.

On Linux the sandbox needs bubblewrap (`bwrap`) and `socat` on PATH. A persona that leaves
`sandbox` unset gets it exactly when both are there; `switchboard doctor` says how to install
them. This module only looks on PATH: it never runs what it finds (doctor does its own trial).
"""
from __future__ import annotations

from wire.binaries import find_binary

PROGRAMS = ("bwrap", "socat")
INSTALL = "apt-get install bubblewrap socat"


def missing_programs(path: str | None = None) -> list[str]:
    """The sandbox's programs not found on `path` (None: our PATH), in PROGRAMS' order."""
    return [p for p in PROGRAMS if find_binary(p, path) is None]


def wanted(setting: bool | None, missing: list[str]) -> bool:
    """A persona's `sandbox` (None: on where the machine allows it) against what is missing."""
    return (not missing) if setting is None else setting


def unavailable(persona: str, missing: list[str]) -> str:
    """The sentence for a persona that asks for the sandbox on a machine without it."""
    what = " and ".join(missing)
    return (f"Persona {persona} runs its tools in Claude Code's sandbox, but {what}"
            f" {'is' if len(missing) == 1 else 'are'} not installed: run `{INSTALL}`, or set"
            ' "sandbox": false in the persona, then send again.')
