"""A permission prompt as Telegram messages that show everything an Allow approves.

The worker's PermissionRequest carries the tool's whole input (`input_json`), exactly what an
Allow approves. This module lays it out: a Bash command whole and unflattened, an edit as the
file and a compact diff, a fetch as its URL, any other tool as its input pretty-printed, and
every field the layout does not name below it, so nothing of the input is left out. The body is
monospaced (one `pre` entity). A body too long for one message is split across several (the
buttons go on the last, which bot.delivery sends last); one longer still, or an edit's diff past
`DIFF_LINES`, is also attached as a file, and the message says so in so many words.

Every part is `header line + "\\n" + body`, so `answered` can rebuild the monospaced body of the
part kept in bot.db when it adds the outcome. Pure: no I/O, no PTB; it must never drop or
reflow a character of the input in what it shows.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from telegramify_markdown import MessageEntity, utf16_len

from bot.render import Chunk
from wire import messages as m

PART_CHARS = 3500  # room left in a 4096 message for the header and the outcome line
MAX_PARTS = 4  # past this many messages the whole input goes as a file too
DIFF_LINES = 60
_EDIT_TOOLS = ("Edit", "Write", "MultiEdit", "NotebookEdit")


@dataclass(frozen=True)
class PromptView:
    parts: list[str]  # each a message: a header line, then the monospaced body
    file: tuple[str, bytes] | None = None  # (name, data): the whole input, when cut


def _input(body: m.PermissionRequest) -> dict[str, Any]:
    try:
        value = json.loads(body.input_json)
    except ValueError:
        return {"input_json": body.input_json}
    return value if isinstance(value, dict) else {"input": value}


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def _rest(tin: dict[str, Any], named: tuple[str, ...]) -> str:
    """Every field the layout did not show, so an Allow approves nothing unseen."""
    rest = {k: v for k, v in tin.items() if k not in named}
    return "" if not rest else "\n\n" + _pretty(rest)


def _diff(old: str, new: str) -> list[str]:
    return [f"- {line}" for line in old.split("\n")] + [f"+ {line}" for line in new.split("\n")]


def _edit_lines(tool: str, tin: dict[str, Any]) -> tuple[list[str], tuple[str, ...]]:
    """(the lines that show the change, the fields they cover)."""
    path = tin.get("file_path", tin.get("notebook_path", ""))
    lines = [f"file: {path}"]
    if tool == "Write" and isinstance(tin.get("content"), str):
        return lines + tin["content"].split("\n"), ("file_path", "content")
    if tool == "MultiEdit" and isinstance(tin.get("edits"), list) and all(
            isinstance(e, dict) and set(e) <= {"old_string", "new_string", "replace_all"}
            and isinstance(e.get("old_string"), str) and isinstance(e.get("new_string"), str)
            for e in tin["edits"]):
        for i, e in enumerate(tin["edits"], 1):
            every = " (every occurrence)" if e.get("replace_all") else ""
            lines += [f"@@ edit {i}{every}", *_diff(e["old_string"], e["new_string"])]
        return lines, ("file_path", "edits")
    if isinstance(tin.get("old_string"), str) and isinstance(tin.get("new_string"), str):
        if tin.get("replace_all"):
            lines.append("@@ every occurrence")
        return lines + _diff(tin["old_string"], tin["new_string"]), (
            "file_path", "old_string", "new_string", "replace_all")
    return lines, ("file_path", "notebook_path")


def _body(tool: str, tin: dict[str, Any]) -> str:
    command = tin.get("command")
    if tool == "Bash" and isinstance(command, str):
        return command + _rest(tin, ("command",))
    if tool == "WebFetch" and isinstance(tin.get("url"), str):
        return f"url: {tin['url']}" + _rest(tin, ("url",))
    if tool == "WebSearch" and isinstance(tin.get("query"), str):
        return f"query: {tin['query']}" + _rest(tin, ("query",))
    return _pretty(tin)


def _pieces(text: str, size: int) -> list[str]:
    """Cut at a line break near the end of a piece (the break itself becomes the gap between
    two messages), else exactly at `size`."""
    out: list[str] = []
    while len(text) > size:
        cut = text.rfind("\n", size // 2, size)
        if cut < 0:
            out.append(text[:size])
            text = text[size:]
        else:
            out.append(text[:cut])
            text = text[cut + 1:]
    out.append(text)
    return out


def view(session: str, body: m.PermissionRequest) -> PromptView:
    tool = body.tool_name
    tin = _input(body)
    head = f"🔐 Session {session} asks to use {' '.join(tool.split())[:64]}"
    if tool in _EDIT_TOOLS:
        lines, named = _edit_lines(tool, tin)
        text = "\n".join(lines) + _rest(tin, named)
        all_lines = text.split("\n")
        shown = "\n".join(all_lines[:DIFF_LINES])
        if len(all_lines) > DIFF_LINES or len(shown) > PART_CHARS:
            shown = _pieces(shown, PART_CHARS)[0]
            more = len(all_lines) - shown.count("\n") - 1
            note = f" ({more} more lines in the attached file)" if more > 0 else (
                " (the rest of the line is in the attached file)")
            return PromptView([f"{head}{note}:\n{shown}"],
                              (f"{tool.lower()}-{session}.txt", text.encode()))
        return PromptView([f"{head}:\n{text}"])
    text = _body(tool, tin)
    pieces = _pieces(text, PART_CHARS)
    if len(pieces) > MAX_PARTS:
        note = (f" (the whole input, {len(text):,} characters, is in the attached file; this is"
                " its start)")
        return PromptView([f"{head}{note}:\n{pieces[0]}"],
                          (f"{tool.lower()}-{session}.txt", text.encode()))
    n = len(pieces)
    return PromptView([f"{head}" + (f" (part {i}/{n})" if n > 1 else "") + f":\n{p}"
                       for i, p in enumerate(pieces, 1)])


def chunk(part: str, outcome: str = "") -> Chunk:
    """One part as a message: its body (everything after the first line) monospaced; an
    outcome line, when given, after it."""
    head, sep, body = part.partition("\n")
    text = part + (("\n" + outcome) if outcome else "")
    if not sep:
        return Chunk(text)
    # Telegram trims a message's trailing whitespace: an entity must end before it.
    length = utf16_len(body.rstrip())
    if not length:
        return Chunk(text)
    return Chunk(text, (MessageEntity("pre", utf16_len(head) + 1, length),))
