"""Where in a chat a message goes: the topic (message_thread_id) of what is being answered.

A chat with topics (a private chat whose bot has topic mode on, or a forum supergroup) takes a
`message_thread_id` on every send; without one a message lands in General. Which topic is never
a choice of the code that sends: it is the topic of the session whose event is being shown
(bot.delivery sets it per event) or of the update being handled (bot.poller sets it per update,
so every reply of a command or a tap lands where the user wrote). It travels as a context
variable, so every send below that point (bot.telegram_out, the draft streamer, a typing task
started there) carries it, and code that knows nothing of topics stays as it is.

Pure: no I/O. It must never be set outside a `with in_thread(...)` block (the value would leak
into the next update or event of the same task).
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from telegram import Update

_THREAD: ContextVar[int | None] = ContextVar("switchboard_thread", default=None)


def thread() -> int | None:
    """The topic the current send goes to (None: the chat itself, General)."""
    return _THREAD.get()


def move_to(thread_id: int | None) -> None:
    """The topic was recreated (or is gone): the rest of this block sends to `thread_id`."""
    _THREAD.set(thread_id)


@contextmanager
def in_thread(thread_id: int | None) -> Iterator[None]:
    token = _THREAD.set(thread_id)
    try:
        yield
    finally:
        _THREAD.reset(token)


def thread_of(update: Update) -> int | None:
    """The topic an update came from (a message's, or the message of a tapped button)."""
    msg = update.effective_message
    if msg is None or not msg.is_topic_message:
        return None
    return msg.message_thread_id
