"""bot.view: every event body type has one handler or is ignored on purpose; where an event goes."""
from __future__ import annotations

import asyncio
import typing

import pytest

from bot import view
from bot.view import HANDLERS, IGNORED, Target, choose_chat
from wire import messages as m

BODIES: list[m.Body] = [
    m.TurnStarted(key="k"),
    m.TextDelta(text="he"),
    m.AssistantText(text="hello"),
    m.Thinking(text="hmm"),
    m.ToolUse(tool_use_id="t1", name="Bash", summary="ls"),
    m.ToolResult(tool_use_id="t1"),
    m.TurnResult(),
    m.PermissionRequest(prompt_id="p1", tool_name="Bash", summary="ls"),
    m.PermissionResolved(prompt_id="p1", allowed=True),
    m.RateLimit(raw_json="{}"),
    m.SessionInit(claude_session_id="c1"),
    m.Notice(level="info", message="hi"),
    m.Unknown(type="x", raw_json="{}"),
    m.FileOut(path="/w/a.txt", name="a.txt", size=1),
    m.BudgetHold(kind="day", spent_usd=1.0, limit_usd=1.0, message="waits"),
]


class Recorder:
    """A View that notes which method got which body."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Target, m.Body]] = []

    def __getattr__(self, name: str) -> typing.Any:
        async def record(t: Target, body: m.Body) -> None:
            self.calls.append((name, t, body))
        return record


def test_every_body_type_is_handled_or_ignored_never_both() -> None:
    every = set(typing.get_args(m.EventBody))
    assert set(HANDLERS) | IGNORED == every
    assert not set(HANDLERS) & IGNORED
    assert {type(b) for b in BODIES} == every


@pytest.mark.parametrize("body", BODIES, ids=lambda b: type(b).__name__)
def test_show_calls_the_method_made_for_the_body(body: m.Body) -> None:
    rec = Recorder()
    t = Target(chat_id=7, active=True)
    asyncio.run(view.show(rec, t, body))  # type: ignore[arg-type]
    if type(body) in IGNORED:
        assert rec.calls == [] and view.handler(body) is None
        return
    [(name, got_t, got_body)] = rec.calls
    assert got_t is t and got_body is body
    # The method it called is the one of View whose signature takes exactly this body type.
    hints = typing.get_type_hints(getattr(view.View, name), vars(m) | vars(view))
    assert hints["body"] is type(body)


@pytest.mark.parametrize(("event_chat", "last_chat", "active_in", "chat"), [
    (5, None, [], 5),  # the event names its chat (the user's message it answers)
    (5, 9, [1], 5),  # ...even when the session last spoke elsewhere
    (None, 9, [1, 2], 9),  # no chat named: where the session last spoke
    (None, None, [1, 2], 1),  # first time: the first chat it is active in
    (None, None, [], None),  # nowhere to show it
])
def test_choose_chat(event_chat: int | None, last_chat: int | None, active_in: list[int],
                     chat: int | None) -> None:
    assert choose_chat(event_chat, last_chat, active_in) == chat
