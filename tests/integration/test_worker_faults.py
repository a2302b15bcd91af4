"""Crashes, kills, a clean stop with no orphans, and every kind of bad input."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import msgspec
import psutil
import pytest

from tests.support import standin_cli
from tests.support.procs import marked_pids, wait_until_gone
from tests.support.waits import wait_until
from tests.support.worker import WorkerHarness
from wire import codec
from wire import messages as m

pytestmark = pytest.mark.timeout(90)

# Unsandboxed: a sandboxed command's background processes end with it (its own pid namespace),
# and these tests are about the ones that outlive it.
BYPASS = m.Persona(name="bypass", permission_mode="bypassPermissions", sandbox=False)


@pytest.fixture
def env(cli_env):
    return dict(cli_env, CLAUDE_CODE_MAX_RETRIES="0")


def test_cli_kill9_mid_turn_reruns_the_message(tmp_path, claude_bin, env, model_api):
    with WorkerHarness(tmp_path, claude_bin, env) as w:
        w.start()
        w.ask("remember kiwi")
        key = w.turn("slow #sb:slow=100 #sb:words=15")
        # a few deltas in: the CLI writes its transcript lazily (~0.1 s after a turn)
        w.wait_for(lambda: len(w.bodies(m.TextDelta, key)) >= 4, 20, "the stream to be under way")
        victim = w.cli_pids()[0]
        os.kill(victim, signal.SIGKILL)
        res = w.result(key, 30)
        assert not res.is_error
        assert any("stopped in the middle" in n.message for n in w.notices())
        assert w.cli_pids() and w.cli_pids()[0] != victim
        k2, _ = w.ask("and now?")
        assert w.texts(k2) == "echo: and now?"
        assert "kiwi" in str(model_api.requests()[-1]["messages"]), "the conversation goes on"


def test_worker_kill9_mid_turn_then_restart_answers_it(tmp_path, claude_bin, env, model_api):
    with WorkerHarness(tmp_path, claude_bin, env) as w:
        w.start()
        w.ask("remember mango")
        key = w.turn("slow #sb:slow=150 #sb:words=15")
        w.wait_for(lambda: len(w.bodies(m.TextDelta, key)) >= 3, 20, "the stream to be under way")
        cli = w.cli_pids()
        w.kill9()
        # PR_SET_PDEATHSIG: the CLI dies with its worker
        wait_until(
            lambda: (
                not any(
                    psutil.pid_exists(p) and psutil.Process(p).status() != "zombie" for p in cli
                )
            ),
            3,
            "the CLI to die with the worker",
        )
        w.inbox.clear()
        w.start()
        res = w.result(key, 40)
        assert not res.is_error
        k2, _ = w.ask("still mango?")
        assert w.texts(k2) == "echo: still mango?"
        assert "mango" in str(model_api.requests()[-1]["messages"])
        # The bot may replay from its last seq: no gap in the outbox
        w.send(m.Replay(id="r", after_seq=0))
        done = w.wait_for(
            lambda: [x for x in w.inbox if isinstance(x, m.ReplayDone)], 10, "ReplayDone"
        )[0]
        seqs = [e.seq for e in w.inbox if isinstance(e, m.Event) and e.seq > 0]
        assert sorted(set(seqs))[-done.last_seq :] == list(range(1, done.last_seq + 1))


def test_stop_leaves_no_process_with_the_marker(tmp_path, claude_bin, env):
    with WorkerHarness(tmp_path, claude_bin, env, persona=BYPASS) as w:
        w.start()
        _key, res = w.ask("#sb:bash=(setsid sleep 300 &) ; echo started")
        assert not res.is_error, res
        sleepers = wait_until(
            lambda: [
                p
                for p in marked_pids(w.session)
                if "sleep" in " ".join(psutil.Process(p).cmdline())
            ],
            10,
            "the setsid sleep",
        )
        assert psutil.Process(sleepers[0]).ppid() != w.cli_pids()[0]
        assert w.stop() == 0
        assert wait_until_gone(w.session, 3) == []
        assert w.metadata()["status"] == "stopped"


def test_worker_exits_when_its_supervisor_is_killed(tmp_path, claude_bin, env):
    parent = subprocess.Popen(["sleep", "60"])
    try:
        with WorkerHarness(tmp_path, claude_bin, env, supervisor_pid=parent.pid) as w:
            w.start()
            w.ask("hi")
            assert w.cli_pids()
            parent.kill()
            parent.wait()
            w.proc.wait(3)
            assert wait_until_gone(w.session, 3) == []
    finally:
        parent.kill()
        parent.wait()


def _usable(w: WorkerHarness, text: str = "recovered") -> None:
    k, res = w.ask(text)
    assert not res.is_error, res
    assert w.texts(k).endswith(text)


def test_missing_binary_is_one_sentence_and_the_worker_stays(tmp_path, env):
    with WorkerHarness(tmp_path, str(tmp_path / "no-such-claude"), env) as w:
        w.start()
        w.turn("hello")
        n = w.wait_for(lambda: w.notices(), 10, "a notice")[0]
        assert n.level == "error" and "was not found" in n.message
        assert "[claude] binary" in n.message
        res = w.result(w.bodies(m.TurnStarted)[0].key)
        assert res.is_error and res.subtype == "error_cli_start" and res.text == n.message
        w.turn("again")
        w.wait_for(lambda: len(w.notices()) >= 2, 10, "a second notice")
        assert w.proc.poll() is None


def test_bad_flag_exits_at_start_with_its_error(tmp_path, claude_bin, env):
    with WorkerHarness(tmp_path, claude_bin, env, extra_args=["--no-such-flag"]) as w:
        w.start()
        w.turn("hello")
        n = w.wait_for(lambda: w.notices(), 20, "a notice")[0]
        assert "exited at start" in n.message and "--no-such-flag" in n.message, n
        assert w.proc.poll() is None


@pytest.mark.parametrize("status, words", [(401, "API key"), (529, "overloaded")])
def test_api_errors_become_a_notice_and_the_session_goes_on(
    tmp_path, claude_bin, env, model_api, status, words
):
    with WorkerHarness(tmp_path, claude_bin, env) as w:
        w.start()
        model_api.script(error=status)
        key, res = w.ask("first")
        assert res.is_error and res.api_error_status == status
        assert words in w.bodies(m.Notice, key)[0].message
        _usable(w)


def test_rejected_key_with_the_clis_retries_on_ends_the_turn_at_once(
    tmp_path, claude_bin, cli_env, model_api
):
    # The CLI retries even a 401 for minutes by default: the worker must not make the user wait.
    with WorkerHarness(tmp_path, claude_bin, cli_env) as w:
        w.start()
        for _ in range(10):  # every retry the CLI would make is refused too
            model_api.script(error=401)
        key, res = w.ask("hello", timeout=30)
        assert res.is_error
        model_api.reset()  # the key is fixed
        notices = w.bodies(m.Notice, key)
        assert notices and "rejected the API key (401)" in notices[0].message
        assert notices[0].level == "error"
        _usable(w)


def test_overloaded_api_says_why_it_is_slow(tmp_path, claude_bin, cli_env, model_api):
    with WorkerHarness(tmp_path, claude_bin, cli_env) as w:
        w.start()
        model_api.script(error=529)  # one failure, then the retry succeeds
        key, res = w.ask("patience", timeout=60)
        assert not res.is_error and w.texts(key).endswith("patience")
        info = [n for n in w.bodies(m.Notice, key) if n.level == "info"]
        assert info and "overloaded (529)" in info[0].message and "retrying" in info[0].message


def test_hung_cli_is_stopped_and_the_next_message_resumes(tmp_path, claude_bin, env, model_api):
    with WorkerHarness(tmp_path, claude_bin, env, hang_timeout_seconds=2.0) as w:
        w.start()
        w.ask("remember plum")
        key = w.turn("#sb:hang")
        n = w.wait_for(lambda: w.bodies(m.Notice, key), 20, "the hang notice")[0]
        assert "printed nothing for 2 s" in n.message
        _usable(w)
        assert "plum" in str(model_api.requests()[-1]["messages"])


@pytest.mark.parametrize(
    "text, notice",
    [
        ("malformed", "not valid JSON"),
        ("badutf8", "not valid UTF-8"),
        ("debug", None),
        ("unknown", None),
    ],
)
def test_unreadable_cli_lines_never_crash(tmp_path, env, text, notice):
    fake = standin_cli.install(tmp_path, standin_cli.SCRIPTED)
    with WorkerHarness(tmp_path, fake, env) as w:
        w.start()
        key, _res = w.ask(text)
        assert w.texts(key) == f"fake: {text}"
        got = w.bodies(m.Notice, key)
        if notice:
            assert got and notice in got[0].message and got[0].level == "warning"
        else:
            assert not got
        if text == "unknown":
            assert w.bodies(m.Unknown, key)[0].type == "brand_new_event"


def test_answer_with_a_byte_that_is_not_utf8_keeps_its_text(tmp_path, env):
    fake = standin_cli.install(tmp_path, standin_cli.SCRIPTED)
    with WorkerHarness(tmp_path, fake, env) as w:
        w.start()
        key, res = w.ask("badutf8text")
        assert not res.is_error
        assert w.texts(key) == "caf\ufffd ok"
        notice = w.bodies(m.Notice, key)
        assert notice and "not valid UTF-8" in notice[0].message and notice[0].level == "warning"


def test_cli_crash_mid_line_is_retried_then_skipped(tmp_path, env):
    fake = standin_cli.install(tmp_path, standin_cli.SCRIPTED)
    with WorkerHarness(tmp_path, fake, env) as w:
        w.start()
        key = w.turn("crashmidline")
        w.wait_for(
            lambda: any(n.level == "error" for n in w.bodies(m.Notice, key)), 20, "giving up"
        )
        msgs = [n.message for n in w.bodies(m.Notice, key)]
        assert sum("sending your message again" in x for x in msgs) == 2
        assert "exit code 3" in msgs[-1]
        _usable(w, "fine")


def test_garbage_frames_get_an_error_and_change_nothing(tmp_path, env):
    fake = standin_cli.install(tmp_path, standin_cli.SCRIPTED)
    with WorkerHarness(tmp_path, fake, env) as w:
        w.start()
        w.send_raw(b"\x00\xffnot msgpack at all")
        w.send_raw(msgspec.msgpack.encode({"t": "UserTurn", "id": "x1", "text": 5}))
        err = w.reply("x1")
        assert isinstance(err, m.Error) and err.code == m.E_BAD_REQUEST
        w.send_raw(codec.encode(m.Accepted(id="x2", key="k")))  # a bot-bound message sent to us
        assert isinstance(w.reply("x2"), m.Error)
        w.send(m.PermissionAnswer(id="x3", prompt_id="nope", allow=True))
        assert isinstance(w.reply("x3"), m.Error)
        _usable(w, "ok")


def test_lost_transcript_starts_a_new_conversation(tmp_path, claude_bin, env):
    with WorkerHarness(tmp_path, claude_bin, env, idle_suspend_seconds=0.5) as w:
        w.start()
        w.ask("first")
        sid = w.metadata()["claude_session_id"]
        w.wait_for(lambda: w.metadata()["status"] == "suspended", 10, "suspend")
        from pathlib import Path

        for t in Path(env["CLAUDE_CONFIG_DIR"]).rglob(f"{sid}.jsonl"):
            t.unlink()
        key, res = w.ask("second")
        assert not res.is_error and w.texts(key) == "echo: second"
        assert any("new one was started" in n.message for n in w.bodies(m.Notice, key))
        assert w.metadata()["claude_session_id"] not in (None, sid)


def test_start_kills_a_stale_cli_and_keeps_the_sessions_tools(tmp_path, claude_bin, env):
    from wire.names import INSTANCE_ENV, MARKER_ENV, instance_id

    with WorkerHarness(tmp_path, claude_bin, env) as w:
        ours = {MARKER_ENV: w.session, INSTANCE_ENV: instance_id(str(w.state_dir))}
        # What a SIGKILLed worker can leave: its CLI (argv with the CLI's flags) and a server
        # one of its tools started. The CLI must go (one CLI per Claude session id); the
        # server is the session's and stays while the session runs.
        cli_argv = [sys.executable, "-c", "import signal; signal.pause()", "-p",
                    "--input-format", "stream-json", "--output-format", "stream-json",
                    "--permission-prompt-tool", "stdio"]
        stale = subprocess.Popen(cli_argv, env=dict(os.environ, **ours))
        tool = subprocess.Popen(["sleep", "300"], env=dict(os.environ, **ours))
        # Same session name, another Switchboard installation: not ours to kill.
        theirs = dict(ours, **{INSTANCE_ENV: "other"})
        foreign = subprocess.Popen(cli_argv, env=dict(os.environ, **theirs))
        try:
            w.start()
            assert stale.wait(5) == -signal.SIGKILL
            _usable(w)
            assert tool.poll() is None and foreign.poll() is None
            assert w.stop() == 0  # a stop takes the session's whole tree
            assert tool.wait(5) == -signal.SIGKILL
        finally:
            for p in (stale, tool, foreign):
                p.kill()
                p.wait()


def test_a_swept_tool_left_a_zombie_by_its_parent_does_not_hold_the_sweep(tmp_path):
    """A killed tool whose parent never reaps it (reparented to an init that reaps late) is
    dead: the sweep counts it gone at once instead of waiting out its 2 s for it."""
    from session_worker import procs
    from wire.names import INSTANCE_ENV, MARKER_ENV

    session, instance = f"zb-{os.getpid()}", str(tmp_path)
    marked = dict(os.environ, **{MARKER_ENV: session, INSTANCE_ENV: instance})
    # An unmarked parent that starts a marked child and never waits for it.
    parent = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, signal, sys, json;"
         " p = subprocess.Popen(['sleep', '300'], env=json.loads(sys.argv[1]));"
         " print(p.pid, flush=True); signal.pause()", msgspec.json.encode(marked).decode()],
        stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        started = time.monotonic()
        assert procs.sweep_marker(session, instance) == 1
        took = time.monotonic() - started
        assert psutil.Process(child).status() == psutil.STATUS_ZOMBIE  # killed, not reaped
        assert took < 1.0, took
        assert procs.marked(session, instance) == []
    finally:
        parent.kill()
        parent.wait()
    wait_until(lambda: not psutil.pid_exists(child), 10, "the zombie reaped with its parent")
