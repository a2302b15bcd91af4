"""wire.rpc over real ZeroMQ ipc sockets: replies matched by id, pings answered, clear timeouts."""
from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

import pytest
import zmq
import zmq.asyncio

from wire import codec, endpoints, rpc
from wire import messages as m

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def runtime_dir():
    d = Path(tempfile.mkdtemp(prefix="sb-", dir="/tmp"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


async def test_requester_matches_replies_and_answers_pings(runtime_dir: Path) -> None:
    ep = endpoints.prepare_runtime_dir(runtime_dir)
    ctx = zmq.asyncio.Context()
    router = ctx.socket(zmq.ROUTER)
    router.bind(ep.control)
    endpoints.make_private(ep.control)
    assert (runtime_dir / "control.sock").stat().st_mode & 0o777 == 0o600
    stats = m.WorkerStats(session="a", queued=3)
    client = rpc.Requester(ctx, ep.control, identity=b"session:a",
                           on_ping=lambda p: m.Pong(id=p.id, stats=stats))
    try:
        task = asyncio.create_task(client.request(m.Version(id="v1"), timeout=5))
        ident, frame = await asyncio.wait_for(router.recv_multipart(), 5)
        assert ident == b"session:a"
        assert codec.control_requests.decode(frame) == m.Version(id="v1")
        # A reply to someone else's id is ignored; ours resolves the request.
        await router.send_multipart([ident, codec.encode(m.Ok(id="other"))])
        await router.send_multipart([ident, b"garbage"])
        ok = m.Ok(id="v1", result=m.VersionResult(version="9"))
        await router.send_multipart([ident, codec.encode(ok)])
        reply = await task
        assert reply == m.Ok(id="v1", result=m.VersionResult(version="9"))
        await router.send_multipart([ident, codec.encode(m.Ping(id="p1"))])
        ident, frame = await asyncio.wait_for(router.recv_multipart(), 5)
        pong = codec.control_requests.decode(frame)
        assert isinstance(pong, m.Pong) and pong.id == "p1" and pong.stats.queued == 3
    finally:
        await client.close()
        router.close(linger=0)
        ctx.destroy(linger=0)


async def test_requester_times_out_with_a_sentence(runtime_dir: Path) -> None:
    ep = endpoints.prepare_runtime_dir(runtime_dir)
    ctx = zmq.asyncio.Context()
    client = rpc.Requester(ctx, ep.control)
    try:
        with pytest.raises(rpc.RpcTimeout, match="switchboard run"):
            await client.request(m.Version(id="v"), timeout=0.2)
    finally:
        await client.close()
        ctx.destroy(linger=0)


def test_request_sync_without_a_supervisor_says_how_to_start_it(runtime_dir: Path) -> None:
    ep = endpoints.Endpoints(runtime_dir)
    with pytest.raises(rpc.RpcTimeout, match="not running.*switchboard run"):
        rpc.request_sync(ep.control, m.Version(id="v"), timeout=0.2)
