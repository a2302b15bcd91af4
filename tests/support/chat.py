"""The chat as a user sees it: readers and waits over the sandbox Telegram server.

What the bot sent to a chat, the text of a message, a wait for the bot message that matches a
pattern, a permission prompt and its buttons, and the two steps every stack test starts with
(`/new NAME`, one echo turn). Also the small readers of what the bot kept (its journal, the
files under the state dir). These only read and send as a user would; they never reach into a
process or a socket of the stack.
"""
from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

from tests.support.waits import wait_until


def bot_messages(tg: Any, chat_id: int) -> list[dict[str, Any]]:
    return [m for m in tg.chat(chat_id) if m.get("from_bot")]


def message_text(msg: dict[str, Any]) -> str:
    return msg.get("text") or msg.get("caption") or ""


def bot_texts(tg: Any, chat_id: int) -> list[str]:
    return [message_text(m) for m in bot_messages(tg, chat_id)]


def texts(chat: list[dict[str, Any]], from_bot: bool = True) -> list[str]:
    """The text of each message of `chat` from the bot (or, with from_bot=False, from users)."""
    return [msg.get("text") or "" for msg in chat if msg.get("from_bot") == from_bot]


def wait_text(tg: Any, chat_id: int, pattern: str | re.Pattern[str], timeout: float = 30,
              after: int = 0) -> dict[str, Any]:
    """Wait for a bot message (newer than message id `after`) whose text matches `pattern`."""
    rx = re.compile(pattern) if isinstance(pattern, str) else pattern

    def found(chat: list[dict[str, Any]]) -> bool:
        return any(m.get("from_bot") and m["message_id"] > after and rx.search(message_text(m))
                   for m in chat)
    try:
        chat = tg.wait_for(found, chat_id, timeout)
    except AssertionError:
        raise AssertionError(f"no bot message matching {rx.pattern!r} after message {after} "
                             f"within {timeout:g} s; chat {chat_id} now:\n"
                             + compact_chat(tg, chat_id)) from None
    return next(m for m in chat if m.get("from_bot") and m["message_id"] > after
                and rx.search(message_text(m)))


def compact_chat(tg: Any, chat_id: int, limit: int = 40) -> str:
    lines = []
    for m in tg.chat(chat_id, content=False)[-limit:]:
        who = "bot " if m.get("from_bot") else "user"
        doc = m.get("document")
        extra = f" [file {doc.get('file_name')} {doc.get('size')} B]" if doc else ""
        lines.append(f"  {m['message_id']:>4} {who} {message_text(m)[:160]!r}{extra}")
    return "\n".join(lines)


def last_id(tg: Any, chat_id: int) -> int:
    chat = tg.chat(chat_id)
    return max((m["message_id"] for m in chat), default=0)


# ---------------------------------------------------------------------- permission prompts


def prompt_for(tg: Any, chat_id: int, what: str = "", *, session: str = "", tool: str = "",
               after: int = 0, timeout: float = 30) -> dict[str, Any]:
    """Wait for a permission prompt (a bot message with buttons, "Session S asks to use TOOL")
    newer than message id `after` whose text shows `what`; `session` and `tool` narrow it."""
    who = re.escape(session) if session else r"\S+"
    head = re.compile(rf"Session {who} asks to use {re.escape(tool)}")

    def find() -> dict[str, Any] | None:
        return next((m for m in bot_messages(tg, chat_id) if m["message_id"] > after
                     and m.get("reply_markup") and head.search(message_text(m))
                     and what in message_text(m)), None)
    return wait_until(find, timeout, f"a permission prompt showing {what!r}"
                      + (f" from {session}" if session else ""))


def button(msg: dict[str, Any], label: str) -> str:
    """The callback data of the button labelled `label` on a bot message."""
    for row in (msg.get("reply_markup") or {}).get("inline_keyboard", []):
        for b in row:
            if b["text"] == label:
                return str(b["callback_data"])
    raise AssertionError(f"no button {label!r} in {msg.get('reply_markup')}")


def new_session(tg: Any, user: int, name: str, persona: str | None = None,
                timeout: float = 45) -> None:
    """`/new NAME` in the user's private chat; waits for the bot's confirmation."""
    after = last_id(tg, user)
    tg.send(user, f"/new {name}" + (f" {persona}" if persona else ""))
    wait_text(tg, user, rf"Session {re.escape(name)} is ready", timeout, after=after)


def ask(tg: Any, user: int, text: str, timeout: float = 60) -> dict[str, Any]:
    """Send `text` and wait for its echo answer ("echo: <text>")."""
    after = last_id(tg, user)
    tg.send(user, text)
    return wait_text(tg, user, re.escape(f"echo: {text}"), timeout, after=after)


# ---------------------------------------------------------------------- what the bot kept


def journal_rows(state_dir: Path, sql: str) -> list[tuple[Any, ...]]:
    """Rows of the bot's journal (`bot.db`) for one query."""
    db = sqlite3.connect(str(state_dir / "bot.db"))
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def snapshot(root: Path, skip: tuple[str, ...] = ("logs",)) -> dict[str, tuple[int, int]]:
    """Every file under root (but `skip` dirs) with its size and mtime: to prove nothing changed."""
    out: dict[str, tuple[int, int]] = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if rel.parts and rel.parts[0] in skip:
            continue
        st = p.stat()
        out[str(rel)] = (st.st_size, st.st_mtime_ns)
    return out

