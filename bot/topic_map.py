"""Which topic is whose: the (chat, topic) <-> session map, in memory and in bot.db.

Delivery asks on every event which topic its session has in a chat, so the map lives in memory;
bot.db (`topics`) is written first, so a crash never leaves a topic only in memory. A row without
a thread is an intent: its createForumTopic may not have happened (bot.topics creates it when
the session next needs it). No Telegram calls here.
"""
from __future__ import annotations

from bot.journal import Journal

Key = tuple[int, str]  # (chat, session)


class TopicMap:
    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.private_topics = False  # getMe's has_topics_enabled (set by bot.topics)
        self._threads: dict[Key, int] = {}
        self._sessions: dict[tuple[int, int], str] = {}
        self.titles: dict[Key, str] = {}
        self.closed: set[Key] = set()
        self.intended: set[Key] = set()
        for chat, session, thread, title, closed in journal.topic_rows():
            self._remember(chat, session, thread, title, closed)

    def _remember(self, chat: int, session: str, thread: int | None, title: str,
                  closed: bool) -> None:
        key = (chat, session)
        old = self._threads.pop(key, None)
        if old is not None:
            self._sessions.pop((chat, old), None)
        self.intended.discard(key)
        self.closed.discard(key)
        self.titles[key] = title
        if thread is None:
            self.intended.add(key)
            return
        self._threads[key] = thread
        self._sessions[(chat, thread)] = session
        if closed:
            self.closed.add(key)

    def thread(self, chat: int, session: str) -> int | None:
        """The session's topic in this chat (None: it has none there)."""
        return self._threads.get((chat, session))

    def session_at(self, chat: int, thread: int) -> str | None:
        return self._sessions.get((chat, thread))

    def chats_of(self, session: str) -> list[int]:
        """The chats where this session has a topic, lowest id first."""
        return sorted(c for c, s in self._threads if s == session)

    def items(self) -> list[tuple[int, str, int]]:
        return [(c, s, t) for (c, s), t in sorted(self._threads.items())]

    def intend(self, chat: int, session: str, title: str) -> None:
        self.journal.intend_topic(chat, session, title)
        self._remember(chat, session, None, title, False)

    def record(self, chat: int, session: str, thread: int, title: str,
               closed: bool = False) -> None:
        self.journal.set_topic(chat, session, thread, title, closed)
        self._remember(chat, session, thread, title, closed)

    def set_title(self, chat: int, session: str, title: str) -> None:
        thread = self.thread(chat, session)
        if thread is not None:
            self.record(chat, session, thread, title, (chat, session) in self.closed)

    def set_closed(self, chat: int, session: str, closed: bool) -> None:
        thread = self.thread(chat, session)
        if thread is not None:
            self.record(chat, session, thread, self.titles.get((chat, session), ""), closed)

    def drop(self, chat: int, session: str) -> None:
        self.journal.drop_topic(chat, session)
        key = (chat, session)
        thread = self._threads.pop(key, None)
        if thread is not None:
            self._sessions.pop((chat, thread), None)
        self.titles.pop(key, None)
        self.closed.discard(key)
        self.intended.discard(key)
