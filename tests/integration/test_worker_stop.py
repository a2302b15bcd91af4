"""A stop that is the user's cancels the running turn for good; any other stop keeps it.

The supervisor marks a user's stop with `wire.names.USER_STOP_FILE` in the session dir before
its SIGTERM (session_worker/worker.py). Here the test plays the supervisor: the same SIGTERM,
with and without the file. Also the EditTurn request: a queued message's text is replaced, a
started one is not.
"""

from __future__ import annotations

import sqlite3

import pytest

from tests.support.worker import WorkerHarness
from wire import messages as m
from wire.names import USER_STOP_FILE

pytestmark = pytest.mark.timeout(120)

SLOW = "slow stop me #sb:slow=200 #sb:words=60"


def _user_texts(model_api) -> list[str]:
    """The newest user text of every request the model got: what each turn asked."""
    from sandbox.model_scripts import newest_user_message, user_text

    return [user_text(newest_user_message(r.get("messages"))) for r in model_api.requests()]


def _inbox_state(w: WorkerHarness, key: str) -> str:
    db = sqlite3.connect(str(w.session_dir / "session.db"))
    try:
        return str(db.execute("SELECT state FROM inbox WHERE key=?", (key,)).fetchone()[0])
    finally:
        db.close()


def test_a_users_stop_ends_the_turn_and_it_never_runs_again(tmp_path, claude_bin, cli_env,
                                                            model_api):
    with WorkerHarness(tmp_path, claude_bin, cli_env) as w:
        w.start()
        key = w.turn(SLOW)
        w.wait_for(lambda: len(w.bodies(m.TextDelta, key)) >= 2, 30, "the stream under way")
        (w.session_dir / USER_STOP_FILE).write_text("stop\n")
        assert w.stop() == 0
        w.inbox.clear()
        w.start()
        # What the bot would ask for after the Hello: the outbox holds the stopped turn's end.
        w.send(m.Replay(id="r", after_seq=0))
        res = w.result(key, 10)
        assert res.is_error and res.subtype == "stopped_by_user"
        assert res.text == ('Your message "slow stop me #sb:slow=200 #sb:words=60" was not'
                            " finished because the session was stopped.")
        assert res.retry_text == SLOW
        assert _inbox_state(w, key) == "failed"
        assert not (w.session_dir / USER_STOP_FILE).exists()
        # The next message is answered, and the stopped one is not sent to the model again.
        k2, _ = w.ask("after the stop")
        assert w.texts(k2) == "echo: after the stop"
        assert _user_texts(model_api).count(SLOW) == 1, _user_texts(model_api)


def test_a_stop_that_is_not_the_users_keeps_the_turn_for_the_next_start(tmp_path, claude_bin,
                                                                         cli_env, model_api):
    # The stop waits 1 s after closing the CLI's stdin; the 3 s turn outlasts that.
    with WorkerHarness(tmp_path, claude_bin, cli_env, stop_close_wait_seconds=1.0) as w:
        w.start()
        key = w.turn("slow keep me #sb:slow=150 #sb:words=20")  # outlasts the stdin close
        w.wait_for(lambda: len(w.bodies(m.TextDelta, key)) >= 2, 30, "the stream under way")
        assert w.stop() == 0  # a SIGTERM without the file: a shutdown of the supervisor
        assert not [r for r in w.bodies(m.TurnResult, key) if r.subtype == "stopped_by_user"]
        assert _inbox_state(w, key) in ("queued", "running")
        w.inbox.clear()
        w.start()
        res = w.result(key, 40)
        assert not res.is_error
        assert w.texts(key).endswith("w20")


def test_a_stale_stop_file_is_removed_at_start(tmp_path, claude_bin, cli_env, model_api):
    with WorkerHarness(tmp_path, claude_bin, cli_env) as w:
        w.session_dir.mkdir(parents=True, exist_ok=True)
        (w.session_dir / USER_STOP_FILE).write_text("stop\n")
        w.start()
        assert not (w.session_dir / USER_STOP_FILE).exists()


def test_edit_replaces_a_queued_message_but_not_a_started_one(tmp_path, claude_bin, cli_env,
                                                              model_api):
    with WorkerHarness(tmp_path, claude_bin, cli_env) as w:
        w.start()
        busy = w.turn("busy #sb:slow=150 #sb:words=10")
        queued = w.turn("the old words")
        w.wait_for(lambda: w.bodies(m.TurnStarted, busy), 20, "the first turn started")
        w.send(m.EditTurn(id="e1", key=queued, text="the new words"))
        assert isinstance(w.reply("e1"), m.Ok)
        w.send(m.EditTurn(id="e2", key=busy, text="too late"))
        late = w.reply("e2")
        assert isinstance(late, m.Error) and late.code == m.E_STATE
        w.send(m.EditTurn(id="e3", key="tg:42:999999", text="who?"))
        unknown = w.reply("e3")
        assert isinstance(unknown, m.Error) and unknown.code == m.E_UNKNOWN_NAME
        w.result(queued, 40)
        assert w.texts(queued) == "echo: the new words"
        assert "the old words" not in _user_texts(model_api)
