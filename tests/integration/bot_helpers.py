"""Helpers for the bot's integration tests: the whole stack as a user starts it.

`Stack` runs `switchboard run` with the bot enabled against the Telegram sandbox, real session
workers and the real Claude CLI against the model sandbox; the supervisor harness proves on
close that every process it started is gone. The rest are small waits and readers.
"""
from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

import psutil

ROOT = Path(__file__).resolve().parents[2]
OWNER = 1001
POLL_STEP = 0.02  # the step of a deadline loop, never a wait on its own


def short_dir(prefix: str = "sb-") -> Path:
    """A runtime dir short enough for unix socket paths."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


def wait_until(cond: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not hold within {timeout} s")
        time.sleep(POLL_STEP)


def texts(chat: list[dict[str, Any]], from_bot: bool = True) -> list[str]:
    return [msg.get("text") or "" for msg in chat if msg.get("from_bot") == from_bot]


def journal_rows(state_dir: Path, sql: str) -> list[tuple[Any, ...]]:
    import sqlite3

    db = sqlite3.connect(str(state_dir / "bot.db"))
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def dump_json(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, indent=1)


# --------------------------------------------------------------------------- the real stack


class Stack:
    """`switchboard run` with the bot enabled, pointed at both sandboxes, the real Claude CLI.

    `tg` is the Telegram sandbox; `sup` the supervisor harness (tests/integration/
    supervisor_harness.py) whose children are the real bot and real session workers.
    """

    def __init__(self, base: Path, telegram_api: Any, claude_bin: str, cli_env: dict[str, str],
                 *, telegram: dict[str, Any] | None = None, claude: dict[str, Any] | None = None,
                 supervisor: dict[str, Any] | None = None) -> None:
        from supervisor_harness import Supervisor

        self.tg = telegram_api
        tele = {"enabled": True, "allowed_user_ids": [OWNER], "api_base_url": telegram_api.url,
                "edit_interval_seconds": 0.3, "poll_timeout_seconds": 1, **(telegram or {})}
        cl = {"binary": claude_bin, "env": dict(cli_env), **(claude or {})}
        self.sup = Supervisor(base, standin=False, telegram=tele, claude=cl, supervisor=supervisor,
                              env={"TELEGRAM_BOT_TOKEN": telegram_api.token})
        self.state_dir = self.sup.state_dir

    def __enter__(self) -> Self:
        self.sup.start()
        self.sup.wait_state("bot", "RUNNING", 15)
        # The bot is up once it registered its commands (it polls right after).
        wait_until(lambda: self.tg.commands(), 15, "setMyCommands from the bot")
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if exc[0] is not None:
                print("---- supervisor output\n" + self.sup.output())
                print("---- bot log\n" + self.bot_log()[-6000:])
        finally:
            self.sup.close()

    def bot_log(self) -> str:
        p = self.state_dir / "logs" / "bot.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def bot_pid(self) -> int | None:
        row = self.sup.status().get("bot")
        return row.pid if row and row.state == "RUNNING" else None

    def say(self, text: str, chat_id: int | None = None, user: int | None = None) -> int:
        """Send as the owner (in a private chat: that chat's user); the new message's id."""
        if user is None:
            user = chat_id if chat_id and chat_id > 0 else OWNER
        kind = "group" if chat_id is not None and chat_id < 0 else None
        return int(self.tg.send(user, text, chat_id, chat_type=kind)["message"]["message_id"])

    def wait_text(self, pred: Callable[[str], bool], chat_id: int = OWNER, timeout: float = 20.0,
                  after: int = 0) -> list[dict[str, Any]]:
        return self.tg.wait_for(
            lambda c: any(pred(msg.get("text") or "") for msg in c
                          if msg["from_bot"] and msg["message_id"] > after),
            chat_id, timeout)

    def new_session(self, name: str, chat_id: int = OWNER) -> None:
        mid = self.say(f"/new {name}", chat_id)
        self.wait_text(lambda t: f"Session {name} is ready" in t, chat_id, 30, after=mid)


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


def children_of(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def ask_msg(st: Stack, text: str, chat_id: int = OWNER, timeout: float = 20.0,
            expect: Callable[[str], bool] | None = None) -> dict[str, Any]:
    """Send a message; the bot's first reply after it (matching `expect`)."""
    mid = st.say(text, chat_id)
    pred = expect or (lambda t: True)
    chat = st.wait_text(pred, chat_id, timeout, after=mid)
    return next(msg for msg in chat
                if msg["from_bot"] and msg["message_id"] > mid and pred(msg["text"] or ""))


def ask(st: Stack, text: str, chat_id: int = OWNER, timeout: float = 20.0,
        expect: Callable[[str], bool] | None = None) -> str:
    """Send a message; the text of the bot's first reply after it (matching `expect`)."""
    return str(ask_msg(st, text, chat_id, timeout, expect)["text"])


def last_bot(st: Stack, chat_id: int = OWNER) -> dict[str, Any]:
    return [msg for msg in st.tg.chat(chat_id) if msg["from_bot"]][-1]
