"""Telegram's rules for what a bot sends, as pure functions: entity lists, trimming, length
limits, inline keyboards, and the entities Telegram adds to what users type.

Errors raise :class:`FormatError` whose message is the part after "Bad Request: ".
"""

from __future__ import annotations

import re
from typing import Any

from sandbox.telegram_format import (
    Entity,
    FormatError,
    parse_html,
    parse_markdown,
    parse_markdown_v2,
    sort_entities,
    u16len,
)

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 64


ENTITY_TYPES = {
    "mention", "hashtag", "cashtag", "bot_command", "url", "email", "phone_number", "bold",
    "italic", "underline", "strikethrough", "spoiler", "blockquote", "expandable_blockquote",
    "code", "pre", "text_link", "text_mention", "custom_emoji",
}  # fmt: skip


def validate_entities(text: str, raw: Any) -> list[Entity]:
    """An explicit ``entities`` list: each inside the text, of a known type, complete."""
    if not isinstance(raw, list):
        raise FormatError("can't parse entities JSON object")
    total = u16len(text)
    result: list[Entity] = []
    for e in raw:
        if not isinstance(e, dict) or not isinstance(e.get("type"), str):
            raise FormatError("can't parse entities: entity type is not specified")
        offset, length = e.get("offset"), e.get("length")
        if not isinstance(offset, int) or not isinstance(length, int) or offset < 0 or length < 0:
            raise FormatError("can't parse entities: wrong entity offset or length")
        if offset + length > total:
            raise FormatError(
                f"can't parse entities: entity ends at offset {offset + length}, "
                f"beyond the end of the text ({total})"
            )
        kind = e["type"]
        if kind not in ENTITY_TYPES:
            raise FormatError(f'can\'t parse entities: unsupported entity type "{kind}"')
        ent: Entity = {"type": kind, "offset": offset, "length": length}
        for key, required in (
            ("url", "text_link"),
            ("user", "text_mention"),
            ("custom_emoji_id", "custom_emoji"),
        ):
            if kind == required and not e.get(key):
                raise FormatError(f"can't parse entities: {kind} entity has no {key}")
            if kind == required:
                ent[key] = e[key]
        if kind == "pre" and e.get("language"):
            ent["language"] = e["language"]
        if length > 0:
            result.append(ent)
    return sort_entities(result)


def trim(text: str, entities: list[Entity]) -> tuple[str, list[Entity]]:
    """Telegram drops leading and trailing whitespace and clips entities to what remains."""
    stripped = text.strip()
    if stripped == text:
        return text, entities
    lead = u16len(text[: len(text) - len(text.lstrip())])
    total = u16len(stripped)
    result = []
    for e in entities:
        start = max(e["offset"] - lead, 0)
        end = min(e["offset"] + e["length"] - lead, total)
        if end > start:
            result.append({**e, "offset": start, "length": end - start})
    return stripped, result


def format_text(
    text: Any,
    parse_mode: Any,
    entities: Any,
    *,
    limit: int,
    what: str = "text",
    allow_empty: bool = False,
) -> tuple[str, list[Entity]]:
    """Everything sendMessage / editMessageText / captions do to text. ``what`` is "text" or
    "caption"; ``allow_empty`` for a draft (Bot API 10.0: an empty one shows "Thinking…");
    raises FormatError with Telegram's description."""
    if text is None:
        text = ""
    if not isinstance(text, str):
        text = str(text)
    if entities is not None:
        ents = validate_entities(text, entities)
    elif parse_mode:
        mode = str(parse_mode).lower()
        parser = {
            "html": parse_html,
            "markdownv2": parse_markdown_v2,
            "markdown": parse_markdown,
        }.get(mode)
        if parser is None:
            raise FormatError("unsupported parse_mode")
        text, ents = parser(text)
    else:
        ents = []
    text, ents = trim(text, ents)
    if what == "text" and not text and not allow_empty:
        raise FormatError("message text is empty")
    if u16len(text) > limit:
        raise FormatError(
            "message is too long" if what == "text" else "message caption is too long"
        )
    return text, ents


_AUTO = re.compile(
    r"(?P<bot_command>(?<![\w/])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?![\w/]))"
    r"|(?P<mention>(?<![\w@])@[A-Za-z0-9_]{5,32}(?!\w))"
    r"|(?P<url>\bhttps?://[^\s<>\"]+[^\s<>\".,;:!?)\]'])"
)


def auto_entities(text: str) -> list[Entity]:
    """Entities Telegram finds by itself in what a user types."""
    result = []
    for m in _AUTO.finditer(text):
        kind = m.lastgroup
        assert kind is not None
        result.append(
            {"type": kind, "offset": u16len(text[: m.start()]), "length": u16len(m.group(0))}
        )
    return result


def check_inline_keyboard(markup: Any) -> dict[str, Any] | None:
    """Validate a reply_markup; return the inline keyboard to store on the message (or None)."""
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise FormatError("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" not in markup:
        for key in ("keyboard", "remove_keyboard", "force_reply"):
            if key in markup:
                return None
        raise FormatError("can't parse reply keyboard markup JSON object")
    rows = markup["inline_keyboard"]
    if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
        raise FormatError(
            'field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays'
        )
    clean_rows = []
    for row in rows:
        clean = []
        for b in row:
            if not isinstance(b, dict) or not isinstance(b.get("text"), str):
                raise FormatError(
                    'can\'t parse inline keyboard button: Field "text" must be of type String'
                )
            if "callback_data" in b:
                data = b["callback_data"]
                if (
                    not isinstance(data, str)
                    or not data
                    or len(data.encode("utf-8")) > MAX_CALLBACK_DATA
                ):
                    raise FormatError("BUTTON_DATA_INVALID")
            elif not any(
                k in b
                for k in (
                    "url",
                    "web_app",
                    "login_url",
                    "switch_inline_query",
                    "switch_inline_query_current_chat",
                    "switch_inline_query_chosen_chat",
                    "copy_text",
                    "callback_game",
                    "pay",
                )
            ):
                raise FormatError(
                    "can't parse inline keyboard button:"
                    " Text buttons are unallowed in the inline keyboard"
                )
            if b.get("url") is not None and not re.match(r"^(https?|tg)://\S+$", str(b["url"])):
                raise FormatError("BUTTON_URL_INVALID")
            clean.append(dict(b))
        if clean:
            clean_rows.append(clean)
    return {"inline_keyboard": clean_rows} if clean_rows else None


def image_size(data: bytes) -> tuple[int, int]:
    """Width and height of a PNG, GIF or JPEG (0, 0 if unknown): PhotoSize needs them."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                i += 1
                continue
            marker = data[i + 1]
            seg = int.from_bytes(data[i + 2 : i + 4], "big")
            if marker in (
                0xC0,
                0xC1,
                0xC2,
                0xC3,
                0xC5,
                0xC6,
                0xC7,
                0xC9,
                0xCA,
                0xCB,
                0xCD,
                0xCE,
                0xCF,
            ):
                return int.from_bytes(data[i + 7 : i + 9], "big"), int.from_bytes(
                    data[i + 5 : i + 7], "big"
                )
            i += 2 + seg
    return 0, 0
