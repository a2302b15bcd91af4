"""Telegram's text rules in the sandbox, as pure functions: parsing, UTF-16 offsets, limits."""

from __future__ import annotations

import html

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sandbox.telegram_drafts import expire
from sandbox.telegram_format import (
    FormatError,
    parse_html,
    parse_markdown,
    parse_markdown_v2,
    u16len,
    u16slice,
)
from sandbox.telegram_rules import (
    auto_entities,
    check_inline_keyboard,
    format_text,
    trim,
    validate_entities,
)
from sandbox.telegram_state import ApiError, BotState, Draft
from sandbox.telegram_topics import check_color, check_name

MDV2_RESERVED = "_*[]()~`>#+-=|{}.!\\"
texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60)


def covered(text: str, entities: list[dict]) -> list[tuple[str, str]]:
    return [(e["type"], u16slice(text, e["offset"], e["length"])) for e in entities]


def md2_escape(s: str) -> str:
    return "".join("\\" + c if c in MDV2_RESERVED else c for c in s)


# ------------------------------------------------------------------------------------ HTML


def test_html_tags_become_entities_with_utf16_offsets():
    text, ents = parse_html("😀 <b>bold <i>both</i></b> <a href='https://a.b/?x=1&amp;y=2'>l</a>")
    assert text == "😀 bold both l"
    assert ents[0] == {"type": "bold", "offset": 3, "length": 9}  # the emoji is 2 units
    assert covered(text, ents) == [("bold", "bold both"), ("italic", "both"), ("text_link", "l")]
    assert ents[2]["url"] == "https://a.b/?x=1&y=2"


@pytest.mark.parametrize(
    ("source", "text"),
    [
        ("&lt;&gt;&amp;&quot;", '<>&"'),
        ("&#65;&#x42;", "AB"),
        ("&nbsp; & &unknown; a&b", "&nbsp; & &unknown; a&b"),  # unknown entities stay literal
    ],
)
def test_html_character_entities(source, text):
    assert parse_html(source) == (text, [])


def test_html_synonyms_and_special_tags():
    source = (
        "<strong>a</strong><em>b</em><ins>c</ins><del>d</del><strike>e</strike>"
        '<span class="tg-spoiler">f</span><tg-spoiler>g</tg-spoiler>'
        "<blockquote expandable>h</blockquote>"
        '<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji>'
    )
    text, ents = parse_html(source)
    assert text == "abcdefgh👍"
    assert [t for t, _ in covered(text, ents)] == [
        "bold", "italic", "underline", "strikethrough", "strikethrough", "spoiler", "spoiler",
        "expandable_blockquote", "custom_emoji",
    ]  # fmt: skip


def test_html_pre_with_language_is_one_entity_and_drops_inner_formatting():
    text, ents = parse_html('<pre><code class="language-rust">fn <b>main</b>()</code></pre>')
    assert text == "fn main()"
    assert ents == [{"type": "pre", "offset": 0, "length": 9, "language": "rust"}]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("<b>x", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b>x</i>", 'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ("é<br>", 'Unsupported start tag "br" at byte offset 2'),  # offsets count UTF-8 bytes
        ("a < b", 'Unsupported start tag "" at byte offset 2'),
        ("<b", "Unclosed start tag at byte offset 0"),
        ("<span>x</span>", 'Tag "span" must have class "tg-spoiler"'),
    ],
)
def test_html_errors(source, message):
    with pytest.raises(FormatError, match="can't parse entities") as info:
        parse_html(source)
    assert message in str(info.value)


@given(texts)
def test_escaped_html_parses_back_to_itself(s):
    assert parse_html(html.escape(s, quote=False)) == (s, [])


@given(st.lists(st.tuples(texts, st.booleans()), max_size=6))
def test_html_bold_segments_cover_exactly_their_text(parts):
    source = "".join(f"<b>{html.escape(t)}</b>" if bold else html.escape(t) for t, bold in parts)
    text, ents = parse_html(source)
    assert text == "".join(t for t, _ in parts)
    assert [c for _, c in covered(text, ents)] == [t for t, bold in parts if bold and t]


# ------------------------------------------------------------------------------ MarkdownV2


def test_markdown_v2_entities():
    text, ents = parse_markdown_v2(
        "*b* _i_ __u__ ~s~ ||sp|| [l](https://x.y/a\\)b) `c\\`` ```py\nx\n``` \\. ___iu___"
    )
    assert text == "b i u s sp l c` x\n . iu"
    assert covered(text, ents) == [
        ("bold", "b"), ("italic", "i"), ("underline", "u"), ("strikethrough", "s"),
        ("spoiler", "sp"), ("text_link", "l"), ("code", "c`"), ("pre", "x\n"), ("italic", "iu"),
        ("underline", "iu"),
    ]  # fmt: skip
    assert ents[5]["url"] == "https://x.y/a)b" and ents[7]["language"] == "py"


def test_markdown_v2_blockquote():
    text, ents = parse_markdown_v2(">first\n>second\nafter")
    assert text == "first\nsecond\nafter"
    assert covered(text, ents) == [("blockquote", "first\nsecond")]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("v1.2", "Character '.' is reserved"),
        ("a-b", "Character '-' is reserved"),
        ("*open", "Can't find end of Bold entity at byte offset 0"),
        ("é_open", "Can't find end of Italic entity at byte offset 2"),
        ("`code", "Can't find end of Code entity"),
        ("[label](http://x", "Can't find end of a URL"),
    ],
)
def test_markdown_v2_errors(source, message):
    with pytest.raises(FormatError, match="can't parse entities") as info:
        parse_markdown_v2(source)
    assert message in str(info.value)


@given(texts)
def test_escaped_markdown_v2_parses_back_to_itself(s):
    assert parse_markdown_v2(md2_escape(s)) == (s, [])


@given(st.lists(st.tuples(texts, st.sampled_from(["*", "_", "~", "||", None])), max_size=6))
def test_markdown_v2_segments_cover_exactly_their_text(parts):
    parts = [(t, d) for t, d in parts if t or not d]  # "__" would open an underline
    source = "".join(f"{d}{md2_escape(t)}{d}" if d else md2_escape(t) for t, d in parts)
    text, ents = parse_markdown_v2(source)
    assert text == "".join(t for t, _ in parts)
    assert [c for _, c in covered(text, ents)] == [t for t, d in parts if d and t]


def test_legacy_markdown():
    text, ents = parse_markdown("*b* _i_ `c` [l](http://x) snake\\_case")
    assert text == "b i c l snake_case"
    assert [t for t, _ in covered(text, ents)] == ["bold", "italic", "code", "text_link"]
    with pytest.raises(FormatError, match="Can't find end of the entity"):
        parse_markdown("snake_case")


# ------------------------------------------------------------------------------ rules


def test_length_limit_counts_utf16_after_parsing_and_trimming():
    assert format_text("a" * 4096, None, None, limit=4096) == ("a" * 4096, [])
    assert format_text("  " + "a" * 4096 + "\n", None, None, limit=4096)[0] == "a" * 4096
    with pytest.raises(FormatError, match="^message is too long$"):
        format_text("a" * 4095 + "😀", None, None, limit=4096)
    assert u16len(format_text("<i>" + "😀" * 2048 + "</i>", "HTML", None, limit=4096)[0]) == 4096
    with pytest.raises(FormatError, match="^message caption is too long$"):
        format_text("c" * 1025, None, None, limit=1024, what="caption")
    assert format_text("", None, None, limit=1024, what="caption") == ("", [])


@pytest.mark.parametrize("text", ["", " \n\t", "<b> </b>"])
def test_empty_text(text):
    with pytest.raises(FormatError, match="^message text is empty$"):
        format_text(text, "HTML", None, limit=4096)


def test_unknown_parse_mode():
    with pytest.raises(FormatError, match="unsupported parse_mode"):
        format_text("x", "rst", None, limit=4096)


def test_explicit_entities_win_over_parse_mode_and_are_checked():
    assert format_text("<b>", "HTML", [{"type": "code", "offset": 0, "length": 3}], limit=4096) == (
        "<b>",
        [{"type": "code", "offset": 0, "length": 3}],
    )
    for bad in (
        [{"type": "bold", "offset": 1, "length": 5}],
        [{"type": "bold", "offset": -1, "length": 1}],
        [{"type": "blink", "offset": 0, "length": 1}],
        [{"type": "text_link", "offset": 0, "length": 1}],
        "not a list",
    ):
        with pytest.raises(FormatError, match="can't parse entities"):
            validate_entities("abc", bad)


def test_trim_moves_and_clips_entities():
    text, ents = trim(
        "  😀 hi  ",
        [{"type": "bold", "offset": 0, "length": 7}, {"type": "code", "offset": 7, "length": 2}],
    )
    assert text == "😀 hi"
    assert ents == [{"type": "bold", "offset": 0, "length": 5}]


def test_auto_entities_for_what_users_type():
    text = "/new@sandbox_bot fix it, /list ping @someone https://x.org/a."
    assert covered(text, auto_entities(text)) == [
        ("bot_command", "/new@sandbox_bot"),
        ("bot_command", "/list"),
        ("mention", "@someone"),
        ("url", "https://x.org/a"),
    ]
    assert auto_entities("a/b and path/to/file") == []


def test_inline_keyboards():
    kb = {
        "inline_keyboard": [
            [{"text": "A", "callback_data": "x" * 64}, {"text": "U", "url": "https://x.org"}]
        ]
    }
    assert check_inline_keyboard(kb) == kb
    assert check_inline_keyboard({"inline_keyboard": []}) is None
    assert check_inline_keyboard({"remove_keyboard": True}) is None
    assert check_inline_keyboard(None) is None
    for data in ("x" * 65, "é" * 33, ""):
        with pytest.raises(FormatError, match="^BUTTON_DATA_INVALID$"):
            check_inline_keyboard({"inline_keyboard": [[{"text": "A", "callback_data": data}]]})
    with pytest.raises(FormatError, match="Text buttons are unallowed"):
        check_inline_keyboard({"inline_keyboard": [[{"text": "A"}]]})


# ------------------------------------------------------------------------ drafts and topics


@pytest.mark.parametrize(
    ("text", "allow_empty", "expected"),
    [
        ("", True, ("", [])),  # a draft's "Thinking…" placeholder (Bot API 10.0)
        ("   ", True, ("", [])),
        (None, True, ("", [])),
        ("", False, "message text is empty"),
        ("  hi ", True, ("hi", [])),
        ("a" * 4097, True, "message is too long"),
    ],
)
def test_format_text_allows_an_empty_draft(text, allow_empty, expected):
    if isinstance(expected, str):
        with pytest.raises(FormatError, match=expected):
            format_text(text, None, None, limit=4096, allow_empty=allow_empty)
    else:
        assert format_text(text, None, None, limit=4096, allow_empty=allow_empty) == expected

@pytest.mark.parametrize(
    ("name", "required", "expected"),
    [
        ("api", True, "api"),
        ("n" * 128, True, "n" * 128),
        ("n" * 129, True, "TOPIC_TITLE_TOO_LONG"),
        ("", True, "TOPIC_TITLE_EMPTY"),
        (None, True, "TOPIC_TITLE_EMPTY"),
        ("", False, None),  # editForumTopic: keep the name
        (None, False, None),
    ],
)
def test_topic_names(name, required, expected):

    if expected is not None and expected.startswith("TOPIC_"):
        with pytest.raises(ApiError, match=expected) as err:
            check_name(name, required=required)
        assert err.value.code == 400
    else:
        assert check_name(name, required=required) == expected


@pytest.mark.parametrize(
    ("color", "expected"),
    [(None, 0x6FB9F0), (0xFB6F5F, 0xFB6F5F), (7322096, 7322096), (0x123456, None), (0, None)],
)
def test_topic_icon_colors(color, expected):

    if expected is None:
        with pytest.raises(ApiError, match="TOPIC_ICON_COLOR_INVALID"):
            check_color(color)
    else:
        assert check_color(color) == expected


@pytest.mark.parametrize(
    ("advance", "changes_at", "ended"),
    [
        (29.9, [0.0], None),
        (30.0, [0.0], "expired"),
        (45.0, [0.0, 20.0], None),  # a change restarts the 30 s
        (50.0, [0.0, 20.0], "expired"),
    ],
)
def test_drafts_expire_30_seconds_after_their_last_change(advance, changes_at, ended):

    bot = BotState("1:T", "b")
    bot.clock = lambda: bot.clock_offset  # type: ignore[method-assign]  # a frozen clock
    draft = Draft(chat_id=1, thread_id=None, draft_id=1, changed=changes_at[-1])
    bot.drafts.append(draft)
    bot.clock_offset = advance
    expire(bot)
    assert draft.ended == ended
