"""A session's file into its chat: the `FileOut` event, read from disk and sent to Telegram.

The worker judged the path (session_worker.outfiles) and the event carries it, not the bytes, so
the file is read here, as it is sent: opened without following a link at its last step, and only
when it is still a regular file within Telegram's 50 MB limit for bots. An image goes with
sendPhoto, anything else (or an image Telegram refuses as a photo) with sendDocument. What cannot
be sent becomes one sentence in the chat instead.

It must never send a file that is not a regular file, nor one over the limit.
"""
from __future__ import annotations

import asyncio
import logging
import os
import stat
from functools import partial

from bot.telegram_out import Refused, TelegramOut, attempt
from wire import messages as m

log = logging.getLogger(__name__)

MAX_UPLOAD = 50 * 1024 * 1024  # Telegram: what a bot may send


class Unsendable(Exception):
    """The file cannot be sent as it is now; str() is the sentence for the chat."""


def read_file(path: str, name: str, limit: int = MAX_UPLOAD) -> bytes:
    """The file's bytes, or Unsendable with the sentence that says why not."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        raise Unsendable(f"{name} is no longer there, so it was not sent: ask for it again"
                         " once it exists.") from None
    except OSError as exc:
        raise Unsendable(f"{name} could not be read ({exc.strerror}), so it was not sent:"
                         " check the file and ask for it again.") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise Unsendable(f"{name} is no longer a plain file, so it was not sent.")
    with os.fdopen(fd, "rb") as f:
        if st.st_size > limit:
            raise Unsendable(f"{name} is {st.st_size / (1024 * 1024):.1f} MB, over Telegram's"
                             " 50 MB limit for files a bot sends: compress or split it first.")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise Unsendable(f"{name} grew past Telegram's 50 MB limit for files a bot sends:"
                         " compress or split it first.")
    if not data:
        raise Unsendable(f"{name} is empty, and Telegram takes no empty files.")
    return data


async def send(out: TelegramOut, chat_id: int, body: m.FileOut, budget: float) -> int | None:
    """Send the file (photo or document); the message's id. Raises Unsendable with the sentence
    for the chat, or telegram_out's Unreachable/Blocked as every send does."""
    data = await asyncio.to_thread(read_file, body.path, body.name)
    caption = body.caption[:1024]
    if body.photo:
        try:
            return await attempt(partial(out.photo, chat_id, data, caption), "file_photo", budget)
        except Refused as exc:  # too big in pixels, an odd format: the file as it is
            log.info("event=photo_refused name=%r error=%r", body.name, str(exc))
    try:
        return await attempt(partial(out.document, chat_id, body.name, data, caption),
                             "file_document", budget)
    except Refused as exc:
        raise Unsendable(f"Telegram refused {body.name} ({exc}).") from None
