"""bot.uploads: a file from the chat lands in the session's work/uploads, never through a link."""
from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.uploads import LinkRefused, save_upload


def plant_uploads_link(session: Path, outside: Path) -> None:
    (session / "work").mkdir()
    (session / "work" / "uploads").symlink_to(outside)


def plant_work_link(session: Path, outside: Path) -> None:
    (session / "work").symlink_to(outside)


def plant_file_link(session: Path, outside: Path) -> None:
    (session / "work" / "uploads").mkdir(parents=True)
    (session / "work" / "uploads" / "1-a.txt").symlink_to(outside / "victim")


def plant_dangling_file_link(session: Path, outside: Path) -> None:
    (session / "work" / "uploads").mkdir(parents=True)
    (session / "work" / "uploads" / "1-a.txt").symlink_to(outside / "not-yet")


def plant_file_instead_of_dir(session: Path, outside: Path) -> None:
    (session / "work").mkdir()
    (session / "work" / "uploads").write_text("")


@pytest.mark.parametrize("plant, where", [
    (plant_uploads_link, "work/uploads"),
    (plant_work_link, "work"),
    (plant_file_link, "work/uploads/1-a.txt"),
    (plant_dangling_file_link, "work/uploads/1-a.txt"),
    (plant_file_instead_of_dir, "work/uploads"),
])
def test_a_planted_link_is_refused_and_nothing_is_written_outside(
        tmp_path: Path, plant: Callable[[Path, Path], None], where: str) -> None:
    session, outside = tmp_path / "sessions" / "s", tmp_path / "outside"
    session.mkdir(parents=True)
    outside.mkdir()
    (outside / "victim").write_text("mine")
    plant(session, outside)
    with pytest.raises(LinkRefused) as refused:
        save_upload(session, "1-a.txt", b"from the chat")
    assert str(refused.value) == where
    assert sorted(os.listdir(outside)) == ["victim"]
    assert (outside / "victim").read_text() == "mine"


def test_a_file_is_saved_0600_and_a_resend_replaces_it(tmp_path: Path) -> None:
    session = tmp_path / "s"
    session.mkdir()
    path = save_upload(session, "1-a.txt", b"one")
    assert path == session / "work" / "uploads" / "1-a.txt"
    assert path.read_bytes() == b"one" and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert save_upload(session, "1-a.txt", b"two").read_bytes() == b"two"


@pytest.mark.parametrize("name", ["", ".", "..", "a/b"])
def test_only_a_plain_name_is_taken(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError):
        save_upload(tmp_path, name, b"x")
