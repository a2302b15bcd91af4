"""Telegram's formatting modes as pure functions: HTML, MarkdownV2 and (legacy) Markdown parsed
into plain text plus entities, offsets and lengths in UTF-16 code units, as Telegram stores them.

Errors raise :class:`FormatError` whose message is the part after "Bad Request: ".
"""

from __future__ import annotations

import re
from typing import Any

Entity = dict[str, Any]


class FormatError(ValueError):
    """A text that Telegram refuses; ``str(exc)`` is the description after "Bad Request: "."""


def u16len(s: str) -> int:
    """Length in UTF-16 code units, the unit of Telegram's offsets and limits."""
    return len(s.encode("utf-16-le")) // 2


def u16slice(s: str, offset: int, length: int) -> str:
    """The substring at a UTF-16 offset/length (what an entity covers)."""
    b = s.encode("utf-16-le")
    return b[2 * offset : 2 * (offset + length)].decode("utf-16-le", errors="replace")


def sort_entities(entities: list[Entity]) -> list[Entity]:
    return sorted(entities, key=lambda e: (e["offset"], -e["length"], e["type"]))


class _Builder:
    """Accumulates output text and its running UTF-16 length."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.pos = 0

    def add(self, s: str) -> None:
        self.parts.append(s)
        self.pos += u16len(s)

    def text(self) -> str:
        return "".join(self.parts)


def _byte_offset(src: str, i: int) -> int:
    return len(src[:i].encode("utf-8"))


def _drop_nested_in_code(entities: list[Entity], start: int, end: int) -> None:
    """Telegram keeps no formatting inside code and pre."""
    entities[:] = [
        e for e in entities if not (e["offset"] >= start and e["offset"] + e["length"] <= end)
    ]


# ---------------------------------------------------------------------------------------- HTML

_HTML_TAGS = {
    "b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline",
    "ins": "underline", "s": "strikethrough", "strike": "strikethrough", "del": "strikethrough",
    "tg-spoiler": "spoiler", "span": "spoiler", "code": "code", "pre": "pre", "a": "text_link",
    "blockquote": "blockquote", "tg-emoji": "custom_emoji",
}  # fmt: skip
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_NAME_CHARS = re.compile(r"[A-Za-z0-9_-]*")


def _html_entity(src: str, i: int) -> tuple[str | None, int]:
    """Decode ``&...;`` at i; (None, 0) when it is not one, and the '&' stays literal."""
    m = re.compile(r"&(#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6}|[A-Za-z]{2,8});").match(src, i)
    if not m:
        return None, 0
    body = m.group(1)
    if body[0] == "#":
        code = int("0" + body[1:].lower(), 0) if body[1] in "xX" else int(body[1:])
        if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            return None, 0
        return chr(code), m.end() - i
    if body in _NAMED:
        return _NAMED[body], m.end() - i
    return None, 0


def parse_html(src: str) -> tuple[str, list[Entity]]:
    out = _Builder()
    entities: list[Entity] = []
    stack: list[dict[str, Any]] = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if c == "&":
            decoded, used = _html_entity(src, i)
            out.add(decoded if decoded is not None else "&")
            i += used or 1
            continue
        if c != "<":
            j = i
            while j < n and src[j] not in "<&":
                j += 1
            out.add(src[i:j])
            i = j
            continue
        begin = i
        at = _byte_offset(src, begin)
        i += 1
        if i < n and src[i] == "/":
            name = _NAME_CHARS.match(src, i + 1).group(0)  # type: ignore[union-attr]
            j = i + 1 + len(name)
            while j < n and src[j].isspace():
                j += 1
            if j >= n or src[j] != ">":
                raise FormatError(f"can't parse entities: Unclosed end tag at byte offset {at}")
            name = name.lower()
            if not stack:
                raise FormatError(f"can't parse entities: Unexpected end tag at byte offset {at}")
            top = stack.pop()
            if top["tag"] != name:
                raise FormatError(
                    f"can't parse entities: Unmatched end tag at byte offset {at}, "
                    f'expected "</{top["tag"]}>", found "</{name}>"'
                )
            _close_html(top, out.pos, entities, stack)
            i = j + 1
            continue
        name = _NAME_CHARS.match(src, i).group(0).lower()  # type: ignore[union-attr]
        if name not in _HTML_TAGS:
            raise FormatError(
                f'can\'t parse entities: Unsupported start tag "{name}" at byte offset {at}'
            )
        i += len(name)
        attrs: dict[str, str] = {}
        while True:
            while i < n and src[i].isspace():
                i += 1
            if i >= n:
                raise FormatError(f"can't parse entities: Unclosed start tag at byte offset {at}")
            if src[i] == ">":
                i += 1
                break
            attr = _NAME_CHARS.match(src, i).group(0).lower()  # type: ignore[union-attr]
            if not attr:
                raise FormatError(
                    f'can\'t parse entities: Empty attribute name in the tag "{name}" '
                    f"at byte offset {at}"
                )
            i += len(attr)
            while i < n and src[i].isspace():
                i += 1
            value = ""
            if i < n and src[i] == "=":
                i += 1
                while i < n and src[i].isspace():
                    i += 1
                if i < n and src[i] in "\"'":
                    end = src.find(src[i], i + 1)
                    if end < 0:
                        raise FormatError(
                            f"can't parse entities: Unclosed start tag at byte offset {at}"
                        )
                    raw, i = src[i + 1 : end], end + 1
                else:
                    j = i
                    while j < n and not src[j].isspace() and src[j] != ">":
                        j += 1
                    raw, i = src[i:j], j
                value = _decode_attr(raw)
            attrs[attr] = value
        if name == "span" and attrs.get("class") != "tg-spoiler":
            raise FormatError(
                "can't parse entities: "
                f'Tag "span" must have class "tg-spoiler" at byte offset {at}'
            )
        stack.append({"tag": name, "start": out.pos, "attrs": attrs})
    if stack:
        raise FormatError(
            "can't parse entities: Can't find end tag corresponding to start tag "
            f'"{stack[-1]["tag"]}"'
        )
    return out.text(), sort_entities(entities)


def _decode_attr(raw: str) -> str:
    res, i = [], 0
    while i < len(raw):
        if raw[i] == "&":
            decoded, used = _html_entity(raw, i)
            if decoded is not None:
                res.append(decoded)
                i += used
                continue
        res.append(raw[i])
        i += 1
    return "".join(res)


def _close_html(
    top: dict[str, Any], end: int, entities: list[Entity], stack: list[dict[str, Any]]
) -> None:
    tag, start, attrs = top["tag"], top["start"], top["attrs"]
    kind = _HTML_TAGS[tag]
    ent: Entity = {"type": kind, "offset": start, "length": end - start}
    if tag == "code" and stack and stack[-1]["tag"] == "pre":
        # <pre><code class="language-x"> is one pre entity with a language
        cls = attrs.get("class", "")
        if cls.startswith("language-") and len(cls) > 9:
            stack[-1]["language"] = cls[9:]
        return
    if kind in ("code", "pre"):
        _drop_nested_in_code(entities, start, end)
        lang = top.get("language")
        if lang:
            ent["language"] = lang
    elif kind == "text_link":
        href = attrs.get("href", "")
        if not href:
            return
        ent["url"] = href
    elif kind == "blockquote" and "expandable" in attrs:
        ent["type"] = "expandable_blockquote"
    elif kind == "custom_emoji":
        if not attrs.get("emoji-id"):
            return
        ent["custom_emoji_id"] = attrs["emoji-id"]
    if ent["length"] > 0:
        entities.append(ent)


# ---------------------------------------------------------------------------------- MarkdownV2

_MDV2_RESERVED = set("_*[]()~`>#+-=|{}.!")
_MDV2_NAMES = {
    "bold": "Bold", "italic": "Italic", "underline": "Underline", "strikethrough": "Strikethrough",
    "spoiler": "Spoiler", "code": "Code", "pre": "Pre", "text_link": "TextUrl",
    "custom_emoji": "CustomEmoji",
}  # fmt: skip


def parse_markdown_v2(src: str) -> tuple[str, list[Entity]]:
    out = _Builder()
    entities: list[Entity] = []
    stack: list[dict[str, Any]] = []
    quote: dict[str, Any] | None = None
    i, n = 0, len(src)

    def reserved_error(ch: str) -> FormatError:
        return FormatError(
            f"can't parse entities: Character '{ch}' is reserved and must be escaped with the "
            "preceding '\\'"
        )

    def close_quote(end: int) -> None:
        nonlocal quote
        if quote is not None and end > quote["offset"]:
            entities.append(
                {"type": quote["type"], "offset": quote["offset"], "length": end - quote["offset"]}
            )
        quote = None

    while i < n:
        c = src[i]
        top = stack[-1] if stack else None
        in_code = top is not None and top["type"] in ("code", "pre")
        line_start = i == 0 or src[i - 1] == "\n"
        if line_start and not in_code:
            if c == ">" or src.startswith("**>", i):
                if quote is None:
                    expandable = src.startswith("**>", i)
                    quote = {
                        "type": "expandable_blockquote" if expandable else "blockquote",
                        "offset": out.pos,
                    }
                i += 3 if src.startswith("**>", i) else 1
                continue
            if quote is not None:
                # the quote ends before the newline that separates it from this line
                close_quote(out.pos - 1)
        if c == "\\" and i + 1 < n and 0 < ord(src[i + 1]) < 127:
            out.add(src[i + 1])
            i += 2
            continue
        if in_code:
            assert top is not None
            if c == "`" and (top["type"] == "code" or src.startswith("```", i)):
                stack.pop()
                _drop_nested_in_code(entities, top["offset"], out.pos)
                ent = {
                    "type": top["type"],
                    "offset": top["offset"],
                    "length": out.pos - top["offset"],
                }
                if top.get("language"):
                    ent["language"] = top["language"]
                if ent["length"] > 0:
                    entities.append(ent)
                i += 3 if top["type"] == "pre" else 1
                continue
            out.add(c)
            i += 1
            continue
        if (
            quote is not None
            and quote["type"] == "expandable_blockquote"
            and src.startswith("||", i)
        ):
            rest = i + 2
            if rest >= n or src[rest] == "\n":
                close_quote(out.pos)
                i = rest
                continue
        if c not in _MDV2_RESERVED:
            out.add(c)
            i += 1
            continue
        # a reserved character: the end of the open entity, the start of a new one, or an error
        if top is not None:
            closing = {
                "bold": c == "*",
                "italic": c == "_",
                "underline": src.startswith("__", i),
                "strikethrough": c == "~",
                "spoiler": src.startswith("||", i),
                "text_link": c == "]",
                "custom_emoji": c == "]",
            }.get(top["type"], False)
            if closing:
                stack.pop()
                width = 2 if top["type"] in ("underline", "spoiler") else 1
                i += width
                ent = {
                    "type": top["type"],
                    "offset": top["offset"],
                    "length": out.pos - top["offset"],
                }
                if top["type"] in ("text_link", "custom_emoji"):
                    url, i = _md_url(src, i)
                    if top["type"] == "custom_emoji":
                        m = re.fullmatch(r"tg://emoji\?id=(\d+)", url or "")
                        if not m:
                            raise FormatError(
                                "can't parse entities:"
                                " Custom emoji entity must contain a tg://emoji URL"
                            )
                        ent["custom_emoji_id"] = m.group(1)
                    elif not url:
                        continue
                    else:
                        ent["url"] = url
                if ent["length"] > 0:
                    entities.append(ent)
                continue
        kind, width = None, 1
        if c == "*":
            kind = "bold"
        elif c == "_":
            kind, width = ("underline", 2) if src.startswith("__", i) else ("italic", 1)
        elif c == "~":
            kind = "strikethrough"
        elif c == "|" and src.startswith("||", i):
            kind, width = "spoiler", 2
        elif c == "[":
            kind = "text_link"
        elif c == "!" and src.startswith("![", i):
            kind, width = "custom_emoji", 2
        elif c == "`":
            if src.startswith("```", i):
                kind, width = "pre", 3
            else:
                kind = "code"
        if kind is None:
            raise reserved_error(c)
        if _has_open(stack, kind):
            raise reserved_error(c)
        ent_open: dict[str, Any] = {"type": kind, "offset": out.pos, "at": _byte_offset(src, i)}
        i += width
        if kind == "pre":
            nl = src.find("\n", i)
            lang = src[i:nl] if nl >= 0 else ""
            if nl >= 0 and lang and not any(ch in lang for ch in " `"):
                ent_open["language"] = lang
                i = nl + 1
            elif nl == i:
                i += 1
        stack.append(ent_open)
    if stack:
        top = stack[-1]
        raise FormatError(
            f"can't parse entities: Can't find end of {_MDV2_NAMES[top['type']]} entity at byte "
            f"offset {top['at']}"
        )
    close_quote(out.pos)
    return out.text(), sort_entities(entities)


def _has_open(stack: list[dict[str, Any]], kind: str) -> bool:
    return any(e["type"] == kind for e in stack)


def _md_url(src: str, i: int) -> tuple[str | None, int]:
    """After ``]``: an optional ``(url)`` with ``\\)`` and ``\\\\`` escapes."""
    if i >= len(src) or src[i] != "(":
        return None, i
    j, url = i + 1, []
    while j < len(src) and src[j] != ")":
        if src[j] == "\\" and j + 1 < len(src):
            j += 1
        url.append(src[j])
        j += 1
    if j >= len(src):
        raise FormatError("can't parse entities: Can't find end of a URL")
    return "".join(url), j + 1


# ------------------------------------------------------------------------- Markdown (legacy)


def parse_markdown(src: str) -> tuple[str, list[Entity]]:
    out = _Builder()
    entities: list[Entity] = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if c == "\\" and i + 1 < n and src[i + 1] in "_*`[":
            out.add(src[i + 1])
            i += 2
            continue
        if c not in "_*`[":
            out.add(c)
            i += 1
            continue
        at = _byte_offset(src, i)
        if c == "[":
            close = src.find("]", i + 1)
            if close < 0:
                raise FormatError(
                    "can't parse entities:"
                    f" Can't find end of the entity starting at byte offset {at}"
                )
            label = src[i + 1 : close]
            url, j = _md_url(src, close + 1)
            start = out.pos
            out.add(label)
            if url and label:
                entities.append(
                    {"type": "text_link", "offset": start, "length": out.pos - start, "url": url}
                )
            i = j
            continue
        delim = "```" if src.startswith("```", i) else c
        end = src.find(delim, i + len(delim))
        if end < 0:
            raise FormatError(
                f"can't parse entities: Can't find end of the entity starting at byte offset {at}"
            )
        inner = src[i + len(delim) : end]
        ent: Entity = {
            "type": {"_": "italic", "*": "bold", "`": "code", "```": "pre"}[delim],
            "offset": out.pos,
        }
        if delim == "```":
            first, nl, rest = inner.partition("\n")
            if nl and first and " " not in first:
                ent["language"], inner = first, rest
        out.add(inner)
        ent["length"] = out.pos - ent["offset"]
        if ent["length"]:
            entities.append(ent)
        i = end + len(delim)
    return out.text(), sort_entities(entities)
