"""Files both ways, as the owner sees them in the chat and as Claude sees them in its requests.

Out: a file a tool wrote reaches the chat through Claude's `send_file` tool (no permission
prompt) and through `/get`, a photo as a photo, and every path outside the session's folders (a
link out of them, a directory) is refused with one sentence. In: a photo reaches Claude as an
image block, an album of two photos is one request with two, and a paste Telegram split in two
is one turn. Driven through the sandbox Telegram user and the model sandbox's record of requests.
"""
from __future__ import annotations

import base64
import os
import re
import signal
import struct
import zlib
from typing import Any

import pytest

from tests.e2e.conftest import unique
from tests.support.chat import journal_rows, last_id, new_session, wait_text
from tests.support.stack import OWNER, Stack
from tests.support.waits import wait_until

pytestmark = pytest.mark.timeout(240)
SEND = "#sb:tool=mcp__switchboard__send_file"


def png(width: int, height: int, rgb: bytes = b"\xff\x00\x00") -> bytes:
    """A real PNG of one colour (the CLI reads its size, Telegram's photo rules check it)."""
    raw = b"".join(b"\x00" + rgb * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


def bot_files(tg: Any, after: int) -> list[dict[str, Any]]:
    return [m for m in tg.chat(OWNER) if m["from_bot"] and m["message_id"] > after
            and (m["document"] or m["photo"])]


def turns(model: Any) -> list[dict[str, Any]]:
    """The newest user message of every model request that is a turn (not a side request)."""
    from sandbox.model_scripts import is_side_request, newest_user_message

    out = []
    for r in model.requests():
        msg = newest_user_message(r.get("messages"))
        if msg is not None and not is_side_request(r):
            out.append(msg)
    return out


def images_of(msg: dict[str, Any]) -> list[dict[str, Any]]:
    content = msg.get("content")
    return [b for b in content if b.get("type") == "image"] if isinstance(content, list) else []


def ask_tool(tg: Any, text: str, answer: str) -> dict[str, Any]:
    """Send a directive; the bot's answer, which must match `answer`."""
    after = last_id(tg, OWNER)
    tg.send(OWNER, text)
    return wait_text(tg, OWNER, answer, 60, after=after)


def test_files_reach_the_chat_through_send_file_and_get(stack: Stack, tg: Any,
                                                         model: Any) -> None:
    name = unique("files")
    new_session(tg, OWNER, name)
    pic = base64.b64encode(png(8, 6)).decode()
    # A tool writes the files (the owner allows the Bash command once).
    after = last_id(tg, OWNER)
    tg.send(OWNER, "#sb:bash=printf 'quarterly numbers' > report.txt && mkdir -p sub"
            " && python3 -c \"import base64;"
            f" open('pic.png','wb').write(base64.b64decode('{pic}'))\""
            " && ln -sf /etc/hostname leak")
    prompt = wait_text(tg, OWNER, r"asks", 60, after=after)
    allow = next(b["callback_data"] for row in prompt["reply_markup"]["inline_keyboard"]
                 for b in row if b["text"] == "Allow")
    tg.tap(OWNER, prompt["message_id"], allow)
    wait_text(tg, OWNER, r"^tool said:", 60, after=prompt["message_id"])
    work = stack.state_dir / "sessions" / name / "work"
    assert (work / "report.txt").read_text() == "quarterly numbers"

    # send_file: the document arrives with its caption, and no permission prompt was asked.
    before = last_id(tg, OWNER)
    ask_tool(tg, f'{SEND} {{"path": "report.txt", "caption": "the report"}}',
             r"tool said: Sent report\.txt")
    [doc] = bot_files(tg, before)
    assert doc["document"]["file_name"] == "report.txt"
    assert doc["document"]["size"] == len("quarterly numbers")
    assert base64.b64decode(doc["document"]["content_b64"]) == b"quarterly numbers"
    assert doc["caption"] == "the report"
    assert not [m for m in tg.chat(OWNER) if m["message_id"] > before and m["reply_markup"]
                and "asks" in (m["text"] or "")], "send_file must not ask for permission"
    # Claude is shown the tool with its schema in every request (not behind a tool search).
    [tool] = [t for t in model.requests()[-1].get("tools") or []
              if t.get("name") == "mcp__switchboard__send_file"]
    assert tool["input_schema"]["required"] == ["path"]

    # An image goes as a photo.
    before = last_id(tg, OWNER)
    ask_tool(tg, f'{SEND} {{"path": "{work / "pic.png"}"}}', r"tool said: Sent ")
    [photo] = bot_files(tg, before)
    assert photo["photo"] and (photo["photo"]["width"], photo["photo"]["height"]) == (8, 6)

    # Outside the session's folders, a link out of them, a directory: one sentence each, as
    # the tool's error Claude reads; nothing is sent.
    before = last_id(tg, OWNER)
    ask_tool(tg, f'{SEND} {{"path": "/etc/hostname"}}',
             r"tool said: /etc/hostname is outside this session's folders")
    ask_tool(tg, f'{SEND} {{"path": "leak"}}', r"tool said: leak is a link to a place outside")
    ask_tool(tg, f'{SEND} {{"path": "../../../bot.db"}}', r"is outside this session's folders")
    assert bot_files(tg, before) == []

    # /get: the same file from the chat, and the same refusals.
    before = last_id(tg, OWNER)
    tg.send(OWNER, "/get report.txt")
    wait_until(lambda: bot_files(tg, before), 30, "the file for /get")
    [got] = bot_files(tg, before)
    assert got["document"]["file_name"] == "report.txt" and got["caption"] is None
    for path, sentence in [("sub", "sub is a directory, not a file"),
                           ("leak", "leak is a link to a place outside"),
                           ("/etc/hostname", "/etc/hostname is outside this session's folders"),
                           ("nothing.txt", "There is no file nothing.txt")]:
        after = last_id(tg, OWNER)
        tg.send(OWNER, f"/get {path}")
        wait_text(tg, OWNER, re.escape(sentence), 30, after=after)
    after = last_id(tg, OWNER)
    tg.send(OWNER, "/get")
    wait_text(tg, OWNER, r"^Usage: /get PATH", 30, after=after)
    assert len(bot_files(tg, before)) == 1


def test_photos_albums_and_split_pastes_are_one_turn_each(stack: Stack, tg: Any,
                                                          model: Any) -> None:
    name = unique("photos")
    new_session(tg, OWNER, name)
    red, blue = png(4, 4), png(5, 3, b"\x00\x00\xff")

    # A photo: Claude gets it as an image block, with the caption as text.
    seen = len(turns(model))
    after = last_id(tg, OWNER)
    tg.send_photo(OWNER, red, caption="what is this")
    wait_text(tg, OWNER, r"echo: what is this", 60, after=after)
    [turn] = turns(model)[seen:]
    [image] = images_of(turn)
    assert image["source"] == {"type": "base64", "media_type": "image/png",
                               "data": base64.b64encode(red).decode()}
    assert any("photo.jpg" in (b.get("text") or "") for b in turn["content"])

    # An album of two, each photo slow to download (the second part's hand-off comes well
    # after the first's window): one request with both images, one answer.
    tg.fault("slow", method="download", count=2, delay=1.5)
    seen = len(turns(model))
    after = last_id(tg, OWNER)
    tg.send_album(OWNER, [red, blue], caption="compare these")
    wait_text(tg, OWNER, r"echo: compare these", 60, after=after)
    wait_until(lambda: len(turns(model)) > seen, 10, "the album's request")
    [turn] = turns(model)[seen:]
    assert [i["source"]["data"] for i in images_of(turn)] == [
        base64.b64encode(red).decode(), base64.b64encode(blue).decode()]
    answers = [m for m in tg.chat(OWNER) if m["from_bot"] and m["message_id"] > after
               and "echo:" in (m["text"] or "")]
    assert len(answers) == 1, answers

    # A paste Telegram split in two (the first part near the limit): one turn with both parts.
    seen = len(turns(model))
    head = "paste-head " + "x" * 3600
    after = last_id(tg, OWNER)
    tg.send(OWNER, head)
    tg.send(OWNER, "paste-tail")
    wait_text(tg, OWNER, r"paste-tail", 60, after=after)
    wait_until(lambda: len(turns(model)) > seen, 10, "the paste's request")
    from sandbox.model_scripts import user_text

    asked = [user_text(t) for t in turns(model)[seen:]]
    assert len(asked) == 1 and asked[0].startswith("paste-head ") and asked[0].endswith(
        "paste-tail"), [a[:40] + "…" + a[-20:] for a in asked]
    # A short text right after is a turn of its own.
    after = last_id(tg, OWNER)
    tg.send(OWNER, "just this")
    wait_text(tg, OWNER, r"echo: just this", 60, after=after)

    # The bot killed inside a paste's window (two long parts: it waits a second after the
    # second): the restarted bot finds both parts in bot.db and still sends one turn.
    seen = len(turns(model))
    pid = stack.bot_pid()
    assert pid is not None
    after = last_id(tg, OWNER)
    tg.send(OWNER, "crash-head " + "y" * 3600)
    tg.send(OWNER, "crash-second " + "z" * 3600)
    wait_until(lambda: len(journal_rows(stack.state_dir, "SELECT key FROM handoffs")) == 2
               or len(turns(model)) > seen, 10, "both parts in bot.db", step=0.01)
    os.kill(pid, signal.SIGKILL)
    stack.wait_state("bot", "RUNNING", 60, new_pid_after=pid)
    wait_text(tg, OWNER, r"z{40}", 90, after=after)
    asked = [user_text(t) for t in turns(model)[seen:]]
    assert len(asked) == 1 and asked[0].startswith("crash-head ") and asked[0].endswith(
        "z" * 3600), [a[:40] + "…" + a[-20:] for a in asked]
