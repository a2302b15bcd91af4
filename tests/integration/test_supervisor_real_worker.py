"""The main path with the real session worker and the real Claude CLI against the sandbox API."""
from __future__ import annotations

import os
import signal

import psutil
import pytest
import zmq

from tests.support.supervisor import SupervisorHarness, tagged
from tests.support.waits import wait_until
from wire import auth, codec
from wire import messages as m

pytestmark = pytest.mark.timeout(90)


class FakeBot:
    """The bot's side of the chat plane: a ROUTER at the chat endpoint with the chat server key
    (derived from the chat root in the owner's key file, which the owner may use to stand in
    for the bot). Sends go to the connection a session last spoke from, as the bot's do."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.sock = zmq.Context.instance().socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.inbox: list[m.Msg] = []
        self.routes: dict[str, bytes] = {}

    def bind(self, runtime_dir) -> None:
        """After the supervisor started: its key file holds this run's chat root."""
        root = bytes.fromhex(auth.load_owner_keys(runtime_dir).chat_root)
        auth.as_server(self.sock, auth.chat_server_keys(root), auth.CHAT_DOMAIN)
        self.sock.bind(self.endpoint)

    def pump(self) -> list[m.Msg]:
        while self.sock.poll(20):
            frames = self.sock.recv_multipart()
            self.routes[frames[0].split(b"/")[0].decode()] = frames[0]
            msg = codec.to_bot.decode(frames[-1])
            if not isinstance(msg, codec.DecodeError):
                self.inbox.append(msg)
        return self.inbox

    def turn(self, session: str, text: str) -> str:
        key = m.new_id()
        self.sock.send_multipart([self.routes[session], codec.encode(
            m.UserTurn(id=m.new_id(), key=key, chat_id=1, text=text))])
        return key

    def result_for(self, key: str) -> m.TurnResult | None:
        for msg in self.pump():
            if isinstance(msg, m.Event) and isinstance(msg.body, m.TurnResult) and msg.key == key:
                return msg.body
        return None

    def close(self) -> None:
        self.sock.close(linger=0)


@pytest.fixture
def stack(tmp_path, claude_bin, cli_env):
    extra = {k: v for k, v in cli_env.items() if os.environ.get(k) != v}
    sup = SupervisorHarness(tmp_path, standin=False,
                     supervisor={"startsecs": 0.5, "heartbeat_timeout_seconds": 5.0},
                     claude={"binary": claude_bin, "env": extra, "idle_suspend_seconds": 2.0})
    bot = FakeBot(sup.endpoints.chat)
    yield sup, bot
    bot.close()
    sup.close()


def test_real_worker_turn_idle_suspend_sigkill_restart_then_supervisor_sigkill(stack):
    sup, bot = stack
    sup.start()
    bot.bind(sup.runtime_dir)
    sup.subscribe()
    res = sup.ok(m.NewSession(id=m.new_id(), name="real1"), timeout=30)
    assert res.results[0].ok, (res, sup.output())
    pid = res and sup.status()["session:real1"].pid
    wait_until(lambda: any(isinstance(x, m.Hello) and x.pid == pid for x in bot.pump()), 10,
               "the worker's Hello")
    key = bot.turn("real1", "hello")
    result = wait_until(lambda: bot.result_for(key), 30, "the turn's result")
    assert not result.is_error, result
    row = wait_until(lambda: (r := sup.status()["session:real1"]).claude_pid and r, 5,
                     "the warm CLI in status")
    cli = row.claude_pid
    assert psutil.Process(cli).ppid() == row.pid

    # Idle suspend: the worker stops its CLI after idle_suspend_seconds; status says so.
    row = wait_until(lambda: (r := sup.status()["session:real1"]).suspended and r, 15,
                     "the session to be suspended")
    assert row.claude_pid is None
    wait_until(lambda: not psutil.pid_exists(cli) or
               psutil.Process(cli).status() == psutil.STATUS_ZOMBIE, 5, "the CLI gone")

    # SIGKILL the worker: reaped at once, -9 published, RUNNING again with a new pid.
    old = row.pid
    os.kill(old, signal.SIGKILL)
    ev = sup.wait_event(lambda e: e.program == "session:real1" and e.to_state == "EXITED",
                        timeout=5)
    assert ev.exit_code == -9 and ev.pid == old
    new = sup.wait_state("session:real1", "RUNNING", timeout=5)
    assert new.pid != old

    # A warm CLI again, then the supervisor is SIGKILLed: nothing may survive 2 s.
    wait_until(lambda: any(isinstance(x, m.Hello) and x.pid == new.pid for x in bot.pump()), 10,
               "the new worker's Hello")  # a ROUTER drops what it sends before the peer is there
    key = bot.turn("real1", "again")
    wait_until(lambda: bot.result_for(key), 30, "the second turn's result")
    wait_until(lambda: sup.status()["session:real1"].claude_pid, 5, "the warm CLI")
    assert len(tagged(sup.tag)) >= 3  # supervisor, worker, CLI
    sup.proc.send_signal(signal.SIGKILL)
    sup.proc.wait(5)
    sup.assert_nothing_left(timeout=2.0)
