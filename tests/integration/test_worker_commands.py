"""The worker's SessionCommands with the real CLI against the sandbox model: /model with a
persona's model and back to it, /clear refused mid-turn and then a fresh conversation, bad
input answered with one sentence, and a budget that keeps a queued message waiting until the
raise (today's budget shared by every session is tests/unit/test_worker_ledger.py's)."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.model_scripts import is_side_request, newest_user_message, user_text
from tests.support.worker import WorkerHarness
from wire import messages as m

pytestmark = pytest.mark.timeout(120)


def command(w: WorkerHarness, verb: str, arg: str = "") -> m.Msg:
    rid = m.new_id()
    w.send(m.SessionCommand(id=rid, verb=verb, arg=arg, chat_id=42))
    return w.reply(rid, 30)


def text_of(reply: m.Msg) -> str:
    assert isinstance(reply, m.Ok) and isinstance(reply.result, m.CommandResult), reply
    return reply.result.text


def models_for(model_api: Any, text: str) -> set[str]:
    return {str(r["model"]) for r in model_api.requests() if not is_side_request(r)
            and user_text(newest_user_message(r.get("messages"))) == text}


def test_model_persona_default_and_clear(tmp_path, claude_bin, cli_env, model_api) -> None:
    persona = m.Persona(name="quick", model="claude-sonnet-4-5")
    with WorkerHarness(tmp_path, claude_bin, cli_env, persona=persona) as w:
        w.start()
        w.ask("on the persona's")
        assert models_for(model_api, "on the persona's") == {"claude-sonnet-4-5"}
        assert "claude-sonnet-4-5 (the persona's)" in text_of(command(w, "model"))
        assert "now uses claude-opus-5-5" in text_of(command(w, "model", "claude-opus-5-5"))
        w.ask("on opus")
        assert models_for(model_api, "on opus") == {"claude-opus-5-5"}
        # default: back to the persona's model, on the warm CLI and for the next start.
        assert "now uses claude-sonnet-4-5" in text_of(command(w, "model", "default"))
        w.ask("back on sonnet")
        assert models_for(model_api, "back on sonnet") == {"claude-sonnet-4-5"}
        bad = command(w, "model", "no such; model")
        assert isinstance(bad, m.Error) and "is not a model name" in bad.message

        # /clear while a turn runs is refused; after it, the conversation starts over.
        slow = w.turn("a slow one #sb:slow=100 #sb:words=30")
        w.wait_for(lambda: w.bodies(m.TextDelta, slow), 20, "the slow stream")
        busy = command(w, "clear")
        assert isinstance(busy, m.Error) and busy.code == m.E_STATE, busy
        w.result(slow, 30)
        old = w.metadata()["claude_session_id"]
        assert old in text_of(command(w, "clear"))
        w.ask("fresh start")
        [fresh] = [r for r in model_api.requests()
                   if user_text(newest_user_message(r.get("messages"))) == "fresh start"
                   and not is_side_request(r)]
        assert "on opus" not in str(fresh["messages"])
        assert w.metadata()["claude_session_id"] not in (None, old)
        history = text_of(command(w, "history"))
        assert old in history and "▶ now: " + w.metadata()["claude_session_id"] in history
        unknown = command(w, "dance")
        assert isinstance(unknown, m.Error) and unknown.code == m.E_BAD_REQUEST


def test_a_session_budget_keeps_the_queue_until_raised(tmp_path, claude_bin, cli_env,
                                                       model_api) -> None:
    with WorkerHarness(tmp_path, claude_bin, cli_env, max_usd_per_session=0.001) as w:
        w.start()
        w.ask("spend")
        assert "not waiting" in text_of(command(w, "raise_budget", "day"))
        held = w.turn("held back")
        w.wait_for(lambda: w.bodies(m.BudgetHold), 20, "the hold")
        [hold] = w.bodies(m.BudgetHold)
        assert hold.kind == "session" and hold.limit_usd == 0.001 and hold.spent_usd > 0.001
        assert not models_for(model_api, "held back")
        assert "Raised this session's budget" in text_of(command(w, "raise_budget", "session"))
        assert w.result(held, 30).is_error is False
        assert models_for(model_api, "held back")
        bad = command(w, "raise_budget", "week")
        assert isinstance(bad, m.Error) and "session or day" in bad.message
