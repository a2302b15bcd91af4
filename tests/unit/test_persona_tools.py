"""supervisor.personas: a tool entry is a tool rule, never an option or a smuggled argv word."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from supervisor.personas import PersonaError, load_dir, load_file, tool_problem

VALID = ["Bash", "Read", "Bash(git status:*)", "Bash(npm test:*)", "WebFetch(domain:x.org)",
         "mcp__github__create_issue", "Edit(/home/me/notes.md)", "Bash(echo (x))"]
INVALID = [
    ("--dangerously-skip-permissions", "starts with '-'"),
    ("-p", "starts with '-'"),
    ("Bash\n--dangerously-skip-permissions", "control or whitespace"),
    ("Bash\t", "control or whitespace"),
    ("Read\x00", "control or whitespace"),
    ("Bash(ls\u200b)", "control or whitespace"),  # a zero-width space (format character)
    ("Bash --x", "not a tool name"),
    (" Bash", "not a tool name"),
    ("", "not a tool name"),
    ("Bash(ls", "not a tool name"),
]


@pytest.mark.parametrize("tool", VALID)
def test_tool_rules_stay_valid(tool: str) -> None:
    assert tool_problem(tool) is None


@pytest.mark.parametrize("tool, why", INVALID)
def test_a_bad_entry_is_named(tool: str, why: str) -> None:
    problem = tool_problem(tool)
    assert problem is not None and why in problem


@pytest.mark.parametrize("field", ["allowed_tools", "disallowed_tools"])
def test_the_file_is_refused_naming_the_file_and_the_field(tmp_path: Path, field: str) -> None:
    path = tmp_path / "evil.json"
    path.write_text(json.dumps({"name": "evil", field: ["Read", "--dangerously-skip-permissions"]}))
    with pytest.raises(PersonaError) as refused:
        load_file(path)
    text = str(refused.value)
    assert str(path) in text and f"field '{field}'" in text
    assert "'--dangerously-skip-permissions'" in text
    with pytest.raises(PersonaError):
        load_dir(tmp_path)  # the whole set is refused, never half-loaded


def test_the_shipped_personas_pass() -> None:
    shipped = Path(__file__).resolve().parents[2] / "personas"
    assert len(load_dir(shipped)) > 1
