"""session_worker.images: photos as image blocks of the user turn; what is left out, and why."""
from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from session_worker import images, stream_json, translate

pytestmark = pytest.mark.timeout(5)
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 30
JPEG = b"\xff\xd8\xff\xe0" + b"\0" * 30


@pytest.mark.parametrize(("head", "kind"), [
    (JPEG, "image/jpeg"), (PNG, "image/png"), (b"GIF89a" + b"\0" * 10, "image/gif"),
    (b"RIFF\0\0\0\0WEBPVP8 ", "image/webp"), (b"%PDF-1.7", None), (b"", None),
])
def test_media_type(head: bytes, kind: str | None) -> None:
    assert images.media_type(head) == kind


def test_user_content(tmp_path: Path) -> None:
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    (uploads / "1.png").write_bytes(PNG)
    (uploads / "2.jpg").write_bytes(JPEG)
    (uploads / "3.bin").write_bytes(b"not an image")
    (tmp_path / "outside.png").write_bytes(PNG)
    os.symlink(tmp_path / "outside.png", uploads / "4.png")
    os.mkfifo(uploads / "5.png")
    (uploads / "6.png").mkdir()
    paths = [str(uploads / n) for n in ("1.png", "2.jpg", "3.bin", "4.png", "gone.png", "5.png",
                                         "6.png")]
    paths.append(str(tmp_path / "outside.png"))
    content = images.user_content("caption", paths, uploads)
    assert isinstance(content, list)
    assert [b["type"] for b in content] == ["image", "image", "text"]
    assert content[0]["source"] == {"type": "base64", "media_type": "image/png",
                                    "data": base64.b64encode(PNG).decode()}
    assert content[1]["source"]["media_type"] == "image/jpeg"
    assert content[2] == {"type": "text", "text": "caption"}
    # Nothing usable: the text alone, as before.
    assert images.user_content("just text", [str(uploads / "3.bin")], uploads) == "just text"
    assert images.user_content("t", [], uploads) == "t"


def test_the_user_line_carries_the_blocks() -> None:
    blocks = [{"type": "text", "text": "hi"}]
    line = json.loads(stream_json.user_line(blocks))
    assert line == {"type": "user", "message": {"role": "user", "content": blocks}}


def test_mcp_messages_are_translated_and_answered() -> None:
    ev = {"type": "control_request", "request_id": "r1",
          "request": {"subtype": "mcp_message", "server_name": "switchboard",
                      "message": {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}}}
    out = translate.Translator().translate(ev)
    assert out.mcp == translate.McpRequest("r1", "switchboard",
                                           {"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert out.other_request is None and out.permission is None
    answer = json.loads(stream_json.mcp_response_line("r1", {"jsonrpc": "2.0", "id": 1}))
    assert answer == {"type": "control_response", "response": {
        "subtype": "success", "request_id": "r1",
        "response": {"mcp_response": {"jsonrpc": "2.0", "id": 1}}}}
    ack = json.loads(stream_json.mcp_response_line("r2", None))
    assert ack["response"]["response"] == {}
