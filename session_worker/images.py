"""Photos from the chat as image content: the user turn's content blocks for the CLI's stdin.

`user_content` turns a message's text and its photos (files the bot saved in the session's
uploads folder) into what the Messages API takes: the text alone when there is no usable image,
else one `image` block per photo (base64, with the media type read from the file's first bytes)
followed by the text. A photo that is not an image the API reads (JPEG, PNG, GIF, WebP), too big
for it, outside the uploads folder or behind a link is left out: its path stays in the text, so
Claude can still open it.

It must never read a file outside the uploads folder and never follow a link to one.
"""
from __future__ import annotations

import base64
import logging
import os
import stat
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MAX_IMAGE = 3_750_000  # the API takes 5 MB of base64 per image: this many bytes before it


def media_type(head: bytes) -> str | None:
    """The image type the API accepts, from a file's first bytes; None for anything else."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def _read(path: str, root: Path) -> bytes | None:
    real = os.path.realpath(path)
    top = os.path.realpath(root)
    if not real.startswith(top.rstrip(os.sep) + os.sep):
        log.warning("event=image_outside path=%r", path)
        return None
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        log.warning("event=image_unreadable path=%r error=%r", path, exc.strerror)
        return None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        log.warning("event=image_not_a_file path=%r", path)
        return None
    with os.fdopen(fd, "rb") as f:
        data = f.read(MAX_IMAGE + 1)
    if len(data) > MAX_IMAGE:
        log.info("event=image_too_big path=%r", path)
        return None
    return data


def image_block(data: bytes) -> dict[str, Any] | None:
    kind = media_type(data[:16])
    if kind is None:
        return None
    return {"type": "image",
            "source": {"type": "base64", "media_type": kind,
                       "data": base64.b64encode(data).decode()}}


def user_content(text: str, images: tuple[str, ...] | list[str],
                 root: Path) -> str | list[dict[str, Any]]:
    """The turn's content: `text`, or the images' blocks then the text (see the module doc)."""
    blocks: list[dict[str, Any]] = []
    for path in images:
        data = _read(path, root)
        block = image_block(data) if data is not None else None
        if block is not None:
            blocks.append(block)
    if not blocks:
        return text
    return [*blocks, {"type": "text", "text": text or "(photos)"}]
