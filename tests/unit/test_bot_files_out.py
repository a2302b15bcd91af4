"""bot.files_out: a FileOut read from disk as it is sent, a photo that Telegram refuses sent as a
document, and one sentence for a file that cannot be sent."""
from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
from telegram.error import BadRequest

from bot import files_out
from bot.files_out import Unsendable, read_file
from wire import messages as m

pytestmark = pytest.mark.timeout(5)


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "a.txt").write_bytes(b"hello")
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "dir").mkdir()
    os.symlink(tmp_path / "a.txt", tmp_path / "link")
    (tmp_path / "big").write_bytes(b"x" * 11)
    os.mkfifo(tmp_path / "fifo")  # swapped in after the check: never waited on
    return tmp_path


@pytest.mark.parametrize(("name", "sentence"), [
    ("gone", "gone is no longer there"),
    ("link", "could not be read"),  # swapped for a link after the worker's check: not followed
    ("dir", "is no longer a plain file"),
    ("fifo", "is no longer a plain file"),
    ("empty", "is empty"),
    ("big", "over Telegram's 50 MB limit"),
])
def test_what_cannot_be_sent(files: Path, name: str, sentence: str) -> None:
    with pytest.raises(Unsendable, match=sentence):
        read_file(str(files / name), name, limit=10)


def test_read(files: Path) -> None:
    assert read_file(str(files / "a.txt"), "a.txt") == b"hello"


class FakeOut:
    def __init__(self, refuse_photo: bool) -> None:
        self.refuse_photo = refuse_photo
        self.calls: list[tuple[str, Any]] = []

    async def photo(self, chat_id: int, data: bytes, caption: str = "") -> int:
        self.calls.append(("photo", (chat_id, data, caption)))
        if self.refuse_photo:
            raise BadRequest("PHOTO_INVALID_DIMENSIONS")
        return 1

    async def document(self, chat_id: int, filename: str, data: bytes, caption: str = "") -> int:
        self.calls.append(("document", (chat_id, filename, data, caption)))
        return 2


@pytest.mark.parametrize(("photo", "refuse", "sent"), [
    (True, False, ["photo"]),
    (True, True, ["photo", "document"]),
    (False, False, ["document"]),
])
def test_photo_or_document(files: Path, photo: bool, refuse: bool, sent: list[str]) -> None:
    out = FakeOut(refuse)
    body = m.FileOut(path=str(files / "a.txt"), name="a.txt", size=5, caption="c", photo=photo)
    mid = asyncio.run(files_out.send(out, 7, body, 1.0))  # type: ignore[arg-type]
    assert [c[0] for c in out.calls] == sent
    assert mid == (1 if sent == ["photo"] else 2)
    if "document" in sent:
        assert out.calls[-1][1] == (7, "a.txt", b"hello", "c")
