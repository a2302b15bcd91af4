"""stream_json.py: line framing with no size cliff; translate.py: every CLI event into its wire
body."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from session_worker import stream_json as stream
from session_worker import translate
from session_worker.stream_json import (
    BadLine,
    LineFramer,
    Oversized,
    Repaired,
    Skipped,
    parse_line,
)
from session_worker.translate import Translator
from wire import messages as m


def test_framer_joins_chunks_and_splits_lines():
    f = LineFramer()
    assert f.feed(b'{"a":') == []
    assert f.feed(b'1}\n{"b"') == [b'{"a":1}']
    assert f.feed(b":2}\n\n") == [b'{"b":2}', b""]
    assert f.finish() == []


def test_framer_last_line_without_newline_at_eof():
    f = LineFramer()
    f.feed(b"tail")
    assert f.finish() == [b"tail"]


def test_framer_big_line_intact():
    f = LineFramer()
    line = b"x" * 5_000_000
    out = []
    for i in range(0, len(line), 65536):
        out += f.feed(line[i : i + 65536])
    out += f.feed(b"\nnext\n")
    assert out == [line, b"next"]


def test_framer_drops_only_the_oversized_line():
    f = LineFramer(max_line=10)
    out = f.feed(b"0123456789ABC") + f.feed(b"DEF\nok\n")
    assert out == [Oversized(16), b"ok"]
    assert f.pending == 0


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(st.binary(max_size=50), max_size=20), st.integers(min_value=1, max_value=17))
def test_framer_any_chunking_gives_the_same_lines(lines, step):
    data = b"".join(x.replace(b"\n", b"") + b"\n" for x in lines)
    f = LineFramer()
    got = []
    for i in range(0, len(data), step):
        got += f.feed(data[i : i + step])
    assert got == [x.replace(b"\n", b"") for x in lines]


@pytest.mark.parametrize(
    "line, kind",
    [
        (b'{"type":"result"}', dict),
        (b"  ", Skipped),
        (b"[DEBUG] hello", Skipped),
        (b'{"type": oops', BadLine),
        (b'{"x":"\xff"}', Repaired),
        (b'{"x":\xff}', BadLine),
        (b"[1,2]", Skipped),
        (b'"str"', Skipped),
        (Oversized(99), BadLine),
    ],
)
def test_parse_line(line, kind):
    assert isinstance(parse_line(line), kind)


SID = "11111111-2222-3333-4444-555555555555"


def tr(ev, t=None):
    t = t or Translator()
    return t.translate(ev)


def test_init_emits_once_and_tracks_session():
    t = Translator()
    ev = {
        "type": "system",
        "subtype": "init",
        "session_id": SID,
        "model": "opus",
        "tools": ["Bash", 3],
    }
    out = t.translate(ev)
    assert out.session_id == SID
    assert [e.body for e in out.emits] == [
        m.SessionInit(claude_session_id=SID, model="opus", tools=["Bash"])
    ]
    assert t.translate(ev).emits == [], "the repeated init of a warm CLI is not re-emitted"


def test_other_system_subtypes_pass_on():
    out = tr({"type": "system", "subtype": "status", "status": "requesting"})
    assert out.emits[0].ephemeral and out.emits[0].body.type == "system/status"
    out = tr({"type": "system", "subtype": "hook_started"})
    assert not out.emits[0].ephemeral and isinstance(out.emits[0].body, m.Unknown)


def test_stream_text_delta_is_ephemeral():
    ev = {
        "type": "stream_event",
        "parent_tool_use_id": None,
        "event": {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "hi"}},
    }
    out = tr(ev)
    assert out.emits == [translate.Emit(m.TextDelta(text="hi"), ephemeral=True)]
    assert tr({"type": "stream_event", "event": {"type": "message_stop"}}).emits == []


def test_assistant_blocks():
    ev = {
        "type": "assistant",
        "session_id": SID,
        "message": {
            "content": [
                {"type": "thinking", "thinking": "hmm"},
                {"type": "text", "text": "hello"},
                {
                    "type": "tool_use",
                    "id": "tu1",
                    "name": "Bash",
                    "input": {"command": "ls -la\n  /tmp", "description": "x"},
                },
                {"type": "redacted_thinking", "data": "..."},
                "garbage",
            ]
        },
    }
    bodies = [e.body for e in tr(ev).emits]
    assert bodies[0] == m.Thinking(text="hmm")
    assert bodies[1] == m.AssistantText(text="hello")
    assert isinstance(bodies[2], m.ToolUse) and bodies[2].summary == "Bash: ls -la /tmp"
    assert json.loads(bodies[2].input_json)["command"].startswith("ls")
    assert len(bodies) == 3


@pytest.mark.parametrize(
    "name, tool_input, summary",
    [
        ("Read", {"file_path": "/a/b.py"}, "Read: /a/b.py"),
        ("Grep", {"pattern": "TODO", "path": "."}, "Grep: TODO"),
        ("mcp__x__y", {"q": "term"}, "mcp__x__y: term"),
        ("Thing", {}, "Thing"),
        ("Thing", {"n": 3}, 'Thing: {"n":3}'),
        ("Bash", {"command": "x" * 500}, None),
    ],
)
def test_tool_summary_one_compact_line(name, tool_input, summary):
    got = translate.tool_summary(name, tool_input)
    assert "\n" not in got and len(got) <= translate.SUMMARY_MAX
    if summary is not None:
        assert got == summary


def test_tool_result_preview():
    ev = {
        "type": "user",
        "message": {
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "tu1",
                    "content": "line\n" * 200,
                    "is_error": False,
                },
                {
                    "type": "tool_result",
                    "tool_use_id": "tu2",
                    "content": [{"type": "text", "text": "denied"}],
                    "is_error": True,
                },
            ]
        },
    }
    a, b = [e.body for e in tr(ev).emits]
    assert a.tool_use_id == "tu1" and len(a.preview) <= translate.TOOL_PREVIEW and not a.is_error
    assert b == m.ToolResult(tool_use_id="tu2", is_error=True, preview="denied")
    assert tr({"type": "user", "message": {"content": "[Request interrupted by user]"}}).emits == []


def test_result_cost_is_per_turn_from_the_running_total():
    t = Translator()
    r1 = t.translate(
        {
            "type": "result",
            "subtype": "success",
            "result": "ok",
            "total_cost_usd": 0.1,
            "duration_ms": 5,
            "num_turns": 1,
            "session_id": SID,
        }
    ).result
    r2 = t.translate(
        {"type": "result", "subtype": "success", "result": "ok", "total_cost_usd": 0.25}
    ).result
    assert r1.cost_usd == pytest.approx(0.1) and r2.cost_usd == pytest.approx(0.15)
    t.new_process()
    r3 = t.translate({"type": "result", "subtype": "success", "total_cost_usd": 0.05}).result
    assert r3.cost_usd == pytest.approx(0.05)


@pytest.mark.parametrize(
    "ev, expect",
    [
        (
            {
                "subtype": "success",
                "is_error": True,
                "api_error_status": 401,
                "result": "Invalid API key",
            },
            {"is_error": True, "api_error_status": 401, "text": "Invalid API key"},
        ),
        (
            {
                "subtype": "error_during_execution",
                "is_error": True,
                "terminal_reason": "aborted_streaming",
            },
            {"subtype": "error_during_execution", "terminal_reason": "aborted_streaming"},
        ),
        ({"subtype": "error_max_turns", "is_error": True}, {"subtype": "error_max_turns"}),
        (
            {"subtype": "error_max_budget_usd", "is_error": True},
            {"subtype": "error_max_budget_usd"},
        ),
        ({"subtype": "success", "result": "x" * 100_000}, {"text": ""}),
        ({"total_cost_usd": "bad", "duration_ms": "bad"}, {"cost_usd": 0.0, "duration_ms": 0}),
    ],
)
def test_result_subtypes(ev, expect):
    res = tr(dict(ev, type="result")).result
    for k, v in expect.items():
        assert getattr(res, k) == v


def test_control_messages():
    ask = tr(
        {
            "type": "control_request",
            "request_id": "r1",
            "request": {
                "subtype": "can_use_tool",
                "tool_name": "Bash",
                "input": {"command": "rm -rf x"},
            },
        }
    ).permission
    assert (
        ask.request_id == "r1"
        and ask.summary == "Bash: rm -rf x"
        and ask.input == {"command": "rm -rf x"}
    )
    other = tr(
        {"type": "control_request", "request_id": "r2", "request": {"subtype": "hook_callback"}}
    )
    assert other.other_request == translate.OtherControlRequest("r2", "hook_callback")
    rep = tr({"type": "control_response", "response": {"subtype": "success", "request_id": "r3"}})
    assert rep.control_reply == translate.ControlReply("r3", True)


def test_unknown_types_pass_on():
    out = tr({"type": "brand_new", "x": 1})
    assert isinstance(out.emits[0].body, m.Unknown) and out.emits[0].body.type == "brand_new"
    assert isinstance(tr({"type": "rate_limit_event", "x": 1}).emits[0].body, m.RateLimit)


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "type",
                "message",
                "event",
                "subtype",
                "request",
                "response",
                "session_id",
                "result",
                "total_cost_usd",
            ]
        ),
        st.one_of(
            st.none(),
            st.integers(),
            st.text(max_size=5),
            st.sampled_from(
                [
                    "assistant",
                    "user",
                    "result",
                    "system",
                    "stream_event",
                    "control_request",
                    "control_response",
                ]
            ),
            st.lists(st.integers(), max_size=2),
            st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
        ),
    )
)
def test_translate_never_raises(ev):
    Translator().translate(ev)


def test_lines_to_the_cli():
    assert json.loads(stream.user_line("hi")) == {
        "type": "user",
        "message": {"role": "user", "content": "hi"},
    }
    assert json.loads(stream.interrupt_line("i1"))["request"] == {"subtype": "interrupt"}
    allow = json.loads(stream.permission_line("p1", True, {"command": "ls"}, ""))
    assert allow["response"]["response"] == {"behavior": "allow", "updatedInput": {"command": "ls"}}
    deny = json.loads(stream.permission_line("p1", False, {}, "no"))
    assert deny["response"]["response"] == {"behavior": "deny", "message": "no"}
    assert stream.user_line("a\nb").count(b"\n") == 1


def test_cancel_request_withdraws_a_prompt():
    out = tr({"type": "control_cancel_request", "request_id": "r9"})
    assert out.cancelled_request == "r9" and out.emits[0].ephemeral


def test_api_retry_is_ephemeral_and_read():
    out = tr({"type": "system", "subtype": "api_retry", "attempt": 1, "max_retries": 10,
              "error_status": 401, "error": "authentication_failed", "session_id": SID})
    assert out.api_retry == translate.ApiRetry(status=401, attempt=1, max_retries=10)
    assert [e.ephemeral for e in out.emits] == [True]
    odd = tr({"type": "system", "subtype": "api_retry", "error_status": "x"})
    assert odd.api_retry == translate.ApiRetry(status=None, attempt=0, max_retries=0)
