"""session_worker.outfiles: which paths a session may send to its chat, and the sentence for the
rest; session_worker.mcp_tools: the JSON-RPC of the send_file tool."""
from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from session_worker import mcp_tools
from session_worker.outfiles import MAX_UPLOAD, Outgoing, Refused, judge

pytestmark = pytest.mark.timeout(10)


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    work = tmp_path / "session" / "work"
    uploads = work / "uploads"
    uploads.mkdir(parents=True)
    (work / "a.txt").write_text("hello")
    (work / "pic.PNG").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    (work / "sub").mkdir()
    (work / "sub" / "b.md").write_text("# b")
    (work / "empty").write_bytes(b"")
    (uploads / "1-photo.jpg").write_bytes(b"\xff\xd8\xff" + b"\0" * 10)
    (tmp_path / "secret").write_text("token")
    os.symlink(tmp_path / "secret", work / "out-link")
    os.symlink(work / "a.txt", work / "in-link")
    os.symlink(tmp_path, work / "dir-link")
    os.mkfifo(work / "fifo")
    with open(work / "big.bin", "wb") as f:
        f.truncate(MAX_UPLOAD + 1)
    return work, uploads


@pytest.mark.parametrize(("path", "name", "photo"), [
    ("a.txt", "a.txt", False),
    ("./sub/../a.txt", "a.txt", False),
    ("sub/b.md", "b.md", False),
    ("pic.PNG", "pic.PNG", True),
    ("uploads/1-photo.jpg", "1-photo.jpg", True),
    ("in-link", "a.txt", False),  # a link that stays inside: its real file
])
def test_accepted(dirs: tuple[Path, Path], path: str, name: str, photo: bool) -> None:
    work, uploads = dirs
    got = judge(path, work, [work, uploads])
    assert isinstance(got, Outgoing), got
    assert (got.name, got.photo) == (name, photo)
    assert Path(got.path).is_absolute() and got.size == os.path.getsize(got.path)


@pytest.mark.parametrize(("path", "sentence"), [
    ("", "No path was given"),
    ("   ", "No path was given"),
    ("../secret", "../secret is outside this session's folders"),
    ("/etc/passwd", "/etc/passwd is outside this session's folders"),
    ("~/x", "~/x is outside"),
    ("out-link", "out-link is a link to a place outside this session's folders"),
    ("dir-link/secret", "dir-link/secret is a link to a place outside"),
    ("sub", "sub is a directory, not a file"),
    ("missing.txt", "There is no file missing.txt"),
    ("fifo", "fifo is not a regular file"),
    ("empty", "empty is empty"),
    ("big.bin", "big.bin is 50.0 MB, over Telegram's 50 MB limit"),
    ("a\0b", "NUL"),
])
def test_refused_with_one_sentence(dirs: tuple[Path, Path], path: str, sentence: str) -> None:
    work, uploads = dirs
    got = judge(path, work, [work, uploads])
    assert isinstance(got, Refused), got
    assert sentence in got.sentence
    assert got.sentence.count(". ") == 0 and got.sentence.endswith(".")


def test_the_uploads_dir_may_live_outside_the_working_dir(tmp_path: Path) -> None:
    project, uploads = tmp_path / "project", tmp_path / "state" / "uploads"
    project.mkdir()
    uploads.mkdir(parents=True)
    (uploads / "f.txt").write_text("x")
    assert isinstance(judge(str(uploads / "f.txt"), project, [project, uploads]), Outgoing)
    assert isinstance(judge("../state/other", project, [project, uploads]), Refused)


# --------------------------------------------------------------------------- the MCP server


def _serve(messages: list[dict[str, Any]], refuse: str | None = None
           ) -> tuple[list[dict[str, Any] | None], list[tuple[str, str]]]:
    sent: list[tuple[str, str]] = []

    async def send_file(path: str, caption: str) -> str | None:
        sent.append((path, caption))
        return refuse

    server = mcp_tools.McpServer(send_file)

    async def run() -> list[dict[str, Any] | None]:
        return [await server.handle(msg) for msg in messages]
    return asyncio.run(run()), sent


def test_handshake_and_tool_list() -> None:
    (init, note, tools, ping, other), _ = _serve([
        {"jsonrpc": "2.0", "id": 0, "method": "initialize",
         "params": {"protocolVersion": "2025-11-25", "capabilities": {}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        {"jsonrpc": "2.0", "id": 2, "method": "ping"},
        {"jsonrpc": "2.0", "id": 3, "method": "resources/list"},
    ])
    assert init is not None and init["id"] == 0
    assert init["result"]["protocolVersion"] == "2025-11-25"
    assert init["result"]["capabilities"] == {"tools": {}}
    assert note is None  # a notification gets no answer
    assert tools is not None and [t["name"] for t in tools["result"]["tools"]] == ["send_file"]
    assert tools["result"]["tools"][0]["inputSchema"]["required"] == ["path"]
    assert ping == {"jsonrpc": "2.0", "id": 2, "result": {}}
    assert other is not None and other["error"]["code"] == mcp_tools.METHOD_NOT_FOUND


@pytest.mark.parametrize(("arguments", "refuse", "sent", "is_error", "text"), [
    ({"path": "a.txt", "caption": "hi"}, None, [("a.txt", "hi")], False, "Sent a.txt"),
    ({"path": "a.txt"}, None, [("a.txt", "")], False, "Sent a.txt"),
    ({"path": "/etc/x"}, "It is outside.", [("/etc/x", "")], True, "It is outside."),
    ({"path": 5}, None, [], True, "takes a path (a string)"),
    ({}, None, [], True, "takes a path"),
    ({"path": "a", "caption": "c" * 2000}, None, [("a", "c" * 1024)], False, "Sent a"),
])
def test_send_file_calls(arguments: dict[str, Any], refuse: str | None,
                         sent: list[tuple[str, str]], is_error: bool, text: str) -> None:
    (answer,), got = _serve([{"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                              "params": {"name": "send_file", "arguments": arguments}}], refuse)
    assert got == sent
    assert answer is not None and answer["id"] == 7
    assert answer["result"]["isError"] is is_error
    assert text in answer["result"]["content"][0]["text"]


def test_unknown_tool_and_garbage_never_raise() -> None:
    answers, sent = _serve([
        {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "rm"}},
        "garbage", {"id": 2}, {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": 4},
    ])  # type: ignore[list-item]
    assert answers[0] is not None and answers[0]["error"]["code"] == mcp_tools.INVALID_PARAMS
    assert answers[1] is None
    assert answers[2] is not None and "error" in answers[2]
    assert answers[3] is not None and "error" in answers[3]
    assert sent == []


def test_the_cli_is_told_of_the_server_and_the_tool_is_pre_approved() -> None:
    from session_worker.claude_process import build_argv
    from wire import messages as m

    argv = build_argv("claude", m.Persona(name="d", allowed_tools=["Read"]), [], None)
    config = argv[argv.index("--mcp-config") + 1]
    assert '"type": "sdk"' in config and mcp_tools.SERVER in config
    assert argv.index("--mcp-config") < argv.index("-p"), "a variadic flag before a fixed one"
    approved = [argv[i + 1] for i, a in enumerate(argv) if a == "--allowedTools"]
    assert approved == ["Read", "mcp__switchboard__send_file"]
