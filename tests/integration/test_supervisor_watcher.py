"""The psutil sweep, the control socket under garbage, shutdown order, a SIGKILLed supervisor."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
import zmq

from tests.support.supervisor import SupervisorHarness, tagged
from tests.support.waits import wait_until
from wire import auth, codec, rpc
from wire import messages as m
from wire.names import MARKER_ENV

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def sup(tmp_path):
    s = SupervisorHarness(tmp_path)
    yield s
    s.close()


def marked(session: str, **popen) -> subprocess.Popen[bytes]:
    env = dict(os.environ, **{MARKER_ENV: session})
    return subprocess.Popen([sys.executable, "-c", "import signal; signal.pause()"], env=env,
                            **popen)


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_a_crashed_workers_tools_stay_with_their_session_until_it_stops(sup):
    sup.start()
    sup.ok(m.NewSession(id=m.new_id(), name="leak-a"))
    row = wait_until(lambda: (r := sup.status()["session:leak-a"]).claude_pid and r.queued > 1
                     and r, 5, "the CLI and tool pids")
    worker, tool = row.pid, row.queued  # the stand-in reports its leaked tool's pid as `queued`
    assert psutil.pid_exists(tool) and psutil.pid_exists(row.claude_pid)
    os.kill(worker, signal.SIGKILL)
    # The setsid tool child outlives its worker; reparented to us, it is still the session's:
    # a crash is not a stop.
    new = wait_until(lambda: (r := sup.status()["session:leak-a"]).pid != worker and r.queued > 1
                     and r.state == "RUNNING" and r, 5, "the new worker")
    before = sup.status()["session:leak-a"]
    sup.wait_sweeps(3)
    assert alive(tool) and alive(new.queued) and alive(new.claude_pid)
    row = wait_until(lambda: (r := sup.status()["session:leak-a"]).tools and r, 5, "tools")
    assert {tool, new.queued} <= {t.pid for t in row.tools}, (before, row)
    assert row.tools_rss_bytes > 0 and row.rss_bytes > row.tools_rss_bytes
    # Stopped, the session takes its whole tree with it, the old worker's tool included.
    assert sup.ok(m.Stop(id=m.new_id(), names=["leak-a"])).results[0].ok
    wait_until(lambda: not alive(tool) and not alive(new.queued), 5, "the tools killed")
    wait_until(lambda: "event=orphan_killed" in
               (sup.state_dir / "logs" / "supervisor.log").read_text(), 3, "the log line")


def test_a_restart_by_the_user_kills_the_sessions_tools(sup):
    sup.start()
    sup.ok(m.NewSession(id=m.new_id(), name="leak-r"))
    old = wait_until(lambda: (r := sup.status()["session:leak-r"]).queued > 1 and r, 5, "a tool")
    assert sup.ok(m.Restart(id=m.new_id(), names=["leak-r"])).results[0].ok
    wait_until(lambda: not alive(old.queued), 5, "the old run's tool killed by the restart")
    new = wait_until(lambda: (r := sup.status()["session:leak-r"]).queued > 1
                     and r.pid != old.pid and r, 5, "the new run's tool")
    assert alive(new.queued)


def test_other_supervisors_marked_processes_are_left_alone(sup):
    sup.start()
    sup.ok(m.NewSession(id=m.new_id(), name="cli-mine"))
    foreign = marked("cli-mine")  # same session name, not in our subtree
    try:
        sup.ok(m.Stop(id=m.new_id(), names=["cli-mine"]))
        sup.wait_sweeps(3)
        assert foreign.poll() is None
    finally:
        foreign.kill()
        foreign.wait()


def test_stopping_a_session_kills_what_carried_its_marker(sup):
    sup.start()
    sup.ok(m.NewSession(id=m.new_id(), name="cli-stop"))
    cli = wait_until(lambda: sup.status()["session:cli-stop"].claude_pid, 5, "the CLI pid")
    assert sup.ok(m.Stop(id=m.new_id(), names=["cli-stop"])).results[0].ok
    # The stand-in's CLI was reparented to the supervisor (subreaper) when its worker died.
    wait_until(lambda: not psutil.pid_exists(cli), 3, "the stopped session's CLI to be gone")


def test_idle_cli_is_killed_when_the_worker_does_not_suspend_it(tmp_path):
    s = SupervisorHarness(tmp_path, claude={"idle_suspend_seconds": 0.5})
    try:
        s.start()
        s.ok(m.NewSession(id=m.new_id(), name="idle-a"))
        cli = wait_until(lambda: s.status()["session:idle-a"].claude_pid, 5, "the CLI pid")
        wait_until(lambda: not psutil.pid_exists(cli) or
                   psutil.Process(cli).status() == psutil.STATUS_ZOMBIE, 8, "the idle CLI killed")
        line = f"event=idle_cli_killed program=session:idle-a claude_pid={cli}"
        wait_until(lambda: line in (s.state_dir / "logs" / "supervisor.log").read_text(), 3,
                   "the kill in the log")
        assert s.state("session:idle-a") == "RUNNING"  # the worker itself is left alone
    finally:
        s.close()


def test_worker_over_rss_limit_is_killed_and_restarted(tmp_path):
    s = SupervisorHarness(tmp_path, supervisor={"worker_rss_limit_mb": 5})
    try:
        s.start()
        s.subscribe()
        s.ok(m.NewSession(id=m.new_id(), name="fat"))
        ev = s.wait_event(lambda e: e.program == "session:fat" and "limit" in e.reason,
                          what="an RSS kill")
        assert ev.exit_code == -9 and "over the 5 MB limit" in ev.reason
    finally:
        s.close()


def test_status_long_reports_usage_and_worker_stats(sup):
    sup.start()
    sup.ok(m.NewSession(id=m.new_id(), name="cli-stats"))
    row = wait_until(lambda: (r := sup.status()["session:cli-stats"]).rss_bytes > 0
                     and r.claude_pid and r, 5, "usage numbers")
    worker = psutil.Process(row.pid)
    cli = psutil.Process(row.claude_pid)
    assert row.rss_bytes >= worker.memory_info().rss // 2 + cli.memory_info().rss // 2
    assert row.cost_usd == 0.0125 and row.queued == 1 and row.persona == "default"
    assert row.idle_seconds is not None and not row.suspended


def test_garbage_on_the_control_socket_gets_errors_and_service_continues(sup):
    sup.start()
    ctx = zmq.Context.instance()
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    auth.as_client(s, rpc.owner_keys_for(sup.endpoints.control))  # the owner's, as ctl's
    s.connect(sup.endpoints.control)
    try:
        frames = [b"\xff\x00garbage", b"", b"\x81\xa1t\xa6Status",  # no id
                  codec.encode(m.Ok(id="x1")),  # a reply is not a request
                  __import__("msgspec").msgpack.encode({"t": "Start", "id": "k9", "names": 5}),
                  b"\x00" * 100_000]
        for f in frames:
            s.send(f)
        replies = []
        while len(replies) < len(frames) and s.poll(3000):
            replies.append(codec.control_replies.decode(s.recv()))
        assert len(replies) == len(frames)
        assert all(isinstance(r, m.Error) and r.code == m.E_BAD_REQUEST for r in replies)
        assert "k9" in [r.id for r in replies]
        s.send_multipart([b"two", b"frames"])
        assert s.poll(3000)
        assert isinstance(codec.control_replies.decode(s.recv()), m.Error)
    finally:
        s.close(linger=0)
    assert sup.ok(m.Version(id=m.new_id())).version


def test_status_answers_while_a_long_stop_runs(tmp_path):
    s = SupervisorHarness(tmp_path, supervisor={"stopwaitsecs": 3.0})
    try:
        s.start()
        s.ok(m.NewSession(id=m.new_id(), name="hang-stop"))
        pid = s.wait_state("session:hang-stop", "RUNNING").pid
        psutil.Process(pid).suspend()  # SIGSTOPped: SIGTERM does nothing until SIGKILL
        ctx = zmq.Context.instance()
        d = ctx.socket(zmq.DEALER)
        d.setsockopt(zmq.LINGER, 0)
        auth.as_client(d, rpc.owner_keys_for(s.endpoints.control))  # the owner's, as ctl's
        d.connect(s.endpoints.control)
        d.send(codec.encode(m.Stop(id="slow", names=["hang-stop"])))
        row = wait_until(lambda: (r := s.status()["session:hang-stop"]).state == "STOPPING" and r,
                         5, "STOPPING")
        assert row.state == "STOPPING"  # answered while the stop waits for stopwaitsecs
        assert d.poll(8000)
        reply = codec.control_replies.decode(d.recv())
        assert isinstance(reply, m.Ok) and reply.result.results[0].ok
        d.close(linger=0)
    finally:
        s.close()


def test_sigterm_stops_sessions_first_and_the_bot_last(tmp_path):
    s = SupervisorHarness(tmp_path, telegram={"enabled": True, "token": "123456:" + "a" * 30})
    try:
        s.start()
        s.subscribe()
        s.wait_state("bot", "RUNNING")
        for name in ("s1", "s2"):
            s.ok(m.NewSession(id=m.new_id(), name=name))
        s.drain_events()
        assert s.stop() == 0
        ev = s.drain_events()
        order = [(e.program, e.to_state) for e in ev if e.to_state in ("STOPPING", "STOPPED")]
        assert order[-2:] == [("bot", "STOPPING"), ("bot", "STOPPED")], order
        assert {p for p, st in order if st == "STOPPED"} == {"bot", "session:s1", "session:s2"}
        bot_env = (s.state_dir / "logs" / "bot.stdio")
        assert bot_env.exists()
    finally:
        s.close()


def test_token_reaches_the_bot_through_a_pipe_and_no_environment(tmp_path):
    """The bot logs in (RUNNING) with a token that is in no process's /proc/<pid>/environ: not
    the bot's, not the worker's, and not the supervisor's, which had it exported at exec."""
    token = "987654:" + "b" * 30
    s = SupervisorHarness(tmp_path, telegram={"enabled": True, "token_env": "MY_TOKEN"},
                   env={"MY_TOKEN": token, "TELEGRAM_OTHER": "x"})
    try:
        s.start()
        bot = s.wait_state("bot", "RUNNING").pid
        s.ok(m.NewSession(id=m.new_id(), name="tok"))
        worker = s.wait_state("session:tok", "RUNNING").pid
        for pid in (s.proc.pid, bot, worker):
            raw = Path(f"/proc/{pid}/environ").read_bytes()
            assert token.encode() not in raw and token.split(":")[1].encode() not in raw, pid
            assert token not in " ".join(psutil.Process(pid).cmdline())
        benv = psutil.Process(bot).environ()
        assert "MY_TOKEN" not in benv and "TELEGRAM_OTHER" not in benv
        assert "SWITCHBOARD_TELEGRAM_TOKEN" not in benv
        # What the bot's environment says of the token is where to read it, nothing more.
        assert isinstance(json.loads(benv["SWITCHBOARD_BOT_SETTINGS"])["token_fd"], int)
    finally:
        s.close()


def test_sigkilled_supervisor_leaves_nothing_behind(sup):
    sup.start()
    for name in ("k1", "cli-k2"):
        sup.ok(m.NewSession(id=m.new_id(), name=name))
    sup.wait_state("session:cli-k2", "RUNNING")
    assert len(tagged(sup.tag)) >= 4  # supervisor, two workers, one CLI
    sup.proc.send_signal(signal.SIGKILL)
    sup.proc.wait(5)
    # Each child goes by its parent-death signal at once; a loaded machine may take seconds
    # to run their exits.
    sup.assert_nothing_left(timeout=10.0)


def test_start_kills_what_a_killed_supervisor_of_this_install_left(sup):
    from wire.names import INSTANCE_ENV, instance_id

    # What a SIGKILLed predecessor's setsid tool children look like: reparented to init,
    # carrying our instance marker. A same-named session of another install is not ours.
    ours = dict(os.environ, **{MARKER_ENV: "api", INSTANCE_ENV: instance_id(str(sup.state_dir))})
    theirs = dict(ours, **{INSTANCE_ENV: "another-install"})
    cmd = [sys.executable, "-c", "import signal; signal.pause()"]
    leftover = subprocess.Popen(cmd, env=ours)
    foreign = subprocess.Popen(cmd, env=theirs)
    try:
        sup.start()
        assert leftover.wait(5) == -signal.SIGKILL
        assert "event=leftover_killed" in (sup.state_dir / "logs" / "supervisor.log").read_text()
        assert foreign.poll() is None
    finally:
        for p in (leftover, foreign):
            p.kill()
            p.wait()
