"""Where a chat message goes: pure, no I/O.

By (chat, topic) when the chat has topics, by reply-to when it replies to a session's message,
else to the chat's active session. In a chat with topics, General is the control lane: a plain
message there goes to the session it replies to, or is answered with one sentence.
"""
from __future__ import annotations

from dataclasses import dataclass

from bot.reply import NO_SESSION

NO_TOPIC_SESSION = ("This topic belongs to no session: write in a session's topic, or make one"
                    " with /new NAME in General.")
IN_GENERAL = ("General is for commands: write in a session's topic, reply to one of its"
              " messages, or make one with /new NAME.")


@dataclass(frozen=True)
class Where:
    session: str | None
    why: str = ""  # the sentence when there is no session


def route(*, topics: bool, thread: int | None, topic_session: str | None,
          reply_session: str | None, active: str | None) -> Where:
    """`thread`: the topic the message is in (None: General or a chat without topics);
    `topic_session`: that topic's session; `reply_session`: the session whose message it
    replies to."""
    if topics and thread is not None:
        return Where(topic_session) if topic_session else Where(None, NO_TOPIC_SESSION)
    if reply_session:
        return Where(reply_session)
    if topics:
        return Where(None, IN_GENERAL)
    return Where(active) if active else Where(None, NO_SESSION)
