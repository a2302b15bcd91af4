"""bot.db: the bot's own durable memory (SQLite, WAL), so a kill -9 loses nothing.

- updates:   every update from an allowed user, written before the next getUpdates confirms it,
             marked done once its handler ran (a restart re-runs the ones not done).
- handoffs:  user turns waiting for their worker's `Accepted`; resent until then.
- delivered: per session, the last event seq that Telegram accepted; replay resumes after it.
- active:    per chat, the session plain text goes to. Also kept in memory (this process is the
             file's only writer, so the copy cannot go stale): delivery asks on every streamed
             delta whether its session is the chat's active one, and that must cost no SQL.
- prompts:   permission prompts shown with buttons; a button's callback data is the row number.
- drafts:    the messages of a streamed answer in progress, so a restarted bot replaces them.
- retries:   messages a user's stop cut short, behind their Retry button (its data is the row).
- topics:    per (chat, session), the session's topic (bot.topics): the row is written before
             createForumTopic is called (thread NULL: intended), so a crash leaves an intent, not
             a topic nobody knows; also the title last set and whether the bot closed it.
- sent:      which session sent which message (chat, message id), for reply-to routing.
- status:    per chat, the message id of its pinned live status (bot.live_status), so a
             restarted bot edits that message instead of posting another.
The topics, sent and status tables are read and written by bot.journal_places, a part of
`Journal`.

Durability: every write survives a kill -9 of the bot the moment it returns (WAL: the frames
are in the file). Most writes are also fsynced at once (synchronous=FULL). The ones a warm turn
makes are not, so that no fsync holds up the bot's loop while an answer streams; the WAL is
fsynced in a thread (`sync`) where a power cut would matter:
- a new update (`record_update`), its hand-off and its `mark_done`: the poller syncs before its
  next getUpdates tells Telegram the update arrived; a power cut can only make a restarted bot
  run a not-done update again, which its hand-off key makes harmless;
- `handoffs_done`: a part that goes again after a power cut is one the worker already has;
- `set_delivered`: bot.delivery syncs it before the session's next durable event is shown, so a
  power cut repeats at most one event per session, as a kill -9 does;
- `remember_sent`: a power cut could only cost reply-to routing for that message;
- `set_draft`, `clear_draft`: a power cut could leave one partial message not replaced.
Any later FULL write syncs them too.

Only the bot opens this file. Strangers' updates never reach it. No Telegram calls here.
A storage error (disk full, I/O) is never swallowed: it is logged with its fix, kept in
`failure` (the bot's heartbeat reports it, so the supervisor restarts the bot) and raised as
`StorageError`, whose str() is that one sentence.
"""
from __future__ import annotations

import json
import logging
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from bot.journal_places import Places
from wire import dbfiles, storage
from wire.storage import StorageFailure

log = logging.getLogger(__name__)

KEEP_DONE_UPDATES = 1000
KEEP_CLOSED_PROMPTS = 1000  # older closed prompts are long delivered: a replay never shows them

SCHEMA = """
CREATE TABLE IF NOT EXISTS updates (
    update_id INTEGER PRIMARY KEY, chat_id INTEGER, body TEXT NOT NULL, done INTEGER DEFAULT 0);
CREATE TABLE IF NOT EXISTS handoffs (
    n INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT UNIQUE NOT NULL, session TEXT NOT NULL,
    chat_id INTEGER NOT NULL, message_id INTEGER, text TEXT NOT NULL, attachments TEXT NOT NULL,
    created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS delivered (session TEXT PRIMARY KEY, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS active (chat_id INTEGER PRIMARY KEY, session TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS prompts (
    n INTEGER PRIMARY KEY AUTOINCREMENT, session TEXT NOT NULL, prompt_id TEXT NOT NULL,
    chat_id INTEGER NOT NULL, message_id INTEGER, text TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL DEFAULT 'open', UNIQUE (session, prompt_id));
CREATE TABLE IF NOT EXISTS drafts (
    session TEXT PRIMARY KEY, chat_id INTEGER NOT NULL, message_ids TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS status (chat_id INTEGER PRIMARY KEY, message_id INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS retries (
    n INTEGER PRIMARY KEY AUTOINCREMENT, session TEXT NOT NULL, key TEXT NOT NULL,
    chat_id INTEGER NOT NULL, text TEXT NOT NULL, UNIQUE (session, key));
CREATE TABLE IF NOT EXISTS topics (
    chat_id INTEGER NOT NULL, session TEXT NOT NULL, thread_id INTEGER,
    title TEXT NOT NULL DEFAULT '', closed INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (chat_id, session));
CREATE TABLE IF NOT EXISTS sent (
    chat_id INTEGER NOT NULL, message_id INTEGER NOT NULL, session TEXT NOT NULL,
    PRIMARY KEY (chat_id, message_id));
"""
# How often an update may be started before a restarted bot gives it up: one whose handler
# takes the bot down with it would otherwise run again at every start. Three, not two: a kill
# from outside (an OOM killer, a reboot) can land in one handler twice, and that update is the
# user's message, not the culprit.
MAX_UPDATE_STARTS = 3
SESSION_TABLES = ("delivered", "handoffs", "active", "drafts", "prompts", "retries", "topics",
                  "sent")


class StorageError(Exception):
    """bot.db could not be read or written; str() is the sentence with the fix."""


@dataclass(frozen=True)
class Handoff:
    key: str
    session: str
    chat_id: int
    text: str
    message_id: int | None = None
    attachments: list[str] = field(default_factory=list)
    created: float = 0.0
    images: list[str] = field(default_factory=list)  # photos: sent to Claude as images
    # What it may be joined with into one turn (bot.joiner): "album:<media_group_id>", "text"
    # for a text message, "long" for one near Telegram's length limit, "" for nothing.
    joins: str = ""


@dataclass(frozen=True)
class Prompt:
    n: int
    session: str
    prompt_id: str
    chat_id: int
    message_id: int | None
    text: str
    state: str


class Journal(Places):
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.failure = StorageFailure(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        dbfiles.private_db(self.path)  # 0600 before SQLite makes -wal and -shm with its mode
        self._db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(SCHEMA)
        try:  # bot.db files made before updates were counted as they start
            self._db.execute("ALTER TABLE updates ADD COLUMN starts INTEGER NOT NULL DEFAULT 0")
        except sqlite3.OperationalError:
            pass  # the column is there
        for column in ("images TEXT NOT NULL DEFAULT '[]'", "joins TEXT NOT NULL DEFAULT ''"):
            try:  # bot.db files made before photos went as images and parts were joined
                self._db.execute(f"ALTER TABLE handoffs ADD COLUMN {column}")
            except sqlite3.OperationalError:
                pass  # the column is there
        dbfiles.tighten(self.path)
        self.last_insert_new = False
        self._active: dict[int, str] = {
            int(r[0]): str(r[1]) for r in self._exec("SELECT chat_id, session FROM active")
        }

    def close(self) -> None:
        self._db.close()

    @property
    def unhealthy(self) -> str:
        """The first storage error's sentence ("" while bot.db takes every write)."""
        return self.failure.why

    def _exec(self, sql: str, args: tuple[object, ...] = ()) -> sqlite3.Cursor:
        return storage.execute(self._db, self.failure, StorageError, log, sql, args)

    def _relaxed(self, sql: str, args: tuple[object, ...] = ()) -> sqlite3.Cursor:
        """One write that skips its fsync (see the module doc): durable across a kill -9 at
        once, across a power cut from the next `sync` or FULL write on."""
        self._db.execute("PRAGMA synchronous=NORMAL")
        try:
            return self._exec(sql, args)
        finally:
            self._db.execute("PRAGMA synchronous=FULL")

    def sync(self) -> None:
        """fsync the WAL: every write so far survives a power cut (safe from a thread); a
        failure means nothing may be confirmed to Telegram now: the poller ends."""
        storage.sync_wal(self.path, self.failure, StorageError, log)

    def _one(self, sql: str, *args: object) -> tuple | None:  # type: ignore[type-arg]
        row: tuple | None = self._exec(sql, args).fetchone()  # type: ignore[type-arg]
        return row

    # ----------------------------------------------------------------------- inbound updates

    def record_update(self, update_id: int, chat_id: int | None, body: str,
                      starts: int = 0) -> bool:
        """Store an update; True when its handler still has to run (new, or stored not done).
        `starts=1` counts the start of its handler in the same write (one fsync, not two)."""
        cur = self._relaxed(  # the poller syncs before Telegram is told (module doc)
            "INSERT OR IGNORE INTO updates (update_id, chat_id, body, starts) VALUES (?, ?, ?, ?)",
            (update_id, chat_id, body, starts),
        )
        self.last_insert_new = bool(cur.rowcount)  # False: it was stored before (a repeat)
        if cur.rowcount:
            return True
        row = self._one("SELECT done FROM updates WHERE update_id = ?", update_id)
        return row is not None and not row[0]

    def mark_started(self, update_id: int) -> int:
        """Count one start of this update's handler; how many starts it has had, this one too."""
        self._db.execute("UPDATE updates SET starts = starts + 1 WHERE update_id = ?", (update_id,))
        row = self._one("SELECT starts FROM updates WHERE update_id = ?", update_id)
        return int(row[0]) if row else 1

    def starts(self, update_id: int) -> int:
        row = self._one("SELECT starts FROM updates WHERE update_id = ?", update_id)
        return int(row[0]) if row else 0

    def mark_done(self, update_id: int) -> None:
        self._relaxed("UPDATE updates SET done = 1 WHERE update_id = ?", (update_id,))

    def unfinished_updates(self) -> list[tuple[int, str]]:
        rows = self._exec(
            "SELECT update_id, body FROM updates WHERE done = 0 ORDER BY update_id"
        ).fetchall()
        return [(int(r[0]), str(r[1])) for r in rows]

    def album_part_unfinished(self, chat_id: int, media_group_id: str) -> bool:
        """Whether an update of this album is journaled and its handler has not finished (its
        photo is still being fetched): bot.joiner waits for it."""
        needle = f'%"media_group_id": {json.dumps(media_group_id)}%'
        row = self._one("SELECT 1 FROM updates WHERE done = 0 AND chat_id = ? AND body LIKE ?"
                        " LIMIT 1", chat_id, needle)
        return row is not None

    def last_update_id(self) -> int | None:
        row = self._one("SELECT MAX(update_id) FROM updates")
        return None if row is None or row[0] is None else int(row[0])

    def prune_updates(self) -> None:
        self._exec(
            "DELETE FROM updates WHERE done = 1 AND update_id < "
            "(SELECT MAX(update_id) FROM updates) - ?",
            (KEEP_DONE_UPDATES,),
        )

    def prune_prompts(self, keep: int = KEEP_CLOSED_PROMPTS) -> int:
        """Forget closed prompts but the newest `keep` (an old button then says "already
        answered", as for any closed prompt); open ones always stay. Returns how many went."""
        cur = self._db.execute(
            "DELETE FROM prompts WHERE state != 'open' AND n < (SELECT MAX(n) FROM prompts) - ?",
            (keep,),
        )
        return cur.rowcount

    # ----------------------------------------------------------------------- hand-offs

    def add_handoff(self, h: Handoff) -> bool:
        cur = self._relaxed(
            "INSERT OR IGNORE INTO handoffs (key, session, chat_id, message_id, text, attachments,"
            " created, images, joins) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (h.key, h.session, h.chat_id, h.message_id, h.text, json.dumps(h.attachments),
             h.created or time.time(), json.dumps(h.images), h.joins),
        )
        return bool(cur.rowcount)

    def pending_handoffs(self, session: str | None = None) -> list[Handoff]:
        sql = ("SELECT key, session, chat_id, text, message_id, attachments, created, images,"
               " joins FROM handoffs")
        args: tuple[object, ...] = ()
        if session is not None:
            sql += " WHERE session = ?"
            args = (session,)
        rows = self._exec(sql + " ORDER BY n", args).fetchall()
        return [Handoff(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6], json.loads(r[7]),
                        r[8]) for r in rows]

    def replace_handoff_text(self, key: str, text: str) -> str | None:
        """The user edited a message still waiting here: its session, or None when it is gone."""
        cur = self._db.execute("UPDATE handoffs SET text = ? WHERE key = ?", (text, key))
        if not cur.rowcount:
            return None
        row = self._one("SELECT session FROM handoffs WHERE key = ?", key)
        return str(row[0]) if row else None

    def handoff_done(self, key: str) -> None:
        self._exec("DELETE FROM handoffs WHERE key = ?", (key,))

    def handoffs_done(self, keys: list[str]) -> None:
        """The parts of one joined turn (bot.joiner) leave together: one statement, so a crash
        never leaves a part behind to be sent again on its own. Not fsynced: after a power
        cut a part may go again, and the worker knows its key (it fsynced it before Accepted)."""
        marks = ", ".join("?" * len(keys))
        self._relaxed(f"DELETE FROM handoffs WHERE key IN ({marks})", tuple(keys))  # noqa: S608

    # ----------------------------------------------------------------------- outbound delivery

    def delivered(self, session: str) -> int:
        row = self._one("SELECT seq FROM delivered WHERE session = ?", session)
        return int(row[0]) if row else 0

    def set_delivered(self, session: str, seq: int) -> None:
        """Record that Telegram accepted everything up to `seq` (never moves backwards). Not
        fsynced here: bot.delivery syncs it in a thread before its next durable event."""
        self._relaxed(
            "INSERT INTO delivered (session, seq) VALUES (?, ?) ON CONFLICT(session) DO UPDATE"
            " SET seq = MAX(seq, excluded.seq)",
            (session, seq),
        )

    def reset_delivered(self, session: str, seq: int) -> None:
        """The worker's outbox starts over (the session was re-created): follow it down."""
        self._exec(
            "INSERT INTO delivered (session, seq) VALUES (?, ?) ON CONFLICT(session) DO UPDATE"
            " SET seq = excluded.seq",
            (session, seq),
        )

    def known_sessions(self) -> set[str]:
        names: set[str] = set()
        for sql in ("SELECT session FROM delivered", "SELECT session FROM handoffs",
                    "SELECT session FROM active", "SELECT session FROM drafts"):
            names.update(r[0] for r in self._exec(sql))
        return names

    def forget_session(self, session: str) -> None:
        """Every row of a removed session: a new one of the same name starts from nothing."""
        for table in SESSION_TABLES:
            self._exec(f"DELETE FROM {table} WHERE session = ?", (session,))  # noqa: S608
        self._active = {c: s for c, s in self._active.items() if s != session}

    # ----------------------------------------------------------------------- chats

    def active(self, chat_id: int) -> str | None:
        """The chat's active session, from memory (no SQL: this is on the streaming hot path)."""
        return self._active.get(chat_id)

    def set_active(self, chat_id: int, session: str | None) -> None:
        # The row first, the memory after: a failed write leaves both as they were.
        if session is None:
            self._exec("DELETE FROM active WHERE chat_id = ?", (chat_id,))
            self._active.pop(chat_id, None)
        else:
            self._exec(
                "INSERT INTO active (chat_id, session) VALUES (?, ?) ON CONFLICT(chat_id)"
                " DO UPDATE SET session = excluded.session",
                (chat_id, session),
            )
            self._active[chat_id] = session

    def active_chats(self) -> list[int]:
        """Every chat that has an active session (from memory)."""
        return sorted(self._active)

    def chats_of(self, session: str) -> list[int]:
        """The chats whose active session this is, lowest id first (from memory)."""
        return sorted(c for c, s in self._active.items() if s == session)

    # ----------------------------------------------------------------------- permission prompts

    def add_prompt(self, session: str, prompt_id: str, chat_id: int, text: str) -> tuple[int, bool]:
        """(row number, True if new). A replayed request finds its existing row."""
        cur = self._exec(
            "INSERT OR IGNORE INTO prompts (session, prompt_id, chat_id, text) VALUES (?, ?, ?, ?)",
            (session, prompt_id, chat_id, text),
        )
        row = self._one(
            "SELECT n FROM prompts WHERE session = ? AND prompt_id = ?", session, prompt_id
        )
        assert row is not None
        return int(row[0]), bool(cur.rowcount)

    def set_prompt_message(self, n: int, message_id: int) -> None:
        self._exec("UPDATE prompts SET message_id = ? WHERE n = ?", (message_id, n))

    def _prompt(self, where: str, *args: object) -> Prompt | None:
        row = self._one(
            "SELECT n, session, prompt_id, chat_id, message_id, text, state FROM prompts WHERE "
            + where, *args
        )
        return Prompt(*row) if row else None

    def prompt(self, n: int) -> Prompt | None:
        return self._prompt("n = ?", n)

    def prompt_by_id(self, session: str, prompt_id: str) -> Prompt | None:
        return self._prompt("session = ? AND prompt_id = ?", session, prompt_id)

    def close_prompt(self, n: int, state: str) -> bool:
        """Mark a prompt answered/resolved; False when it was already closed."""
        cur = self._exec(
            "UPDATE prompts SET state = ? WHERE n = ? AND state = 'open'", (state, n)
        )
        return bool(cur.rowcount)

    def open_prompt_counts(self) -> dict[str, int]:
        """How many permission prompts wait for an answer, per session."""
        rows = self._exec("SELECT session, COUNT(*) FROM prompts WHERE state = 'open'"
                          " GROUP BY session")
        return {str(r[0]): int(r[1]) for r in rows}

    def open_prompt_sessions(self) -> set[str]:
        return {str(r[0]) for r in self._exec("SELECT session FROM prompts WHERE state = 'open'")}

    # ----------------------------------------------------------------------- drafts

    def set_draft(self, session: str, chat_id: int, message_ids: list[int]) -> None:
        # Not fsynced (nor clear_draft): written while an answer streams by edits; a power cut
        # can only leave one partial message that a restarted bot does not replace.
        self._relaxed(
            "INSERT INTO drafts (session, chat_id, message_ids) VALUES (?, ?, ?)"
            " ON CONFLICT(session) DO UPDATE SET chat_id = excluded.chat_id,"
            " message_ids = excluded.message_ids",
            (session, chat_id, json.dumps(message_ids)),
        )

    def draft(self, session: str) -> tuple[int, list[int]] | None:
        row = self._one("SELECT chat_id, message_ids FROM drafts WHERE session = ?", session)
        return (int(row[0]), list(json.loads(row[1]))) if row else None

    def clear_draft(self, session: str) -> None:
        self._relaxed("DELETE FROM drafts WHERE session = ?", (session,))

    # ----------------------------------------------------------------------- retries

    def add_retry(self, session: str, key: str, chat_id: int, text: str) -> int:
        """The row behind a Retry button; a replayed stop finds its existing row."""
        self._exec(
            "INSERT OR IGNORE INTO retries (session, key, chat_id, text) VALUES (?, ?, ?, ?)",
            (session, key, chat_id, text),
        )
        row = self._one("SELECT n FROM retries WHERE session = ? AND key = ?", session, key)
        assert row is not None
        return int(row[0])

    def take_retry(self, n: int) -> tuple[str, int, str] | None:
        """(session, chat, text) of a Retry button, once: a second tap finds nothing."""
        row = self._one("SELECT session, chat_id, text FROM retries WHERE n = ?", n)
        if row is None:
            return None
        cur = self._exec("DELETE FROM retries WHERE n = ?", (n,))
        return (str(row[0]), int(row[1]), str(row[2])) if cur.rowcount else None
