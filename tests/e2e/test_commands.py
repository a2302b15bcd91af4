"""Commands that mean what they say, and an answer to every update, as the user sees them.

`/stop` cancels the running turn (never run again, named in the chat, a Retry that runs it),
`/remove` deletes a session so a `/new` of the same name starts fresh, `/stop all` from the chat
leaves the bot answering, reserved words are refused, an edit replaces a message not yet
started and an edited command is not run again, and kinds of message a session cannot take get
one sentence each. Driven through the sandbox Telegram user, `switchboardctl` and the model
sandbox's record of what Claude was asked.
"""
from __future__ import annotations

import re
from typing import Any

import pytest

from bot.voice import NOT_CONFIGURED
from tests.e2e.conftest import unique
from tests.support.chat import ask, bot_texts, last_id, new_session, wait_text
from tests.support.stack import OWNER, Stack
from tests.support.waits import wait_until

pytestmark = pytest.mark.timeout(240)


def asked(model: Any) -> list[str]:
    """The newest user text of every request Claude made: what each turn asked."""
    from sandbox.model_scripts import newest_user_message, user_text

    return [user_text(newest_user_message(r.get("messages"))) for r in model.requests()]


def buttons(msg: dict[str, Any]) -> list[str]:
    rows = (msg.get("reply_markup") or {}).get("inline_keyboard", [])
    return [str(b.get("callback_data")) for row in rows for b in row]


def test_stop_cancels_the_turn_and_retry_runs_it(stack: Stack, tg: Any, model: Any) -> None:
    name = unique("stop")
    new_session(tg, OWNER, name)
    slow = "count for me #sb:slow=200 #sb:words=20"
    tg.send(OWNER, slow)
    wait_until(lambda: slow in asked(model), 30, "Claude asked the slow message")
    after = last_id(tg, OWNER)
    tg.send(OWNER, "/stop")
    stopped = wait_text(tg, OWNER, re.escape('Your message "count for me #sb:slow=200 #sb:words=20"'
                                             ' was not finished because the session was'
                                             ' stopped.'), 60, after=after)
    assert [d for d in buttons(stopped) if d.startswith("rt:")], stopped
    stack.wait_state(f"session:{name}", "STOPPED", 30)
    # A new message starts the session again: it is answered, the stopped one is not re-run.
    ask(tg, OWNER, "after the stop", 60)
    assert asked(model).count(slow) == 1, asked(model)
    # Retry sends it again, as a new message, and it runs to the end this time.
    after = last_id(tg, OWNER)
    retry = next(d for d in buttons(stopped) if d.startswith("rt:"))
    tg.tap(OWNER, stopped["message_id"], retry)
    wait_text(tg, OWNER, r"\bw20\b", 60, after=after)
    assert asked(model).count(slow) == 2, asked(model)
    # The button is gone, and a second tap (from a stale client) sends nothing more.
    wait_until(lambda: not buttons(next(m for m in tg.chat(OWNER)
                                        if m["message_id"] == stopped["message_id"])),
               10, "the Retry button removed")


def test_remove_then_new_starts_fresh(stack: Stack, tg: Any, model: Any) -> None:
    name = unique("rm")
    new_session(tg, OWNER, name)
    ask(tg, OWNER, "remember the old answer", 60)
    session_dir = stack.state_dir / "sessions" / name
    assert (session_dir / "session.db").exists() and (session_dir / "work").is_dir()
    (session_dir / "work" / "notes.txt").write_text("old work")
    after = last_id(tg, OWNER)
    tg.send(OWNER, f"/remove {name}")
    confirm = wait_text(tg, OWNER, r"cannot be undone", 20, after=after)
    for what in ("session.db", "metadata.json", f"sessions/{name}/work", "bot's records"):
        assert what in confirm["text"], confirm["text"]
    tg.tap(OWNER, confirm["message_id"], f"rm:y:{name}")
    wait_until(lambda: "removed" in next(m for m in tg.chat(OWNER)
                                         if m["message_id"] == confirm["message_id"])["text"],
               60, "the removal confirmed")
    assert not session_dir.exists()
    assert not any(r["name"] == f"session:{name}" for r in stack.status())
    # The same name again: nothing of the old one comes back, in the chat or to Claude.
    def old_answers() -> int:
        return sum("echo: remember the old answer" in t for t in bot_texts(tg, OWNER))
    assert old_answers() == 1
    new_session(tg, OWNER, name)
    ask(tg, OWNER, "a fresh start", 60)
    assert old_answers() == 1, "an old answer was posted again"
    last = model.requests()[-1]
    assert "remember the old answer" not in str(last.get("messages")), "a fresh conversation"
    assert not (session_dir / "work" / "notes.txt").exists()


def test_stop_all_from_the_chat_leaves_the_bot_answering(stack: Stack, tg: Any) -> None:
    name = unique("all")
    new_session(tg, OWNER, name)
    bot_pid = stack.bot_pid()
    after = last_id(tg, OWNER)
    tg.send(OWNER, "/stop all")
    wait_text(tg, OWNER, re.escape(name), 60, after=after)
    stack.wait_state(f"session:{name}", "STOPPED", 30)
    after = last_id(tg, OWNER)
    tg.send(OWNER, "/stop bot")
    wait_text(tg, OWNER, r"The bot cannot stop itself from the chat: run `?switchboardctl stop"
              r" bot`? on the host\.", 20, after=after)
    after = last_id(tg, OWNER)
    tg.send(OWNER, "/restart all")
    wait_text(tg, OWNER, re.escape(name), 60, after=after)
    stack.wait_state(f"session:{name}", "RUNNING", 30)
    after = last_id(tg, OWNER)
    tg.send(OWNER, "/new all")
    wait_text(tg, OWNER, r"'all' is a reserved word", 20, after=after)
    after = last_id(tg, OWNER)
    tg.send(OWNER, "/help")
    wait_text(tg, OWNER, r"Switchboard runs your Claude Code sessions", 20, after=after)
    assert stack.bot_pid() == bot_pid, "the bot never stopped itself"
    assert not any(r["name"] == "session:all" for r in stack.status())
    wait_until(lambda: not tg.pending_updates(), 20, "every update confirmed")


def test_edits_replace_a_waiting_message_and_never_rerun_a_command(stack: Stack, tg: Any,
                                                                   model: Any) -> None:
    name = unique("ed")
    new_session(tg, OWNER, name)
    busy = "keep busy #sb:slow=200 #sb:words=25"
    busy_id = tg.send(OWNER, busy)["message"]["message_id"]
    wait_until(lambda: busy in asked(model), 30, "the first turn started")
    waiting = tg.send(OWNER, "the old words")["message"]["message_id"]
    after = last_id(tg, OWNER)
    tg.edit(OWNER, waiting, "the new words")
    wait_text(tg, OWNER, r"Your edit replaced the message", 20, after=after)
    after = last_id(tg, OWNER)
    tg.edit(OWNER, busy_id, "too late")
    wait_text(tg, OWNER, r"Your edit was not applied: Claude had already started", 20,
              after=after)
    wait_text(tg, OWNER, re.escape("echo: the new words"), 90)
    assert "the old words" not in asked(model) and "too late" not in asked(model)
    # An edited command answers once and runs nothing.
    cmd = tg.send(OWNER, "/sessions")["message"]["message_id"]
    wait_text(tg, OWNER, re.escape(name), 20, after=cmd)
    after = last_id(tg, OWNER)
    tg.edit(OWNER, cmd, "/stop")
    wait_text(tg, OWNER, r"Edited commands are not run again", 20, after=after)
    assert stack.row(f"session:{name}")["state"] == "RUNNING"  # type: ignore[index]


@pytest.mark.parametrize(("kind", "sentence"), [
    ("voice", NOT_CONFIGURED),  # no [voice] api_base_url: the sentence says how to enable it
    ("sticker", "Stickers are not supported: send text."),
    ("location", "Locations are not supported: send the place as text."),
])
def test_other_kinds_of_message_get_one_sentence(stack: Stack, tg: Any, kind: str,
                                                 sentence: str) -> None:
    after = last_id(tg, OWNER)
    tg.send_other(OWNER, kind)
    wait_text(tg, OWNER, re.escape(sentence), 20, after=after)
    wait_until(lambda: not tg.pending_updates(), 20, "the update confirmed")
