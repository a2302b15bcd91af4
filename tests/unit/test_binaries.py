"""wire.binaries: the one lookup of a configured program, by path or on PATH."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from wire.binaries import find_binary, is_path


def make(path: Path, mode: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(mode)
    return path


@pytest.mark.parametrize("name, mode, on_path, found", [
    ("tool", 0o755, True, True),
    ("tool", 0o644, True, False),  # not executable
    ("tool", 0o755, False, False),  # not on this PATH
    ("{dir}/tool", 0o755, False, True),  # a path is looked at as it is
    ("{dir}/tool", 0o644, False, False),
    ("{dir}/missing", 0o755, False, False),
])
def test_find_binary(tmp_path: Path, name: str, mode: int, on_path: bool, found: bool) -> None:
    exe = make(tmp_path / "bin" / "tool", mode)
    path = str(exe.parent) if on_path else str(tmp_path / "empty")
    result = find_binary(name.format(dir=exe.parent), path)
    assert result == (str(exe) if found else None)
    assert result is None or os.path.isabs(result)


def test_a_directory_is_not_a_binary(tmp_path: Path) -> None:
    (tmp_path / "tool").mkdir()
    assert find_binary(str(tmp_path / "tool")) is None
    assert find_binary("tool", str(tmp_path)) is None


@pytest.mark.parametrize("value, expected", [
    ("claude", False), ("./claude", True), ("/usr/bin/claude", True), ("~/bin/claude", True),
])
def test_is_path(value: str, expected: bool) -> None:
    assert is_path(value) is expected
