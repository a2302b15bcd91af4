"""Model, context, limits, budgets and cost, as the user sees them in the chat and at the
terminal, against the real CLI and the sandbox model API's record of what Claude was asked.

One story per test: `/model` changes the model of the next request and survives a restart; the
footer and `status -l` show tokens and context; a subscription window past 80 % warns once;
`/context` and `/compact` answer from the CLI; `/clear` starts a fresh conversation that
`/history` can find; a stopped session keeps its cost. And a budget holds the next message
with a sentence and a button that lets it run (the persona's `model` is the one asked).
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import unique
from tests.support.chat import ask, bot_texts, last_id, new_session, wait_text
from tests.support.stack import OWNER, Stack
from tests.support.waits import wait_until

pytestmark = pytest.mark.timeout(240)


def main_requests(model: Any, text: str) -> list[dict[str, Any]]:
    """The model turns (not the CLI's side requests) whose newest user text is `text`."""
    from sandbox.model_scripts import is_side_request, newest_user_message, user_text

    return [r for r in model.requests() if not is_side_request(r)
            and user_text(newest_user_message(r.get("messages"))) == text]


def every_text(request: dict[str, Any]) -> str:
    return json.dumps(request.get("messages"))


def buttons(msg: dict[str, Any]) -> list[str]:
    rows = (msg.get("reply_markup") or {}).get("inline_keyboard", [])
    return [str(b.get("callback_data")) for row in rows for b in row]


def command(tg: Any, text: str, pattern: str, timeout: float = 60) -> dict[str, Any]:
    after = last_id(tg, OWNER)
    tg.send(OWNER, text)
    return wait_text(tg, OWNER, pattern, timeout, after=after)


def test_model_limits_clear_history_and_cost(make_stack: Any, tg: Any, model: Any) -> None:
    stack: Stack = make_stack(subscription=True)
    name = unique("meter")
    program = f"session:{name}"
    new_session(tg, OWNER, name)
    first = ask(tg, OWNER, "first words")
    # The footer: time, cost, tokens in and out, and how full the context is.
    wait_text(tg, OWNER, r"✓ .* in / \d+ out · context \d+ %", 30, after=first["message_id"] - 1)

    # /model switches the warm CLI: the next request names the new model.
    command(tg, "/model claude-sonnet-4-5", r"now uses claude-sonnet-4-5")
    ask(tg, OWNER, "on sonnet")
    assert {r["model"] for r in main_requests(model, "on sonnet")} == {"claude-sonnet-4-5"}
    # ... and a restarted worker starts its CLI with it.
    assert stack.ctl("restart", program).returncode == 0
    stack.wait_state(program, "RUNNING", 30)
    ask(tg, OWNER, "after the restart")
    assert {r["model"] for r in main_requests(model, "after the restart")} == {
        "claude-sonnet-4-5"}
    command(tg, "/model", r"uses claude-sonnet-4-5 \(chosen with /model\)")

    # A subscription window at 85 % warns once, and not again for the same window.
    warning = r"5-hour subscription limit is at 8\d %"
    tg.send(OWNER, "near the limit #sb:ratelimit=0.85")
    wait_text(tg, OWNER, warning, 60)
    tg.send(OWNER, "still near #sb:ratelimit=0.86")
    wait_text(tg, OWNER, r"echo: still near", 60)
    assert len([t for t in bot_texts(tg, OWNER) if re.search(warning, t)]) == 1
    wait_until(lambda: "limit_five_hour=86%" in stack.ctl("status", "-l", program).stdout, 10,
               "the worker's heartbeat carried the window")
    # /status: the pinned live status names each session's model and context fill, and the
    # subscription's windows.
    status = command(tg, "/status", rf"{re.escape(name)} — .*claude-sonnet-4-5 · context \d+ %")
    assert re.search(r"limits: 5-hour 8\d %", status["text"]), status["text"]
    # status -l and --json show the model, the last turn's tokens and the context fill.
    detail = stack.ctl("status", "-l", program).stdout
    assert "model=claude-sonnet-4-5" in detail and "tokens_in=" in detail, detail
    [row] = json.loads(stack.ctl("--json", "status", program).stdout)
    assert row["model"] == "claude-sonnet-4-5" and row["context_percent"] > 0, row

    # /context asks the CLI; /compact runs the CLI's own /compact and says how far it shrank.
    ctx = command(tg, "/context", r"Context: [\d,]+ of 200,000 tokens \(\d+ %\)")
    assert "• Messages: " in ctx["text"] and "claude-sonnet-4-5" in ctx["text"], ctx["text"]
    command(tg, "/compact", rf"Compacting session {re.escape(name)}'s conversation now")
    wait_text(tg, OWNER, r"Compacted the conversation: [\d,]+ → [\d,]+ tokens\.", 60)
    ask(tg, OWNER, "after compacting")

    # /clear: a fresh conversation (nothing earlier in the next request); /history has the old id.
    old_id = wait_until(lambda: (Path(stack.state_dir) / "sessions" / name / "metadata.json")
                        .read_text(), 10, "metadata")
    old = json.loads(old_id)["claude_session_id"]
    command(tg, "/clear", rf"starts a fresh conversation.*{re.escape(old)}")
    clean = ask(tg, OWNER, "a clean slate")
    # Its footer means its result, and so its cost, is in the session's usage table.
    wait_text(tg, OWNER, r"✓ .* in / \d+ out", 30, after=clean["message_id"] - 1)
    [fresh] = main_requests(model, "a clean slate")
    assert "on sonnet" not in every_text(fresh) and "first words" not in every_text(fresh)
    history = command(tg, "/history", re.escape(old))
    assert re.search(rf"• {re.escape(old)} \(\d{{4}}-\d\d-\d\dT", history["text"]), history
    assert "▶ now: " in history["text"] and old not in history["text"].split("▶ now: ")[1]

    # /cost keeps a stopped session's cost: it comes from the session's own usage table.
    before = command(tg, "/cost", rf"{re.escape(name)}: \$")["text"]
    cost = re.search(rf"{re.escape(name)}: (\$[0-9.]+)", before)
    assert cost and cost.group(1) not in ("$0", "$0.00", "$0.0000"), before
    assert stack.ctl("stop", program).returncode == 0
    stack.wait_state(program, "STOPPED", 30)
    after = command(tg, "/cost", rf"{re.escape(name)}: \$")["text"]
    assert f"{name}: {cost.group(1)}" in after and f"Total: {cost.group(1)}" in after, after
    assert f"cost={cost.group(1)}" in stack.ctl("status", "-l", program).stdout


def test_a_budget_holds_the_next_message_and_the_button_runs_it(
        make_stack: Any, tg: Any, model: Any, tmp_path: Path) -> None:
    personas = tmp_path / "personas"
    personas.mkdir()
    (personas / "default.json").write_text(json.dumps({"name": "default"}))
    (personas / "quick.json").write_text(json.dumps(
        {"name": "quick", "description": "on sonnet", "model": "claude-sonnet-4-5"}))
    make_stack(claude_cfg={"max_usd_per_session": 0.01}, top={"personas_dir": str(personas)})
    name = unique("budget")
    new_session(tg, OWNER, name, "quick")
    ask(tg, OWNER, "one")  # starts under the budget, and spends past it
    # The persona's model is the one Claude was asked with.
    assert {r["model"] for r in main_requests(model, "one")} == {"claude-sonnet-4-5"}

    after = last_id(tg, OWNER)
    tg.send(OWNER, "two")
    hold = wait_text(tg, OWNER, r"The next message waits: this session's budget of \$0\.01 is"
                     r" spent", 60, after=after)
    [data] = buttons(hold)
    assert data == f"bu:s:{name}"
    tg.send(OWNER, "three")  # queued behind it: the sentence is not repeated
    wait_until(lambda: len([t for t in bot_texts(tg, OWNER) if "The next message waits" in t])
               == 1 and not main_requests(model, "two"), 5, "still held, said once")
    assert not main_requests(model, "two")

    tg.tap(OWNER, hold["message_id"], data)
    wait_text(tg, OWNER, r"Raised this session's budget to \$0\.\d\d for today", 30, after=after)
    wait_text(tg, OWNER, r"echo: two", 60, after=after)
    # Raised by what it takes and one budget more: "three" is held again, said once more.
    wait_text(tg, OWNER, r"The next message waits", 60, after=hold["message_id"])
    assert not main_requests(model, "three")
