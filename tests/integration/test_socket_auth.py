"""Who may speak on the control, events and chat sockets: a peer without a Switchboard key gets
nothing and is taken for no one; a worker's key speaks for its own session only; the owner's
switchboardctl keeps working; a second server on a live socket path is refused."""
from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest
import zmq
import zmq.asyncio

from bot.chat import ChatServer
from supervisor.control import ControlServer
from tests.support.supervisor import SupervisorHarness
from tests.support.waits import wait_until
from wire import auth, codec, endpoints
from wire import messages as m

pytestmark = pytest.mark.timeout(60)
NO_ANSWER_MS = 1500  # how long a refused peer is given to get something anyway


@pytest.fixture
def sup(tmp_path):
    s = SupervisorHarness(tmp_path)
    s.start()
    yield s
    s.close()


def dealer(ctx: zmq.Context, endpoint: str, keys: auth.ClientKeys | None,  # type: ignore[type-arg]
           identity: bytes | None = None) -> zmq.Socket:  # type: ignore[type-arg]
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    # A stranger's handshake fails, so it may have no pipe to send on: without a send deadline a
    # DEALER with no peer blocks in libzmq, where no test timeout can reach it.
    sock.setsockopt(zmq.SNDTIMEO, 2000)
    if keys is not None:
        auth.as_client(sock, keys)
    if identity is not None:
        sock.setsockopt(zmq.IDENTITY, identity)
    sock.connect(endpoint)
    return sock


def answered_within(socks: list[zmq.Socket], ms: int) -> list[zmq.Socket]:  # type: ignore[type-arg]
    """The sockets that got anything within `ms` of now (polled together)."""
    poller = zmq.Poller()
    for sock in socks:
        poller.register(sock, zmq.POLLIN)
    deadline = time.monotonic() + ms / 1000
    got: list[zmq.Socket] = []  # type: ignore[type-arg]
    while (left := deadline - time.monotonic()) > 0 and not got:
        got = [s for s, _ in poller.poll(left * 1000)]
    return got


def strangers(server_public: str) -> list[auth.ClientKeys | None]:
    """No CURVE at all; a key of its own for the right server; the right server's key as its own
    client key (the public half is no secret)."""
    return [None, auth.ClientKeys(server_public, auth.new_keypair()),
            auth.ClientKeys(server_public, auth.Keypair(server_public, auth.new_keypair().secret))]


def test_a_peer_without_a_key_gets_no_status_no_events_and_cannot_stop(sup) -> None:
    owner = auth.load_owner_keys(sup.runtime_dir)
    ctx = zmq.Context()
    try:
        # Every stranger at once, each given the whole NO_ANSWER_MS to get something anyway.
        socks = []
        for keys in strangers(owner.control.server):
            for identity in (None, b"bot", b"session:x"):
                sock = dealer(ctx, sup.endpoints.control, keys, identity)
                for msg in (m.Status(id="s1"), m.Shutdown(id="s2"),
                            m.Register(id="r1", program="bot", pid=os.getpid())):
                    try:
                        sock.send(codec.encode(msg))
                    except zmq.Again:
                        pass  # no pipe at all: the frame never left, which is the point
                socks.append(sock)
        subs = []
        for keys in strangers(owner.control.server):
            sub = ctx.socket(zmq.SUB)
            sub.setsockopt(zmq.LINGER, 0)
            if keys is not None:
                auth.as_client(sub, keys)
            sub.setsockopt(zmq.SUBSCRIBE, b"")
            sub.connect(sup.endpoints.events)
            subs.append(sub)
        for _ in subs:
            sup.ok(m.NewSession(id=m.new_id(), name=f"ev{len(sup.status())}"))
        assert not answered_within(socks + subs, NO_ANSWER_MS), "a stranger got an answer or event"
        for sock in socks + subs:
            sock.close()
    finally:
        ctx.destroy(linger=0)
    # Nothing was stopped, and the owner's switchboardctl still works.
    assert sup.proc.poll() is None
    r = sup.ctl("status")
    assert r.returncode == 0 and "RUNNING" in r.stdout, r
    r = sup.ctl("stop", "ev0")
    assert r.returncode == 0 and "stopped" in r.stdout, r
    assert sup.state("session:ev0") == "STOPPED"


def test_switchboardctl_names_a_missing_key(sup) -> None:
    (sup.runtime_dir / auth.OWNER_KEY).unlink()
    r = sup.ctl("status")
    assert r.returncode != 0
    assert f"no key at {sup.runtime_dir / auth.OWNER_KEY}" in r.stderr, r.stderr


def test_a_second_bind_on_the_live_control_socket_is_refused(sup) -> None:
    async def second() -> str:
        ctx = zmq.asyncio.Context()
        try:
            with pytest.raises(endpoints.SocketInUse) as refused:
                ControlServer(ctx, sup.endpoints, lambda peer, msg: None,  # type: ignore[arg-type,return-value]
                              auth.RunKeys())
            return str(refused.value)
        finally:
            ctx.destroy(linger=0)

    sentence = asyncio.run(second())
    assert sentence == (f"{sup.runtime_dir / 'control.sock'} is already served by pid"
                        f" {sup.proc.pid}: stop that process first, or give this one another"
                        " runtime_dir.")
    assert sup.answers()  # the live one still serves


@pytest.fixture
def run_dir():
    d = Path(tempfile.mkdtemp(prefix="sb-", dir="/tmp"))
    yield endpoints.prepare_runtime_dir(d)
    shutil.rmtree(d, ignore_errors=True)


def test_a_stale_socket_file_of_a_dead_process_is_replaced(run_dir) -> None:
    ctx = zmq.Context()
    try:
        first = ctx.socket(zmq.ROUTER)
        claim = endpoints.bind_private(first, run_dir.chat)
        first.close(linger=0)
        endpoints.release(claim)  # as when its process died: the file stays, the lock is gone
        assert Path(run_dir.path(run_dir.chat)).exists()
        again = ctx.socket(zmq.ROUTER)
        endpoints.release(endpoints.bind_private(again, run_dir.chat))
        again.close(linger=0)
    finally:
        ctx.destroy(linger=0)


async def test_a_workers_key_speaks_for_its_own_session_only(run_dir) -> None:
    """On the control socket a worker may only register (as itself) and answer pings; on the
    chat socket its key is taken for its session and no other, and a keyless peer for no one."""
    keys = auth.RunKeys()
    seen: list[tuple[bytes, m.Msg]] = []

    async def handle(peer: bytes, msg: m.Msg) -> m.Ok | m.Error | None:
        seen.append((peer, msg))
        return m.Ok(id=getattr(msg, "id", ""))

    ctx = zmq.asyncio.Context()
    control = ControlServer(ctx, run_dir, handle, keys)
    chat_seen: list[tuple[str, m.Msg]] = []
    chat_ctx = zmq.asyncio.Context()  # the bot's own process: its own context and ZAP handler
    chat = ChatServer(chat_ctx, run_dir.chat, lambda s, msg: chat_seen.append((s, msg)),
                      keys.chat_root)
    tasks = [asyncio.create_task(control.serve()), asyncio.create_task(chat.run())]
    a, b = keys.for_child("session:a"), keys.for_child("session:b")
    try:
        worker = dealer(ctx, run_dir.control, a.control)  # type: ignore[arg-type]
        await worker.send(codec.encode(m.Stop(id="st", names=["b"])))
        reply = codec.control_replies.decode(await asyncio.wait_for(worker.recv(), 5))
        assert isinstance(reply, m.Error) and reply.id == "st"
        assert reply.message == "a session may only register and answer pings on this socket."
        await worker.send(codec.encode(m.Register(id="rg", program="session:b", pid=1)))
        await asyncio.wait_for(worker.recv(), 5)
        assert seen == [(b"session:a", m.Register(id="rg", program="session:b", pid=1))]
        worker.close()

        assert a.chat is not None and b.chat is not None
        event = m.Event(session="b", seq=1, body=m.Notice(level="info", message="pwned"))
        as_b_with_a = dealer(ctx, run_dir.chat,  # type: ignore[arg-type]
                             a.chat, identity=auth.chat_identity("b"))
        keyless = dealer(ctx, run_dir.chat, None, identity=auth.chat_identity("b"))  # type: ignore[arg-type]
        own = auth.ClientKeys(a.chat.server, auth.new_keypair())
        stranger = dealer(ctx, run_dir.chat, own, identity=auth.chat_identity("b"))  # type: ignore[arg-type]
        for sock in (as_b_with_a, keyless, stranger):
            await sock.send(codec.encode(event))
        real_b = dealer(ctx, run_dir.chat, b.chat, identity=auth.chat_identity("b"))  # type: ignore[arg-type]
        await real_b.send(codec.encode(m.Event(session="b", seq=1,
                                               body=m.Notice(level="info", message="real"))))
        deadline = asyncio.get_running_loop().time() + 5
        while not chat_seen and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)  # let any stray frame from the impostors arrive too
        assert [(s, e.body.message) for s, e in chat_seen] == [("b", "real")]  # type: ignore[attr-defined]
        # The bot answers only the real one: it is the route for "b".
        assert chat.send("b", m.Replay(id="rp", after_seq=0))
        assert await asyncio.wait_for(real_b.recv(), 5)
        for sock in (as_b_with_a, keyless, stranger):
            assert not await sock.poll(300)
            sock.close()
        real_b.close()
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        control.close()
        chat.close()
        ctx.destroy(linger=0)
        chat_ctx.destroy(linger=0)


def test_judges_as_a_table() -> None:
    keys = auth.RunKeys()
    bot, a = keys.for_child("bot"), keys.for_child("session:a")
    stranger = auth.new_keypair().public
    cases = [
        (auth.CONTROL_DOMAIN, keys.owner.public, "owner"),
        (auth.CONTROL_DOMAIN, bot.control.client.public, "bot"),
        (auth.CONTROL_DOMAIN, a.control.client.public, "session:a"),
        (auth.CONTROL_DOMAIN, stranger, None),
        (auth.EVENTS_DOMAIN, keys.owner.public, "owner"),
        (auth.EVENTS_DOMAIN, bot.control.client.public, "bot"),
        (auth.EVENTS_DOMAIN, a.control.client.public, None),
        (auth.EVENTS_DOMAIN, stranger, None),
        ("other", keys.owner.public, None),
    ]
    for domain, key, want in cases:
        assert keys.judge(domain, b"", key) == want, (domain, want)
    peers = auth.ChatPeers(keys.chat_root)
    assert a.chat is not None
    for route, key, want in [
        (b"a/1", a.chat.client.public, "a"),
        (b"a", a.chat.client.public, "a"),
        (b"b/1", a.chat.client.public, None),
        (b"../x/1", a.chat.client.public, None),
        (b"a/1", stranger, None),
        (b"a/1", "", None),
    ]:
        assert peers.session_of(route, key) == want, (route, want)
    assert bot.chat is None and bot.chat_root == keys.chat_root.hex() and a.chat_root is None


def test_owner_key_file_is_0600(sup) -> None:
    path = sup.runtime_dir / auth.OWNER_KEY
    assert path.stat().st_mode & 0o777 == 0o600
    wait_until(lambda: sup.answers(), 5, "the supervisor to answer the owner")
