"""bot.render: Markdown to entities, splitting at 4096 UTF-16 units, the small texts."""
from __future__ import annotations

import pytest
from telegramify_markdown import MessageEntity, utf16_len

from bot import render
from bot.render import Chunk, split
from wire import messages as m


def _valid(chunk: Chunk, limit: int = render.MAX_TEXT) -> None:
    n = utf16_len(chunk.text)
    assert 0 < n <= limit
    assert chunk.text.strip()
    for e in chunk.entities:
        assert e.offset >= 0 and e.length > 0
        assert e.offset + e.length <= n


@pytest.mark.parametrize(
    "text,limit",
    [
        ("short", 4096),
        ("x" * 10000, 4096),  # no whitespace: hard cuts
        ("word " * 3000, 4096),
        ("line\n" * 3000, 4096),
        ("😀" * 5000, 4096),  # astral characters count twice
        ("a😀" * 3000, 101),
        ("para one\n\n" + "b" * 5000 + "\nend", 4096),
    ],
)
def test_split_joins_back_and_fits(text: str, limit: int) -> None:
    chunks = split(text, (), limit)
    assert "".join(c.text for c in chunks) == text
    for c in chunks:
        _valid(c, limit)


def test_split_prefers_line_breaks_outside_code() -> None:
    md = "intro\n\n```python\n" + "x = 1\n" * 50 + "```\n\n" + "tail " * 10
    text, ents = render.telegramify_markdown.convert(md)
    pre = next(e for e in ents if e.type == "pre")
    # A limit that fits the code block but not intro + block: the block moves whole.
    limit = pre.length + 5
    chunks = split(text, ents, limit)
    code_chunks = [c for c in chunks if any(e.type == "pre" for e in c.entities)]
    assert len(code_chunks) == 1
    (e,) = [e for e in code_chunks[0].entities if e.type == "pre"]
    assert e.length == pre.length and e.language == "python"
    assert "".join(c.text for c in chunks) == text


def test_split_of_a_code_block_longer_than_a_message_keeps_it_code_on_both_sides() -> None:
    md = "```\n" + "line of code\n" * 800 + "```"
    chunks = render.render_markdown(md)
    assert len(chunks) >= 3
    for c in chunks:
        _valid(c)
        assert [e.type for e in c.entities] == ["pre"]
        assert c.entities[0].offset == 0
        assert not c.text.startswith("ine")  # cut at a line break


def test_hundred_kb_of_sentences_cut_at_spaces() -> None:
    pattern = "The quick brown fox jumps over the lazy dog 0123456789. "
    text = (pattern * 2000)[: 100_000 - 3] + "END"
    chunks = render.render_markdown(text)
    assert len(chunks) == 25
    # Telegram trims each message; the cuts are at single spaces, so a space joins them back.
    assert " ".join(c.text.strip() for c in chunks) == text
    for c in chunks:
        _valid(c)


def test_markdown_becomes_entities() -> None:
    (chunk,) = render.render_markdown("Some **bold** and `code`\n\n```python\nprint(1)\n```")
    kinds = {e.type for e in chunk.entities}
    assert {"bold", "code", "pre"} <= kinds
    assert "**" not in chunk.text and "```" not in chunk.text
    pre = next(e for e in chunk.entities if e.type == "pre")
    assert chunk.text[pre.offset : pre.offset + pre.length].strip() == "print(1)"


def test_utf16_offsets_after_emoji() -> None:
    (chunk,) = render.render_markdown("😀😀 **bold**")
    (bold,) = [e for e in chunk.entities if e.type == "bold"]
    assert bold.offset == 5 and bold.length == 4


def test_plain_fallback_keeps_raw_text() -> None:
    chunks = render.render_plain("**not bold** <b>")
    assert chunks == [Chunk("**not bold** <b>")]


def test_whitespace_only_gives_no_chunk() -> None:
    assert render.render_markdown("   \n\n ") == []
    assert split("\n\n\n", ()) == []


@pytest.mark.parametrize(
    "summary,expected",
    [
        ("Bash: ls -la", "🔧 Bash: ls -la"),
        ("Bash: echo a\n  echo b", "🔧 Bash: echo a echo b"),
        ("", "🔧 Read"),
    ],
)
def test_tool_line(summary: str, expected: str) -> None:
    body = m.ToolUse(tool_use_id="t", name="Read", summary=summary)
    assert render.tool_line(body) == expected


def test_tool_line_is_bounded() -> None:
    line = render.tool_line(m.ToolUse(tool_use_id="t", name="Bash", summary="Bash: " + "x" * 5000))
    assert len(line) <= render.TOOL_LINE_MAX + 2 and line.endswith("…")


@pytest.mark.parametrize(
    "result,expected",
    [
        (m.TurnResult(duration_ms=2345, cost_usd=0.0123), "✓ 2.3 s · $0.0123"),
        (m.TurnResult(duration_ms=65000, cost_usd=1.5, session_cost_usd=3.25),
         "✓ 1 min 5 s · $1.50 (session $3.25)"),
        (m.TurnResult(is_error=True, duration_ms=100, cost_usd=0), "✗ 0.1 s · $0.0000"),
    ],
)
def test_footer(result: m.TurnResult, expected: str) -> None:
    assert render.footer(result) == expected


def test_with_footer_appends_italic_or_refuses_when_full() -> None:
    chunk = Chunk("answer **", (MessageEntity("bold", 0, 9),))
    out = render.with_footer(chunk, "✓ 1.0 s · $0.0100")
    assert out is not None
    assert out.text == "answer **\n\n✓ 1.0 s · $0.0100"
    assert out.entities[-1].type == "italic"
    _valid(out)
    assert render.with_footer(Chunk("y" * 4090), "✓ 1.0 s · $0.0100") is None


def test_labelled_shifts_entities() -> None:
    chunks = render.labelled("api", [Chunk("hi there", (MessageEntity("bold", 3, 5),))])
    assert chunks[0].text == "[api]\nhi there"
    bold = [e for e in chunks[0].entities if e.offset == 9]
    assert bold and bold[0].length == 5


def test_status_table_looks_like_supervisorctl() -> None:
    rows = [
        m.ProgramStatus(name="bot", state="RUNNING", pid=12, uptime_seconds=3725),
        m.ProgramStatus(name="session:demo", state="STOPPED", description="Not started"),
    ]
    assert render.status_table(rows).splitlines() == [
        "bot          RUNNING   pid 12, uptime 1:02:05",
        "session:demo STOPPED   Not started",
    ]


def test_sessions_text_marks_the_active_one() -> None:
    rows = [
        m.ProgramStatus(name="bot", state="RUNNING"),
        m.ProgramStatus(name="session:a", state="RUNNING", persona="default", idle_seconds=125,
                        cost_usd=0.5),
        m.ProgramStatus(name="session:b", state="FATAL", persona="review"),
    ]
    lines = render.sessions_text(rows, "a").splitlines()
    assert lines == [
        "▶ a — RUNNING · persona default · idle 2 min · $0.5000",
        "• b — FATAL · persona review · idle - · $0.0000",
    ]
    assert "create one" in render.sessions_text([], None)


def test_cost_text_sums() -> None:
    rows = [m.ProgramStatus(name="session:a", state="RUNNING", cost_usd=0.25),
            m.ProgramStatus(name="session:b", state="RUNNING", cost_usd=1.0)]
    assert render.cost_text(rows).splitlines()[-1] == "Total: $1.25"


def test_preview_of_a_huge_answer_is_one_message_that_says_a_file_follows():
    text = "".join(f"line {i} " + "x" * 60 + "\n" for i in range(20000))
    chunk = render.render_preview(text)
    assert len(chunk.text.encode("utf-16-le")) // 2 <= render.MAX_TEXT
    assert text.startswith(chunk.text.split("\n\n…")[0])
    assert chunk.text.split("\n\n…")[0].endswith("x")  # cut at a line, not mid-line
    assert f"{len(text):,} characters in all" in chunk.text and not chunk.entities


def test_answer_file_is_gzipped_only_when_large():
    import gzip

    from bot.session_view import GZIP_OVER_BYTES, answer_file

    assert answer_file("s", "hello") == ("answer-s.md", b"hello")
    big = "y" * (GZIP_OVER_BYTES + 1)
    name, data = answer_file("s", big)
    assert name == "answer-s.md.gz" and gzip.decompress(data).decode() == big
    assert len(data) < len(big) // 100
