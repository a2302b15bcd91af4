"""What each event means in the chat: one table from event body type to its handler.

A session's line (bot.delivery) decides once per event where it goes: a `Target`, the chat and
whether the session is that chat's active one (an active session streams its answer and tool
lines; a background one has its answers labelled with its name and its finished turns and
prompts carry a "Switch to" button). `show` then looks the body's type up in `HANDLERS` and
calls the matching method of the `View` (the line). Bodies the chat does not show (thinking,
tool results, rate-limit info, session init, CLI events we do not know) are listed in `IGNORED`,
so a new body type in wire.messages is a visible decision, not a silent fall-through.

This module must never do I/O or hold state: it only routes; rendering is bot.render's and the
Telegram calls are the view's.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from wire import messages as m


@dataclass(frozen=True)
class Target:
    """Where one event is shown."""

    chat_id: int
    active: bool  # the session is the chat's active one


class View(Protocol):
    """Whatever shows a session's events in a chat; one method per body type it shows."""

    async def turn_started(self, t: Target, body: m.TurnStarted) -> None: ...
    async def text_delta(self, t: Target, body: m.TextDelta) -> None: ...
    async def assistant_text(self, t: Target, body: m.AssistantText) -> None: ...
    async def tool_use(self, t: Target, body: m.ToolUse) -> None: ...
    async def turn_result(self, t: Target, body: m.TurnResult) -> None: ...
    async def permission_request(self, t: Target, body: m.PermissionRequest) -> None: ...
    async def permission_resolved(self, t: Target, body: m.PermissionResolved) -> None: ...
    async def notice(self, t: Target, body: m.Notice) -> None: ...
    async def file_out(self, t: Target, body: m.FileOut) -> None: ...
    async def budget_hold(self, t: Target, body: m.BudgetHold) -> None: ...


Handler = Callable[[View, Target, Any], Awaitable[None]]

# Lambdas, not `View.turn_started`: that would be the protocol's own (empty) method, not the
# line's.
HANDLERS: dict[type[m.Body], Handler] = {
    m.TurnStarted: lambda v, t, b: v.turn_started(t, b),
    m.TextDelta: lambda v, t, b: v.text_delta(t, b),
    m.AssistantText: lambda v, t, b: v.assistant_text(t, b),
    m.ToolUse: lambda v, t, b: v.tool_use(t, b),
    m.TurnResult: lambda v, t, b: v.turn_result(t, b),
    m.PermissionRequest: lambda v, t, b: v.permission_request(t, b),
    m.PermissionResolved: lambda v, t, b: v.permission_resolved(t, b),
    m.Notice: lambda v, t, b: v.notice(t, b),
    m.FileOut: lambda v, t, b: v.file_out(t, b),
    m.BudgetHold: lambda v, t, b: v.budget_hold(t, b),
}

IGNORED: frozenset[type[m.Body]] = frozenset({
    m.Thinking, m.ToolResult, m.RateLimit, m.SessionInit, m.Unknown,
})


# What the chat would have shown, in the sentence about messages that could not be delivered.
WHAT: dict[type[m.Body], str] = {
    m.TurnStarted: "typing", m.TextDelta: "draft", m.AssistantText: "answer",
    m.ToolUse: "tool line", m.TurnResult: "footer", m.PermissionRequest: "permission prompt",
    m.PermissionResolved: "prompt outcome", m.Notice: "notice", m.FileOut: "file",
    m.BudgetHold: "budget notice",
}


def what(body: m.Body) -> str:
    return WHAT.get(type(body), "message")


def handler(body: m.Body) -> Handler | None:
    """The handler for this body, or None when the chat does not show it."""
    return HANDLERS.get(type(body))


async def show(view: View, target: Target, body: m.Body) -> None:
    h = handler(body)
    if h is not None:
        await h(view, target, body)


def choose_chat(event_chat: int | None, last_chat: int | None,
                active_in: Sequence[int]) -> int | None:
    """The chat an event goes to: the one it names, else the session's last chat, else the
    first chat that has the session active (None: nowhere to show it)."""
    if event_chat is not None:
        return event_chat
    if last_chat is not None:
        return last_chat
    return active_in[0] if active_in else None
