"""The chat-place tables of bot.db (a part of bot.journal.Journal): where each chat's pinned live
status is (`status`), each session's topic in each chat (`topics`, bot.topics), and which session
sent which message (`sent`, for reply-to routing). The schema and the connection are Journal's.
No Telegram calls here.
"""
from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

KEEP_SENT = 20_000  # reply-to routing remembers this many of the newest messages


class Places:
    if TYPE_CHECKING:
        def _exec(self, sql: str, args: tuple[object, ...] = ()) -> sqlite3.Cursor: ...
        def _relaxed(self, sql: str, args: tuple[object, ...] = ()) -> sqlite3.Cursor: ...
        def _one(self, sql: str, *args: object) -> tuple | None: ...  # type: ignore[type-arg]

    # ----------------------------------------------------------------------- live status

    def set_status_message(self, chat_id: int, message_id: int) -> None:
        self._exec(
            "INSERT INTO status (chat_id, message_id) VALUES (?, ?) ON CONFLICT(chat_id)"
            " DO UPDATE SET message_id = excluded.message_id",
            (chat_id, message_id),
        )

    def status_messages(self) -> dict[int, int]:
        """Every chat's live status message: chat -> message id."""
        return {int(r[0]): int(r[1]) for r in self._exec("SELECT chat_id, message_id FROM status")}

    # ----------------------------------------------------------------------- topics (bot.topics)

    def topic_rows(self) -> list[tuple[int, str, int | None, str, bool]]:
        """(chat, session, thread or None while only intended, title, closed) of every topic."""
        rows = self._exec("SELECT chat_id, session, thread_id, title, closed FROM topics")
        return [(int(r[0]), str(r[1]), None if r[2] is None else int(r[2]), str(r[3]),
                 bool(r[4])) for r in rows]

    def intend_topic(self, chat_id: int, session: str, title: str) -> None:
        """Before createForumTopic: the row without a thread (a crash leaves this intent)."""
        self._exec("INSERT INTO topics (chat_id, session, thread_id, title) VALUES (?, ?, NULL, ?)"
                   " ON CONFLICT(chat_id, session) DO UPDATE SET thread_id = NULL,"
                   " title = excluded.title, closed = 0", (chat_id, session, title))

    def set_topic(self, chat_id: int, session: str, thread_id: int | None, title: str,
                  closed: bool = False) -> None:
        self._exec("INSERT INTO topics (chat_id, session, thread_id, title, closed)"
                   " VALUES (?, ?, ?, ?, ?) ON CONFLICT(chat_id, session) DO UPDATE SET"
                   " thread_id = excluded.thread_id, title = excluded.title,"
                   " closed = excluded.closed", (chat_id, session, thread_id, title, int(closed)))

    def drop_topic(self, chat_id: int, session: str) -> None:
        self._exec("DELETE FROM topics WHERE chat_id = ? AND session = ?", (chat_id, session))

    # ----------------------------------------------------------------------- reply-to routing

    def remember_sent(self, chat_id: int, message_id: int, session: str) -> None:
        # Not fsynced: a power cut could only cost reply-to routing for this one message.
        self._relaxed("INSERT OR REPLACE INTO sent (chat_id, message_id, session) VALUES (?, ?, ?)",
                   (chat_id, message_id, session))

    def sender_of(self, chat_id: int, message_id: int) -> str | None:
        """The session that sent this message (None: a message of no session)."""
        row = self._one("SELECT session FROM sent WHERE chat_id = ? AND message_id = ?", chat_id,
                        message_id)
        return str(row[0]) if row else None

    def prune_sent(self, keep: int = KEEP_SENT) -> None:
        self._exec("DELETE FROM sent WHERE rowid <= (SELECT MAX(rowid) FROM sent) - ?", (keep,))
