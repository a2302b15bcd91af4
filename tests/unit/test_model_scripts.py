"""The sandbox model API's pure scripting logic: directive parsing and response plans."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sandbox.model_scripts import (
    MARKDOWN_ANSWER,
    DirectiveError,
    Script,
    is_side_request,
    parse_directives,
    plan_response,
    rate_limit_headers,
    script_from_directives,
    sized_text,
    split_big,
    split_words,
    user_text,
)

TOOLS = [{"name": "Bash"}]


def turn(*messages: dict, **extra) -> dict:
    return {
        "model": "claude-opus-4-8",
        "max_tokens": 64000,
        "tools": TOOLS,
        "messages": list(messages),
        **extra,
    }


def user(content) -> dict:
    return {"role": "user", "content": content}


# --- parse_directives ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("hello there", {}),
        ("#sb:hang", {"hang": None}),
        ("#sb:size=3000000", {"size": "3000000"}),
        ("please #sb:slow=50 #sb:words=7 now", {"slow": "50", "words": "7"}),
        ("#sb:error=529\nmore text", {"error": "529"}),
        ("#sb:SIZE=10", {"size": "10"}),
        ("#sb:size=1 #sb:size=2", {"size": "2"}),  # the last one wins
        ("#sb:size=", {"size": ""}),
        ("#sb:thinking #sb:markdown", {"thinking": None, "markdown": None}),
        ("no #sb: here, nor #sb:=1", {}),
    ],
)
def test_parse_directives(text, expected):
    assert parse_directives(text) == expected


def test_bash_value_runs_to_end_of_line():
    text = "do it\n#sb:bash=echo marker-$((6*7)) > out.txt; cat out.txt  \n#sb:thinking"
    assert parse_directives(text) == {
        "bash": "echo marker-$((6*7)) > out.txt; cat out.txt",
        "thinking": None,
    }


def test_text_value_runs_to_end_of_line():
    assert parse_directives("#sb:text=hello #sb:world") == {"text": "hello #sb:world"}


@given(st.text())
def test_parse_never_crashes(text):
    out = parse_directives(text)
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", k) for k in out)
    assert all(v is None or isinstance(v, str) for v in out.values())


# --- script_from_directives ----------------------------------------------------------------------


def test_script_from_prompt_and_json_values():
    assert script_from_directives(parse_directives("#sb:error=529")) == Script(error=529)
    assert script_from_directives({"error": 529}) == Script(error=529)
    assert script_from_directives({"size": 100, "thinking": True}) == Script(
        size=100, thinking=True
    )
    assert script_from_directives({"slow": "20", "words": 3}) == Script(slow_ms=20, words=3)
    assert script_from_directives({"hang": None}) == Script(hang=True)
    assert script_from_directives({"markdown": "false"}) == Script()
    assert script_from_directives({}).empty


@pytest.mark.parametrize(
    "directives",
    [
        {"error": 418},
        {"error": "x"},
        {"size": -1},
        {"size": True},
        {"words": 0},
        {"bash": None},
        {"bogus": 1},
        {"hang": "maybe"},
    ],
)
def test_bad_directives_are_refused(directives):
    with pytest.raises(DirectiveError):
        script_from_directives(directives)


# --- reading requests ---------------------------------------------------------------------------


def test_user_text_ignores_system_reminders_and_tool_results():
    msg = user(
        [
            {"type": "text", "text": "<system-reminder>\n#sb:error=500\n</system-reminder>\n\n"},
            {"type": "text", "text": "hello there", "cache_control": {"type": "ephemeral"}},
            {"type": "tool_result", "tool_use_id": "t", "content": "#sb:hang"},
        ]
    )
    assert user_text(msg) == "hello there"
    assert user_text(user("plain string")) == "plain string"
    assert user_text(user("a <system-reminder>x</system-reminder> b")) == "a  b"


def test_user_text_ignores_the_summary_the_cli_writes_after_compacting():
    # What the CLI sends after an automatic compaction: the summary, then the new message.
    msg = user(
        [
            {"type": "text", "text": "This session is being continued from a previous"
             " conversation that ran out of context. The summary below covers it.\n\necho: x"},
            {"type": "text", "text": "still there"},
        ]
    )
    assert user_text(msg) == "still there"


def test_newest_user_message_wins_over_later_system_message():
    body = turn(user("#sb:size=5"), {"role": "system", "content": "#sb:hang"})
    plan = plan_response(body)
    assert plan.blocks[0].full == sized_text(5)


# --- plans ---------------------------------------------------------------------------------------


def test_echo_is_the_default():
    plan = plan_response(turn(user("hello there")))
    assert [b.full for b in plan.blocks] == ["echo: hello there"]
    assert plan.stop_reason == "end_turn" and plan.error is None


def test_bash_then_tool_result():
    plan = plan_response(turn(user("#sb:bash=echo hi")))
    (block,) = plan.blocks
    assert block.type == "tool_use" and block.tool_name == "Bash"
    assert block.tool_input == {"command": "echo hi", "description": "sandbox command"}
    assert json.loads(block.full) == block.tool_input
    assert plan.stop_reason == "tool_use"

    follow = turn(
        user("#sb:bash=echo hi"),
        {"role": "assistant", "content": [block.content()]},
        user(
            [
                {
                    "type": "tool_result",
                    "tool_use_id": block.tool_id,
                    "content": [{"type": "text", "text": "z" * 500}],
                }
            ]
        ),
    )
    plan2 = plan_response(follow)
    assert plan2.blocks[0].full == "tool said: " + "z" * 200


def test_error_slow_words_hang_markdown_thinking():
    assert plan_response(turn(user("#sb:error=529"))).error == 529
    assert (
        plan_response(turn(user("#sb:error=429"))).error_body()["error"]["type"]
        == "rate_limit_error"
    )

    slow = plan_response(turn(user("#sb:slow=25 #sb:words=4")))
    assert slow.delay_s == pytest.approx(0.025)
    assert slow.blocks[0].chunks == ["w1", " w2", " w3", " w4"]
    assert len(plan_response(turn(user("#sb:slow=10"))).blocks[0].chunks) == 20

    hang = plan_response(turn(user("#sb:hang")))
    assert hang.hang and len(hang.blocks[0].chunks) >= 2

    assert plan_response(turn(user("#sb:markdown"))).blocks[0].full == MARKDOWN_ANSWER
    thought = plan_response(turn(user("x #sb:thinking")))
    assert [b.type for b in thought.blocks] == ["thinking", "text"]


def test_override_beats_directives_and_side_requests_echo():
    assert plan_response(turn(user("#sb:hang")), Script(size=10)).blocks[0].full == sized_text(10)
    side = {"model": "claude-haiku-4-5", "max_tokens": 512, "messages": [user("#sb:error=500")]}
    assert is_side_request(side)
    assert not is_side_request(turn(user("x")))
    plan = plan_response(side, Script(error=529))
    assert plan.error is None and plan.blocks[0].full == "echo: #sb:error=500"


def test_bad_directive_in_prompt_answers_text():
    plan = plan_response(turn(user("#sb:error=418")))
    assert plan.error is None and "bad directive" in plan.blocks[0].full


def test_big_answer_in_few_large_deltas():
    plan = plan_response(turn(user("#sb:size=3000000")))
    chunks = plan.blocks[0].chunks
    assert 2 <= len(chunks) <= 4
    assert "".join(chunks) == sized_text(3_000_000)


# --- text helpers -------------------------------------------------------------------------------


@given(st.integers(min_value=0, max_value=20_000))
def test_sized_text_exact(n):
    text = sized_text(n)
    assert len(text) == n
    assert text.isascii()
    if n >= 3:
        assert text.endswith("END")


@given(st.text())
def test_split_words_is_lossless(text):
    assert "".join(split_words(text)) == text


@given(st.text(max_size=50), st.integers(min_value=1, max_value=7))
def test_split_big_is_lossless(text, chunk):
    parts = split_big(text, chunk)
    assert "".join(parts) == text and all(len(p) <= chunk for p in parts)


def test_any_tool_with_a_json_input():
    plan = plan_response(turn(user('#sb:tool=mcp__switchboard__send_file {"path": "a b.txt"}')))
    (block,) = plan.blocks
    assert block.type == "tool_use" and block.tool_name == "mcp__switchboard__send_file"
    assert block.tool_input == {"path": "a b.txt"}
    assert json.loads(block.full) == block.tool_input
    assert plan.stop_reason == "tool_use"


@pytest.mark.parametrize("value", ["", "9bad {}", "Read [1]", "Read {not json"])
def test_a_tool_directive_that_cannot_run_is_named(value):
    (block,) = plan_response(turn(user(f"#sb:tool={value}"))).blocks
    assert block.full.startswith("sandbox: bad directive: #sb:tool")


@pytest.mark.parametrize(("value", "expected"), [
    ("0.85", ("5h", 0.85)),
    ("7d:0.5", ("7d", 0.5)),
    ("5h:1", ("5h", 1.0)),
])
def test_ratelimit_directive(value: str, expected: tuple[str, float]) -> None:
    assert script_from_directives({"ratelimit": value}).ratelimit == expected
    body = turn({"role": "user", "content": f"hi #sb:ratelimit={value}"})
    assert plan_response(body).ratelimit == expected


@pytest.mark.parametrize("value", ["", "x", "1.5", "-0.1", "1d:0.5", None])
def test_bad_ratelimit_directives_are_refused(value: str | None) -> None:
    with pytest.raises(DirectiveError):
        script_from_directives({"ratelimit": value})


def test_rate_limit_headers_are_the_ones_the_cli_reads() -> None:
    h = rate_limit_headers("5h", 0.85, 1_000_000.0)
    reset = str((1_000_000 // 18000 + 1) * 18000)
    assert h == {
        "anthropic-ratelimit-unified-status": "allowed",
        "anthropic-ratelimit-unified-reset": reset,
        "anthropic-ratelimit-unified-representative-claim": "five_hour",
        "anthropic-ratelimit-unified-5h-utilization": "0.85",
        "anthropic-ratelimit-unified-5h-reset": reset,
        "anthropic-ratelimit-unified-5h-status": "allowed",
        "anthropic-ratelimit-unified-5h-surpassed-threshold": "0.8",
    }
    below = rate_limit_headers("7d", 0.5, 1_000_000.0)
    assert "anthropic-ratelimit-unified-7d-surpassed-threshold" not in below
    assert below["anthropic-ratelimit-unified-representative-claim"] == "seven_day"
    assert rate_limit_headers("5h", 1.0, 0.0)["anthropic-ratelimit-unified-status"] == "rejected"


def test_user_text_leaves_out_the_clis_local_command_records() -> None:
    said = {"role": "user", "content": [
        {"type": "text", "text": "<local-command-caveat>Caveat.</local-command-caveat>\n"
         "<command-name>/model</command-name>\n<command-message>model</command-message>\n"
         "<command-args>default</command-args>\n"
         "<local-command-stdout>Set model to x</local-command-stdout>"},
        {"type": "text", "text": "the question"}]}
    assert user_text(said) == "the question"
