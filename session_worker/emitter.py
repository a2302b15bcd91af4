"""Where every event the worker sends leaves it: `Emitter.emit` addresses a body to the chat and
the message it belongs to (the running turn's, unless told otherwise) and hands it to the chat
link, which stores durable ones in the outbox before sending (chat.py).

It must never decide what to say (the router, the turn runner and the prompts do) and never be
used before the chat link is attached at start-up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from session_worker.chat import ChatLink
from session_worker.store import InboxItem
from wire import messages as m

log = logging.getLogger(__name__)


class Emitter:
    def __init__(self, current: Callable[[], InboxItem | None]) -> None:
        self._current = current  # the message of the running turn, if one runs
        self.chat: ChatLink | None = None

    def emit(
        self,
        body: m.EventBody,
        *,
        ephemeral: bool = False,
        chat_id: int | None = None,
        key: str | None = None,
    ) -> None:
        item = self._current()
        if chat_id is None and item is not None:
            chat_id = item.chat_id
        if key is None:
            key = item.key if item is not None else ""
        assert self.chat is not None
        self.chat.publish(body, chat_id, key, ephemeral)

    def notice(
        self, level: str, message: str, *, chat_id: int | None = None, key: str | None = None
    ) -> None:
        log.info("event=notice level=%s message=%r", level, message)
        self.emit(m.Notice(level=level, message=message), chat_id=chat_id, key=key)
