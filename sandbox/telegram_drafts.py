"""Message drafts in the sandbox Telegram: ``sendMessageDraft`` (Bot API 9.3, every bot since 9.5,
private chats only) and its Stop button (10.3, ``can_stop`` / ``keep_on_stop``).

A draft is keyed by (chat, topic, draft_id). Each call changes it (an empty text is the 10.0
"Thinking…" placeholder) and is kept in its ``history`` for the test. It leaves the screen when a
normal message arrives in that chat or topic (:meth:`BotState.add_message`), when its topic is
deleted, or ``DRAFT_TTL`` seconds after its last change on the bot's draft clock, which a test
moves forward (``POST /_sandbox/advance_clock``) instead of sleeping; expiry is checked whenever
drafts are touched or read.

The Stop button: the user's tap (``POST /_sandbox/stop_draft``) on a draft sent with ``can_stop``
produces the update ``stopped_message_generation`` = MessageGenerationStopped ``{chat,
message_thread_id (only in a topic), draft_id}``, delivered through getUpdates like any update
(``allowed_updates`` filters it; it is in the default set, as every kind Telegram does not hold
back). The draft then disappears, or stays on screen when it was sent with ``keep_on_stop``;
either way later sendMessageDraft calls with its key still answer True but change nothing (the
docs say Stop ends "further" drafts; they are recorded with ``ignored``) until a message or the
expiry ends it.

Choices where the docs are silent: a draft outside a private chat answers 400
"TEXTDRAFT_PEER_INVALID" (what Telegram answers); draft_id 0 or missing answers 400
"draft_id must be non-zero"; more than 4096 characters is "message is too long" as for
sendMessage. Flood limits: the sandbox has no automatic per-chat budget, only the injected 429
faults of :mod:`sandbox.telegram_server`, which match sendMessageDraft by method and chat like any
method; drafts create no message, so nothing here counts them against a chat's message budget.
This module must never create or change a message.
"""

from __future__ import annotations

import time
from typing import Any

from sandbox.telegram_params import Params, send_chat
from sandbox.telegram_rules import MAX_TEXT, FormatError, format_text
from sandbox.telegram_state import ApiError, BotState, Draft, bad
from sandbox.telegram_topics import send_thread
from sandbox.telegram_users import int_field, required_int

DRAFT_TTL = 30.0  # seconds a draft stays after its last change (the docs: "30-second preview")


def expire(bot: BotState) -> None:
    now = bot.clock()
    for d in bot.drafts:
        if d.ended is None and now - d.changed >= DRAFT_TTL:
            d.ended = "expired"


def alive(bot: BotState, chat_id: int, thread: int | None, draft_id: int) -> Draft | None:
    """The draft holding this key now (shown, or stopped and waiting for its end)."""
    expire(bot)
    key = (chat_id, thread, draft_id)
    return next(
        (d for d in bot.drafts if d.ended is None and (d.chat_id, d.thread_id, d.draft_id) == key),
        None,
    )


def shown(d: Draft) -> bool:
    return d.ended is None and (not d.stopped or d.keep_on_stop)


async def send_message_draft(bot: BotState, p: Params) -> Any:
    chat = send_chat(bot, p)
    if chat.type != "private":
        raise bad("TEXTDRAFT_PEER_INVALID")
    draft_id = p.integer("draft_id")
    if not draft_id:
        raise bad("draft_id must be non-zero")
    thread = send_thread(chat, p)
    try:
        text, entities = format_text(
            p.raw("text"),
            p.string("parse_mode"),
            p.json("entities", "entities"),
            limit=MAX_TEXT,
            allow_empty=True,
        )
    except FormatError as exc:
        raise bad(str(exc)) from None
    draft = alive(bot, chat.id, thread, draft_id)
    if draft is None:
        draft = Draft(chat_id=chat.id, thread_id=thread, draft_id=draft_id)
        bot.drafts.append(draft)
    change = {"text": text, "entities": entities, "time": time.time(), "ignored": draft.stopped}
    draft.history.append(change)
    if not draft.stopped:
        draft.text, draft.entities = text, entities
        draft.can_stop, draft.keep_on_stop = p.flag("can_stop"), p.flag("keep_on_stop")
        draft.changed = bot.clock()
    return True


# ---------------------------------------------------------------------------- the test's side


def user_stop(bot: BotState, body: dict[str, Any]) -> dict[str, Any]:
    """The user taps Stop on a draft: the ``stopped_message_generation`` update."""
    user_id = required_int(body, "user_id")
    chat_id = int_field(body, "chat_id") or user_id
    draft_id = required_int(body, "draft_id")
    thread = int_field(body, "message_thread_id")
    draft = alive(bot, chat_id, thread, draft_id)
    if draft is None or not shown(draft):
        raise ApiError(400, f"no draft {draft_id} on screen in chat {chat_id}, topic {thread}")
    if draft.stopped:
        raise ApiError(400, f"no draft {draft_id} is generating any more: Stop was tapped")
    if not draft.can_stop:
        raise ApiError(400, f"draft {draft_id} has no Stop button (sent without can_stop)")
    draft.stopped = True
    draft.changed = bot.clock()  # a kept draft stays its full time after the tap
    stopped: dict[str, Any] = {"chat": bot.chats[chat_id].obj(), "draft_id": draft_id}
    if thread is not None:
        stopped["message_thread_id"] = thread
    return {"update": bot.push_update("stopped_message_generation", stopped)}


def advance_clock(bot: BotState, body: dict[str, Any]) -> dict[str, Any]:
    """Move the bot's draft clock forward by ``seconds`` (drafts past their time expire)."""
    try:
        seconds = float(body.get("seconds", 0))
    except (TypeError, ValueError):
        raise ApiError(400, "seconds must be a number") from None
    if seconds < 0:
        raise ApiError(400, "the clock only moves forward")
    bot.clock_offset += seconds
    expire(bot)
    return {"offset": bot.clock_offset}


def drafts_view(bot: BotState, body: dict[str, Any]) -> list[dict[str, Any]]:
    """Every draft of a chat since the last reset, oldest first (``thread``: one topic, 0 the
    chat outside topics), with ``shown``, ``ended`` and the ``history`` of its changes."""
    expire(bot)
    chat_id = required_int(body, "chat_id")
    thread = int_field(body, "thread")
    return [
        {
            "draft_id": d.draft_id,
            "message_thread_id": d.thread_id,
            "text": d.text,
            "entities": d.entities,
            "can_stop": d.can_stop,
            "keep_on_stop": d.keep_on_stop,
            "stopped": d.stopped,
            "shown": shown(d),
            "ended": d.ended,
            "history": d.history,
        }  # fmt: skip
        for d in bot.drafts
        if d.chat_id == chat_id and (thread is None or (d.thread_id or 0) == thread)
    ]
