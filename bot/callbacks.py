"""Inline-button callback data: every format the bot puts on a button, its builder and its parser.

    p:N:a|d|s     a permission prompt (N: its row in bot.db): Allow, Deny, Allow for this session
                  (the scoped rule the worker kept with the prompt, named on the button)
    g:NAME:ID     /permissions: revoke grant ID of session NAME
    sw:NAME       make NAME the chat's active session
    tp:NAME       the live status's "Open NAME" in a private chat with topics: a line in NAME's
                  topic (Telegram has no link into a private chat's topic; a forum's button is a
                  t.me link instead)
    rm:y|n:NAME   the answer to "/remove NAME": remove it, or keep it
    rt:N          send again a message a user's stop cut short (N: its row in bot.db)
    bu:s|d:NAME   raise session NAME's budget (s: the session's, d: the day's) for today
    st:NAME       ⏹ on an answer streamed by edits: interrupt NAME's running turn

Telegram hands the data back verbatim when the button is tapped, so the format is a contract
with every message already in a chat: change one only in a way that still parses the old data.
`PATTERNS` routes a tap to its handler by kind; a parser returns None for data that is not
well-formed, and the handler answers it without acting. Pure: no I/O, never trusts the data.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from wire.names import session_name_error

# One pattern per kind, matched on the prefix only: a malformed tail still reaches its own
# handler, which answers it (an unanswered tap spins in the user's client).
PERMISSION = r"^p:"
SWITCH = r"^sw:"
TOPIC = r"^tp:"
REMOVE = r"^rm:"
GRANT = r"^g:"
RETRY = r"^rt:"
BUDGET = r"^bu:"
STOP = r"^st:"

_PERMISSION = re.compile(r"p:(\d{1,18}):([ads])")
_SWITCH = re.compile(r"sw:(.+)")
_TOPIC = re.compile(r"tp:(.+)")
_REMOVE = re.compile(r"rm:([yn]):(.+)")
_GRANT = re.compile(r"g:([a-z0-9][a-z0-9_-]{0,31}):(\d{1,18})")
_RETRY = re.compile(r"rt:(\d{1,18})")
_BUDGET = re.compile(r"bu:([sd]):(.+)")
_STOP = re.compile(r"st:(.+)")


@dataclass(frozen=True)
class PermissionTap:
    n: int
    allow: bool
    always: bool


@dataclass(frozen=True)
class GrantTap:
    session: str
    grant_id: int


@dataclass(frozen=True)
class RemoveTap:
    confirmed: bool
    name: str


# ----------------------------------------------------------------------------- builders


def switch_button(session: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(f"Switch to {session}", callback_data=f"sw:{session}")


def topic_button(session: str, url: str | None = None) -> InlineKeyboardButton:
    """"Open NAME": a link straight into a forum's topic, else a tap (`tp:`) in a private chat."""
    if url is not None:
        return InlineKeyboardButton(f"Open {session}", url=url)
    return InlineKeyboardButton(f"Open {session}", callback_data=f"tp:{session}")


def topic_link(chat_id: int, thread_id: int) -> str | None:
    """The t.me link of a supergroup's topic (members open it); None for a private chat."""
    text = str(chat_id)
    if not text.startswith("-100") or len(text) <= 4:
        return None
    return f"https://t.me/c/{text[4:]}/{thread_id}"


def switch_picker(sessions: list[str]) -> InlineKeyboardMarkup:
    """One button per session, two to a row, labelled with the bare name."""
    buttons = [InlineKeyboardButton(n, callback_data=f"sw:{n}") for n in sessions]
    return InlineKeyboardMarkup([buttons[i:i + 2] for i in range(0, len(buttons), 2)])


GRANT_LABEL_MAX = 48


def grant_button_text(grant_label: str) -> str:
    """"Allow `npm test` commands for this session": the button names the rule it grants."""
    label = " ".join(grant_label.split())
    if len(label) > GRANT_LABEL_MAX:
        label = label[: GRANT_LABEL_MAX - 1] + "…"
    return f"Allow {label} for this session"


def permission_markup(n: int, session: str | None, grant_label: str = ""
                      ) -> InlineKeyboardMarkup:
    """Allow, Deny, and (when the worker named a rule narrower than "everything") the scoped
    grant; a background session's prompt adds a button to switch to it."""
    rows = [
        [InlineKeyboardButton("Allow", callback_data=f"p:{n}:a"),
         InlineKeyboardButton("Deny", callback_data=f"p:{n}:d")],
    ]
    if grant_label:
        rows.append([InlineKeyboardButton(grant_button_text(grant_label),
                                          callback_data=f"p:{n}:s")])
    if session is not None:
        rows.append([switch_button(session)])
    return InlineKeyboardMarkup(rows)


def revoke_buttons(session: str, grants: list[tuple[int, str]]) -> InlineKeyboardMarkup:
    """One "Revoke" button per grant (id, label), one to a row."""
    return InlineKeyboardMarkup([
        [InlineKeyboardButton(f"Revoke: {label[:GRANT_LABEL_MAX]}",
                              callback_data=f"g:{session}:{gid}")]
        for gid, label in grants
    ])


def remove_confirm(session: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[
        InlineKeyboardButton(f"Remove {session}", callback_data=f"rm:y:{session}"),
        InlineKeyboardButton("Keep it", callback_data=f"rm:n:{session}"),
    ]])


def retry_markup(n: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton("Retry", callback_data=f"rt:{n}")]])


def budget_markup(session: str, kind: str) -> InlineKeyboardMarkup:
    """The button of a budget hold: raise that budget for today."""
    what = "this session's" if kind == "session" else "today's"
    return InlineKeyboardMarkup([[InlineKeyboardButton(
        f"Raise {what} budget", callback_data=f"bu:{kind[0]}:{session}")]])


def stop_markup(session: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton("⏹ Stop", callback_data=f"st:{session}")]])


# ----------------------------------------------------------------------------- parsers


def parse_permission(data: str) -> PermissionTap | None:
    found = _PERMISSION.fullmatch(data)
    if found is None:
        return None
    choice = found.group(2)
    return PermissionTap(int(found.group(1)), allow=choice in ("a", "s"), always=choice == "s")


def parse_switch(data: str) -> str | None:
    """The session to switch to; None unless it is a valid session name."""
    found = _SWITCH.fullmatch(data)
    if found is None or session_name_error(found.group(1)):
        return None
    return found.group(1)


def parse_topic(data: str) -> str | None:
    """The session whose topic to open; None unless it is a valid session name."""
    found = _TOPIC.fullmatch(data)
    if found is None or session_name_error(found.group(1)):
        return None
    return found.group(1)


def parse_remove(data: str) -> RemoveTap | None:
    found = _REMOVE.fullmatch(data)
    if found is None or session_name_error(found.group(2)):
        return None
    return RemoveTap(confirmed=found.group(1) == "y", name=found.group(2))


def parse_grant(data: str) -> GrantTap | None:
    found = _GRANT.fullmatch(data)
    if found is None or session_name_error(found.group(1)):
        return None
    return GrantTap(found.group(1), int(found.group(2)))


def parse_retry(data: str) -> int | None:
    found = _RETRY.fullmatch(data)
    return None if found is None else int(found.group(1))


def parse_budget(data: str) -> tuple[str, str] | None:
    """(session, "session"|"day") of a budget button; None unless well-formed."""
    found = _BUDGET.fullmatch(data)
    if found is None or session_name_error(found.group(2)):
        return None
    return found.group(2), "session" if found.group(1) == "s" else "day"


def parse_stop(data: str) -> str | None:
    """The session whose turn a ⏹ interrupts; None unless it is a valid session name."""
    found = _STOP.fullmatch(data)
    if found is None or session_name_error(found.group(1)):
        return None
    return found.group(1)
