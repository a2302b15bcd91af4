"""router.py: each CLI stdout line goes where it belongs, with a fake chat, a fake CLI stdin and a
fake turn runner (the session's state and store are real, in a temp dir)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from session_worker.emitter import Emitter
from session_worker.prompts import Prompts
from session_worker.router import ControlWaiters, Router
from session_worker.state import SessionState
from session_worker.store import InboxItem, Store, read_json
from session_worker.translate import ApiRetry, ControlReply, Translator
from wire import messages as m

SID = "11111111-2222-3333-4444-555555555555"
ITEM = InboxItem(1, "k1", 7, "hi", None, [], "running", 1)


class FakeChat:
    def __init__(self) -> None:
        self.events: list[tuple[Any, int | None, str, bool]] = []

    def publish(self, body: Any, chat_id: int | None, key: str, ephemeral: bool = False) -> None:
        self.events.append((body, chat_id, key, ephemeral))


class FakeTurns:
    def __init__(self) -> None:
        self.item: InboxItem | None = ITEM
        self.results: list[m.TurnResult] = []
        self.retries: list[ApiRetry] = []

    def current_item(self) -> InboxItem | None:
        return self.item

    def on_result(self, result: m.TurnResult) -> None:
        self.results.append(result)

    def on_api_retry(self, retry: ApiRetry) -> None:
        self.retries.append(retry)


class Rig:
    def __init__(self, tmp_path: Any) -> None:
        self.store = Store(tmp_path / "session.db")
        self.meta = tmp_path / "metadata.json"
        self.state = SessionState("demo", "default", self.meta, self.store)
        self.chat = FakeChat()
        self.turns = FakeTurns()
        self.out = Emitter(current=self.turns.current_item)
        self.out.chat = self.chat  # type: ignore[assignment]
        self.stdin: list[dict[str, Any]] = []
        self.prompts = Prompts(30.0, self.send, self.publish)
        self.waiters = ControlWaiters()
        self.router = Router(
            Translator(), self.state, self.out, self.prompts, self.waiters, self.send, self.turns
        )

    async def send(self, line: bytes) -> bool:
        self.stdin.append(json.loads(line))
        return True

    def publish(self, body: Any, chat_id: int | None, key: str) -> None:
        self.out.emit(body, chat_id=chat_id, key=key)

    async def line(self, obj: dict[str, Any] | bytes) -> None:
        await self.router.on_line(obj if isinstance(obj, bytes) else json.dumps(obj).encode())

    def bodies(self) -> list[Any]:
        return [e[0] for e in self.chat.events]


@pytest.fixture
def rig(tmp_path):
    r = Rig(tmp_path)
    yield r
    r.store.close()


async def test_init_sets_the_sessions_id_once_and_is_announced(rig):
    init = {"type": "system", "subtype": "init", "session_id": SID, "model": "m", "tools": []}
    await rig.line(init)
    await rig.line(init)
    assert rig.state.claude_session_id == SID
    assert read_json(rig.meta)["claude_session_id"] == SID
    assert rig.store.get("claude_session_id") == SID
    assert [type(b) for b in rig.bodies()] == [m.SessionInit]
    assert rig.chat.events[0][1:3] == (7, "k1"), "addressed to the running turn's message"


async def test_a_permission_ask_opens_a_prompt_for_the_running_turn(rig):
    ask = {"type": "control_request", "request_id": "p1",
           "request": {"subtype": "can_use_tool", "tool_name": "Bash",
                       "input": {"command": "ls"}}}
    await rig.line(ask)
    assert rig.prompts.open["p1"].key == "k1" and rig.prompts.open["p1"].chat_id == 7
    (req,) = rig.bodies()
    assert isinstance(req, m.PermissionRequest) and req.summary == "Bash: ls"
    await rig.line({"type": "control_cancel_request", "request_id": "p1"})
    assert not rig.prompts
    assert rig.bodies()[-1] == m.PermissionResolved(
        prompt_id="p1", allowed=False, reason="withdrawn by Claude"
    )


async def test_replies_to_our_control_requests_reach_their_waiter(rig):
    fut = rig.waiters.expect("i1")
    await rig.line({"type": "control_response",
                    "response": {"subtype": "success", "request_id": "i1"}})
    assert fut.result() == ControlReply("i1", True)
    other = rig.waiters.expect("i2")
    rig.waiters.cancel_all()
    assert other.cancelled()


async def test_an_unsupported_control_request_is_refused(rig):
    await rig.line({"type": "control_request", "request_id": "r9",
                    "request": {"subtype": "hook_callback"}})
    assert rig.stdin == [{"type": "control_response", "response": {
        "subtype": "error", "request_id": "r9", "error": "unsupported: hook_callback"}}]


async def test_results_and_api_retries_go_to_the_turn_runner(rig):
    await rig.line({"type": "system", "subtype": "api_retry", "error_status": 529,
                    "attempt": 1, "max_retries": 10})
    await rig.line({"type": "result", "subtype": "success", "result": "ok",
                    "total_cost_usd": 0.5, "num_turns": 1})
    assert rig.turns.retries == [ApiRetry(529, 1, 10)]
    (res,) = rig.turns.results
    assert res.subtype == "success" and res.cost_usd == pytest.approx(0.5)


@pytest.mark.parametrize(
    "line, notice",
    [
        (b"not json at all", None),
        (b"", None),
        (b'{"type": "assistant", ', "could not be read"),
        (b'{"type": "assistant", "x": "\xff"}', "not quite readable"),
    ],
)
async def test_unreadable_lines_are_skipped_or_said(rig, line, notice):
    await rig.line(line)
    said = [b for b in rig.bodies() if isinstance(b, m.Notice)]
    if notice is None:
        assert said == []
    else:
        assert len(said) == 1 and notice in said[0].message and said[0].level == "warning"

