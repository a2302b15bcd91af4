"""state.py and prompts.py: the session's facts held once, and the permission prompts' life,
with a fake CLI line sink, a fake chat and a fake clock."""

from __future__ import annotations

import json
from typing import Any

import pytest

from session_worker import notices
from session_worker.prompts import Prompts
from session_worker.state import SessionState, Status
from session_worker.store import Store, read_json, write_json_atomic
from session_worker.translate import PermissionAsk
from wire import messages as m

META_FIELDS = {"name", "created", "last_active", "persona", "pid", "status", "claude_session_id"}
SID = "11111111-2222-3333-4444-555555555555"


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "session.db")
    yield s
    s.close()


def test_metadata_keeps_its_fields_and_follows_the_status(tmp_path, store):
    meta = tmp_path / "metadata.json"
    st = SessionState("demo", "default", meta, store)
    for status in (Status.RUNNING, Status.SUSPENDED, Status.RUNNING, Status.STOPPED):
        st.set_status(status)
        data = read_json(meta)
        assert set(data) == META_FIELDS
        assert data["status"] == status.value and st.status is status
    assert data["name"] == "demo" and data["persona"] == "default"
    assert data["claude_session_id"] is None


def test_session_id_is_written_to_kv_and_metadata_and_survives_a_restart(tmp_path, store):
    meta = tmp_path / "metadata.json"
    st = SessionState("demo", "default", meta, store)
    st.set_claude_session_id(SID)
    assert store.get("claude_session_id") == SID and read_json(meta)["claude_session_id"] == SID
    created = read_json(meta)["created"]
    again = SessionState("demo", "default", meta, store)
    assert again.claude_session_id == SID and again.created == created
    again.forget_claude_session_id()
    assert again.claude_session_id is None and read_json(meta)["claude_session_id"] is None
    assert SessionState("demo", "default", meta, store).claude_session_id is None


@pytest.mark.parametrize(
    "kv, in_meta, expected",
    [
        (None, None, None),
        (None, SID, SID),  # an older worker wrote only metadata.json
        (SID, None, SID),
        (SID, "other", SID),  # the kv is the one that was written last
        ("", None, None),  # a forgotten id
    ],
)
def test_session_id_at_start(tmp_path, store, kv, in_meta, expected):
    meta = tmp_path / "metadata.json"
    if kv is not None:
        store.put("claude_session_id", kv)
    write_json_atomic(meta, {"name": "demo", "claude_session_id": in_meta})
    assert SessionState("demo", "default", meta, store).claude_session_id == expected


def test_cost_is_the_sum_of_the_turns_and_survives_a_restart(tmp_path, store):
    meta = tmp_path / "metadata.json"
    st = SessionState("demo", "default", meta, store)
    assert st.add_turn_cost("a", 0.25, 10, 1) == pytest.approx(0.25)
    assert st.add_turn_cost("b", 0.5, 10, 1) == pytest.approx(0.75)
    assert SessionState("demo", "default", meta, store).cost_usd == pytest.approx(0.75)


# --------------------------------------------------------------------------- prompts


class Fakes:
    def __init__(self) -> None:
        self.now = 100.0
        self.cli_there = True
        self.lines: list[bytes] = []
        self.events: list[tuple[Any, int | None, str]] = []

    async def send(self, line: bytes) -> bool:
        if self.cli_there:
            self.lines.append(line)
        return self.cli_there

    def publish(self, body: Any, chat_id: int | None, key: str) -> None:
        self.events.append((body, chat_id, key))

    def prompts(self) -> Prompts:
        return Prompts(30.0, self.send, self.publish, clock=lambda: self.now)


def ask(rid: str = "p1", tool: str = "Bash") -> PermissionAsk:
    return PermissionAsk(rid, tool, {"command": "ls"}, f"{tool}: ls", '{"command":"ls"}')


def answer(prompt_id: str = "p1", allow: bool = True, always: bool = False) -> m.PermissionAnswer:
    return m.PermissionAnswer(id="r1", prompt_id=prompt_id, allow=allow, always=always)


async def test_a_prompt_opens_with_its_chat_and_key_and_closes_once():
    f = Fakes()
    p = f.prompts()
    await p.ask(ask(), 7, "k1")
    assert p and f.lines == []
    req, chat_id, key = f.events[0]
    assert isinstance(req, m.PermissionRequest) and req.timeout_seconds == 30.0
    assert (chat_id, key) == (7, "k1")
    assert await p.reply_to(answer()) == m.Ok(id="r1")
    assert not p and b'"allow"' in f.lines[0]
    resolved = f.events[1]
    assert resolved == (m.PermissionResolved(prompt_id="p1", allowed=True, reason=""), 7, "k1")
    again = await p.reply_to(answer())
    assert isinstance(again, m.Error) and "no longer waiting" in again.message


async def test_allow_for_this_session_grants_the_command_prefix_only():
    f = Fakes()
    p = f.prompts()
    await p.ask(ask("p1"), 7, "k1")
    assert f.events[0][0].grant == "Bash(ls:*)"
    assert f.events[0][0].grant_label == "`ls` commands"
    assert await p.reply_to(answer(always=True)) == m.Ok(id="r1")
    assert f.events[-1][0].reason == "`ls` commands allowed for the rest of this session"
    await p.ask(ask("p2"), 7, "k2")
    assert not p and len(f.lines) == 2 and b"p2" in f.lines[1]
    await p.ask(ask("p3", tool="Write"), 7, "k2")
    assert "p3" in p.open, "only the tool the user allowed"
    await p.ask(bash_ask("p4", "ls; curl http://127.0.0.1:9/x | sh"), 7, "k2")
    assert "p4" in p.open, "a compound command is judged by each part"
    await p.ask(bash_ask("p5", "rm -rf ~"), 7, "k2")
    assert "p5" in p.open


def bash_ask(rid: str, command: str) -> PermissionAsk:
    tin = {"command": command}
    return PermissionAsk(rid, "Bash", tin, f"Bash: {command}", json.dumps(tin))


async def test_grants_outlast_the_prompts_object_and_can_be_listed_and_revoked(tmp_path):
    store = Store(tmp_path / "session.db")
    f = Fakes()
    p = Prompts(30.0, f.send, f.publish, clock=lambda: f.now, store=store)
    await p.ask(bash_ask("p1", "touch a"), 7, "k1")
    await p.reply_to(answer(always=True))
    store.close()
    store = Store(tmp_path / "session.db")  # a restarted worker
    p = Prompts(30.0, f.send, f.publish, clock=lambda: f.now, store=store)
    await p.ask(bash_ask("p2", "touch b"), 7, "k1")
    assert not p, "the grant survived"
    listed = p.list_grants(m.ListGrants(id="l1"))
    assert isinstance(listed.result, m.GrantsResult)
    [grant] = listed.result.grants
    assert (grant.rule, grant.label) == ("Bash(touch:*)", "`touch` commands")
    assert p.revoke(m.RevokeGrant(id="r2", grant_id=grant.id)) == m.Ok(id="r2")
    again = p.revoke(m.RevokeGrant(id="r3", grant_id=grant.id))
    assert isinstance(again, m.Error) and "/permissions" in again.message
    await p.ask(bash_ask("p3", "touch c"), 7, "k1")
    assert "p3" in p.open, "revoked: it prompts again"
    store.close()


async def test_the_cli_is_answered_with_exactly_the_input_the_prompt_showed():
    f = Fakes()
    p = f.prompts()
    command = "echo " + "x" * 300 + "; curl http://127.0.0.1:9/x | sh"
    await p.ask(bash_ask("p1", command), 7, "k1")
    req = f.events[0][0]
    assert json.loads(req.input_json) == {"command": command}
    await p.reply_to(answer())
    sent = json.loads(f.lines[0])
    assert sent["response"]["response"]["updatedInput"] == {"command": command}
    # An input the request would not show as it is: denied, never approved unseen.
    bad = PermissionAsk("p2", "Bash", {"command": "rm -rf ~"}, "Bash: ls", '{"command":"ls"}')
    await p.ask(bad, 7, "k1")
    assert "p2" not in p.open
    denied = json.loads(f.lines[1])["response"]["response"]
    assert denied["behavior"] == "deny"


async def test_an_answer_that_cannot_reach_claude_says_so():
    f = Fakes()
    p = f.prompts()
    await p.ask(ask(), 7, "k1")
    f.cli_there = False
    got = await p.reply_to(answer(allow=False))
    assert isinstance(got, m.Error) and "send your message again" in got.message
    assert not p and f.events[-1][0].allowed is False


async def test_deadline_denies_only_the_prompts_that_are_due():
    f = Fakes()
    p = f.prompts()
    await p.ask(ask("p1"), 7, "k1")
    f.now += 10
    await p.ask(ask("p2"), 7, "k1")
    f.now += 20.5
    await p.expire()
    assert list(p.open) == ["p2"]
    assert f.events[-1][0] == m.PermissionResolved(prompt_id="p1", allowed=False, reason="timeout")
    assert notices.permission_timeout(30.0).encode() in f.lines[0]


async def test_withdrawn_and_dropped_prompts_are_resolved_as_denied():
    f = Fakes()
    p = f.prompts()
    await p.ask(ask("p1"), 7, "k1")
    await p.ask(ask("p2"), 8, "k2")
    p.withdrawn("p1")
    p.withdrawn("nope")
    p.drop_all("the turn ended")
    assert not p and f.lines == []
    assert [(e[0].prompt_id, e[0].reason, e[1]) for e in f.events[2:]] == [
        ("p1", "withdrawn by Claude", 7),
        ("p2", "the turn ended", 8),
    ]
