"""The worker's end of the chat plane: one DEALER to the bot's ROUTER, authenticated by this
session's CURVE key (wire.auth), which is what makes the bot take it for this session. Its
routing id is `<name>/<random>`: new per process, so a restarted worker never collides with the
dead one's connection.

- `send_now` never blocks: with ZMQ_IMMEDIATE nothing queues for a bot that is not there, and
  what it missed is in the outbox for its Replay.
- `publish` stores a durable event in the outbox before sending it (seq > 0); ephemeral ones
  (seq 0) are only sent.
- `hello_loop` sends Hello(last_seq) at every (re)connection, so a restarted bot asks for what
  it missed.
- `replay` sends every stored event after a seq, in order, then ReplayDone; live durable events
  are held back meanwhile (the replay picks them up), so the bot never sees a gap.
- `recv` decodes one request; garbage is logged and answered with an Error when it has an id.

It knows nothing of turns or the CLI.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any, cast

import zmq
import zmq.asyncio
from zmq.utils.monitor import parse_monitor_message

from session_worker.store import Store
from wire import auth, codec
from wire import messages as m
from wire.rpc import configure

log = logging.getLogger(__name__)

REPLAY_SEND_TIMEOUT = 10.0
SNDHWM = 10000


class ChatLink:
    def __init__(self, ctx: zmq.asyncio.Context, endpoint: str, session: str, store: Store,
                 keys: auth.ClientKeys) -> None:
        self.session = session
        self.store = store
        sock = ctx.socket(zmq.DEALER)
        configure(sock)
        auth.as_client(sock, keys)
        sock.setsockopt(zmq.IDENTITY, auth.chat_identity(session))
        sock.setsockopt(zmq.IMMEDIATE, 1)
        sock.setsockopt(zmq.SNDHWM, SNDHWM)
        self._monitor = sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)
        sock.connect(endpoint)
        self.sock = sock
        self._replaying = False
        self._replay_lock = asyncio.Lock()

    def close(self) -> None:
        self._monitor.close(linger=0)
        self.sock.close(linger=0)

    # ------------------------------------------------------------------- out

    def send_now(self, frame: bytes) -> bool:
        """Send without ever blocking; False when the bot is not there to take it."""
        try:
            fut = cast("asyncio.Future[Any]", self.sock.send(frame, zmq.NOBLOCK, copy=False))
        except zmq.ZMQError as exc:
            log.debug("event=send_dropped reason=%r", str(exc))
            return False
        if fut.done() and fut.exception() is not None:
            return False
        if not fut.done():
            fut.add_done_callback(_quiet)
        return True

    def reply(self, msg: m.Msg) -> None:
        self.send_now(codec.encode(msg))

    def publish(
        self, body: m.EventBody, chat_id: int | None, key: str, ephemeral: bool = False
    ) -> None:
        if ephemeral:
            event = m.Event(session=self.session, seq=0, body=body, chat_id=chat_id, key=key)
            self.send_now(codec.encode(event))
            return

        def encode(seq: int) -> bytes:
            event = m.Event(session=self.session, seq=seq, body=body, chat_id=chat_id, key=key)
            return codec.encode(event)

        _seq, frame = self.store.append(key, encode)
        if not self._replaying:
            self.send_now(frame)

    async def hello_loop(self) -> None:
        while True:
            frames = await self._monitor.recv_multipart()
            event = parse_monitor_message(frames)
            if event["event"] != zmq.EVENT_HANDSHAKE_SUCCEEDED:
                continue
            hello = m.Hello(session=self.session, pid=os.getpid(), last_seq=self.store.last_seq)
            for _ in range(20):
                if self.send_now(codec.encode(hello)):
                    log.info("event=hello_sent last_seq=%d", hello.last_seq)
                    break
                await asyncio.sleep(0.05)

    async def replay(self, msg: m.Replay) -> None:
        async with self._replay_lock:
            self._replaying = True
            cursor = max(0, msg.after_seq)
            try:
                while True:
                    rows = self.store.events_after(cursor)
                    if not rows:
                        break
                    for seq, frame in rows:
                        await asyncio.wait_for(
                            self.sock.send(frame, copy=False), REPLAY_SEND_TIMEOUT
                        )
                        cursor = seq
                # No await between the last empty read and this: no live event slips between.
                self._replaying = False
                self.reply(m.ReplayDone(id=msg.id, last_seq=cursor))
                log.info("event=replayed after=%d last=%d", msg.after_seq, cursor)
            except TimeoutError:
                log.warning("event=replay_aborted after=%d at=%d", msg.after_seq, cursor)
            finally:
                self._replaying = False

    # ------------------------------------------------------------------- in

    async def recv(self) -> m.ChatToWorker | None:
        """The next request from the bot; None (after logging and answering) for garbage."""
        frames = await self.sock.recv_multipart()
        frame = frames[-1]
        msg = codec.to_worker.decode(frame)
        if not isinstance(msg, codec.DecodeError):
            return msg
        log.warning("event=bad_frame reason=%r", msg.reason[:300])
        rid = codec.request_id_of(frame)
        if rid:
            self.reply(
                m.Error(
                    id=rid,
                    code=m.E_BAD_REQUEST,
                    message=f"The worker could not read that request: {msg.reason[:200]}",
                )
            )
        return None


def _quiet(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled() and fut.exception() is not None:
        log.debug("event=send_failed reason=%r", str(fut.exception()))
