"""The worker's everyday life with the real CLI against the sandbox model: warm turns, a queue,
a 50 MB line, the durable outbox, personas, suspend and resume."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.worker import WorkerHarness
from wire import messages as m

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def env(cli_env):
    return dict(cli_env, CLAUDE_CODE_MAX_RETRIES="0")


def test_warm_turns_share_one_cli(tmp_path, claude_bin, env, model_api):
    with WorkerHarness(tmp_path, claude_bin, env) as w:
        w.start()
        k1, r1 = w.ask("hello there")
        assert not r1.is_error, r1
        assert w.texts(k1) == "echo: hello there"
        pids1 = w.cli_pids()
        k2, r2 = w.ask("second message")
        assert w.texts(k2) == "echo: second message"
        assert w.cli_pids() == pids1 and len(pids1) == 1
        # the second request carries the first turn: one conversation
        reqs = model_api.requests()
        assert "hello there" in str(reqs[-1]["messages"])
        assert r2.session_cost_usd >= r1.cost_usd + r2.cost_usd - 1e-9
        assert w.bodies(m.TextDelta, k2), "partial text streamed"
        assert w.bodies(m.TurnStarted, k1)
        assert all(e.chat_id == 42 for e in w.events(k1))
        meta = w.metadata()
        assert meta["claude_session_id"] and meta["status"] == "running"
        assert w.stop() == 0
        assert w.metadata()["status"] == "stopped"


def test_queue_answered_in_order_and_resend_ignored(tmp_path, claude_bin, env):
    with WorkerHarness(tmp_path, claude_bin, env) as w:
        w.start()
        reqs = [
            m.UserTurn(id=m.new_id(), key=f"k{i}", chat_id=7, text=t)
            for i, t in enumerate(["first #sb:slow=30 #sb:words=10", "second", "third"])
        ]
        for r in reqs:
            w.send(r)
        accepted = [w.reply(r.id) for r in reqs]
        assert [a.queued for a in accepted] == [0, 1, 2]
        w.send(m.UserTurn(id="again", key="k1", chat_id=7, text="second"))
        dup = w.reply("again")
        assert isinstance(dup, m.Accepted) and dup.duplicate
        w.wait_for(lambda: len(w.bodies(m.TurnResult)) >= 3, 30, "three results")
        assert [r.key for r in w.bodies(m.TurnResult)] == ["k0", "k1", "k2"]
        assert w.texts("k1") == "echo: second" and w.texts("k2") == "echo: third"
        assert w.texts("k0").startswith("w1 w2")
        # durable events carry increasing seqs with no gap
        seqs = [e.seq for e in w.events(durable=True)]
        assert seqs == list(range(1, len(seqs) + 1))
        w.pump(0.3)
        assert len(w.bodies(m.TurnResult)) == 3, "the resend was not answered again"


def test_replay_and_hello_after_restart(tmp_path, claude_bin, env):
    with WorkerHarness(tmp_path, claude_bin, env) as w:
        w.start()
        w.ask("one")
        w.ask("two")
        live = [e for e in w.events(durable=True)]
        last = live[-1].seq
        w.inbox.clear()
        w.send(m.Replay(id="r1", after_seq=2))
        done = w.wait_for(
            lambda: [x for x in w.inbox if isinstance(x, m.ReplayDone)], 10, "ReplayDone"
        )[0]
        assert done.id == "r1" and done.last_seq == last
        replayed = [x for x in w.inbox if isinstance(x, m.Event)]
        assert [e.seq for e in replayed] == list(range(3, last + 1))
        assert [e.body for e in replayed] == [e.body for e in live[2:]]
        assert w.stop() == 0
        w.inbox.clear()
        w.start()
        hello = next(x for x in w.inbox if isinstance(x, m.Hello))
        assert hello.last_seq == last and hello.session == w.session


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_50mb_line_passes_intact_with_bounded_memory(tmp_path, claude_bin, env):
    size = 50_000_000
    with WorkerHarness(tmp_path, claude_bin, env, hang_timeout_seconds=60) as w:
        w.start()
        key, res = w.ask(f"big #sb:size={size}", timeout=100)
        assert not res.is_error, res
        text = w.texts(key)
        assert len(text) == size and text.endswith("END")
        status = Path(f"/proc/{w.pid}/status").read_text()
        hwm = (
            int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM")))
            * 1024
        )
        assert hwm < 8 * size, f"worker peak RSS {hwm} bytes for a {size}-byte line"
        k2, _r2 = w.ask("still there?")
        assert w.texts(k2) == "echo: still there?"


def test_suspend_after_idle_and_resume_with_history(tmp_path, claude_bin, env, model_api):
    with WorkerHarness(tmp_path, claude_bin, env, idle_suspend_seconds=1.0) as w:
        w.start()
        w.ask("remember the word pineapple")
        first_pids = w.cli_pids()
        sid = w.metadata()["claude_session_id"]
        w.wait_for(
            lambda: not w.cli_pids() and w.metadata()["status"] == "suspended", 10, "suspend"
        )
        k2, _r2 = w.ask("what was the word?")
        assert w.texts(k2) == "echo: what was the word?"
        pids = w.cli_pids()
        assert pids and pids != first_pids
        import psutil

        assert f"--resume={sid}" in psutil.Process(pids[0]).cmdline()
        assert "pineapple" in str(model_api.requests()[-1]["messages"]), "history carried over"
        assert w.metadata()["claude_session_id"] == sid


def test_recycle_after_turn_count(tmp_path, claude_bin, env, model_api):
    with WorkerHarness(tmp_path, claude_bin, env, recycle_turns=2) as w:
        w.start()
        w.ask("alpha")
        pid1 = w.cli_pids()
        w.ask("beta")
        w.wait_for(lambda: not w.cli_pids(), 10, "the CLI recycled after 2 turns")
        k3, _ = w.ask("gamma")
        assert w.texts(k3) == "echo: gamma"
        assert w.cli_pids() and w.cli_pids() != pid1
        assert "alpha" in str(model_api.requests()[-1]["messages"])


def test_register_and_pong_on_the_control_socket(tmp_path, claude_bin, env):
    import zmq

    from wire import codec

    with WorkerHarness(tmp_path, claude_bin, env) as w:
        from zmq.auth.thread import ThreadAuthenticator

        # Like the supervisor, the test knows the worker by its key: ZAP's User-Id (pyzmq's
        # authenticator makes it the client's public key).
        zap = ThreadAuthenticator(w.ctx)
        zap.start()
        zap.configure_curve(domain="*", location=zmq.auth.CURVE_ALLOW_ANY)
        ctl = w.bind_control()
        try:
            w.start()
            assert ctl.poll(10000), "no Register"
            ident, frame = ctl.recv_multipart(copy=False)
            reg = codec.control_requests.decode(frame.bytes)
            assert isinstance(reg, m.Register) and reg.program == f"session:{w.session}"
            assert frame.get("User-Id") == w.keys.control.client.public and reg.pid == w.pid
            ident = ident.bytes
            w.ask("hi")
            ctl.send_multipart([ident, codec.encode(m.Ping(id="p1"))])
            assert ctl.poll(5000), "no Pong"
            pong = codec.control_requests.decode(ctl.recv_multipart()[-1])
            assert isinstance(pong, m.Pong) and pong.id == "p1" and pong.stats is not None
            st = pong.stats
            assert st.session == w.session and st.claude_pid == w.cli_pids()[0]
            assert not st.busy and st.queued == 0 and st.cost_usd > 0
            assert st.claude_session_id == w.metadata()["claude_session_id"]
            assert st.persona == "default" and st.last_seq == w.events(durable=True)[-1].seq
        finally:
            ctl.close(linger=0)
            zap.stop()


def test_hello_again_when_the_bot_comes_back(tmp_path, claude_bin, env):

    with WorkerHarness(tmp_path, claude_bin, env) as w:
        w.start()
        w.ask("before")
        last = w.events(durable=True)[-1].seq
        w.router.close(linger=0)
        w.router = w.bind_chat()
        hellos = w.hellos
        w.wait_for(lambda: w.hellos > hellos, 15, "a Hello to the new bot")
        assert [x for x in w.inbox if isinstance(x, m.Hello)][-1].last_seq == last
        k, _ = w.ask("after")
        assert w.texts(k) == "echo: after"


def test_attachments_are_named_in_the_prompt(tmp_path, claude_bin, env, model_api):
    with WorkerHarness(tmp_path, claude_bin, env) as w:
        w.start()
        req = m.UserTurn(id="u1", key="a1", chat_id=1, text="look", attachments=["files/a.png"])
        w.send(req)
        w.result("a1")
        assert "[attached file: files/a.png]" in str(model_api.requests()[-1]["messages"])


def test_recycle_past_rss(tmp_path, claude_bin, env, model_api):
    with WorkerHarness(tmp_path, claude_bin, env, recycle_rss_bytes=1) as w:
        w.start()
        w.ask("one")
        w.wait_for(lambda: not w.cli_pids(), 10, "the CLI recycled past its RSS limit")
        k, _ = w.ask("two")
        assert w.texts(k) == "echo: two"
        assert "one" in str(model_api.requests()[-1]["messages"])
