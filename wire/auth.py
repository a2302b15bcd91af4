"""Who may speak on Switchboard's sockets: CURVE keys, how they reach a child, and the ZAP check.

Every socket is CURVE-encrypted and every server asks a ZAP handler (RFC 27) about each peer:
- control and events (the supervisor's ROUTER and PUB) share one server keypair made at start.
  Each child gets its own client key for them; the supervisor remembers which key it gave to
  which program, so the peer's name (`bot`, `session:<name>`, or `owner` for `switchboardctl`)
  comes from the key, never from what the peer claims.
- chat (the bot's ROUTER): a per-run `chat_root` secret, handed to the bot only, derives the
  chat server keypair and each worker's chat key (`derive(chat_root, "chat:<name>")`), so a
  worker's key speaks for its own session and no other, and a restarted worker is let in again
  by the same key. libzmq's ZAP request lacks the peer's routing id, so the session is checked
  per frame (`ChatPeers`): the routing id `<name>/<random>` names it, the key must be its.
The identity a server acts on comes from the ZAP `User-Id` (read from a frame's metadata), never
from a routing id alone; the random tail of a worker's routing id means a restarted worker never
collides with its dead predecessor's connection.

Keys travel to a child through a pipe it inherits (`SWITCHBOARD_KEYS_FD` names the fd, read and
closed at start): never in the environment or argv, where any process of the user could read
them. The owner's key (for `switchboardctl` and the test harnesses) is `<runtime_dir>/owner.key`,
0600; a session's tools must be denied that file (the session sandbox denies the runtime dir).
This module never logs a secret key.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec
import zmq
import zmq.utils.z85

if TYPE_CHECKING:  # switchboardctl imports this module: it must not pay for asyncio
    import zmq.asyncio

from wire.files import atomic_write
from wire.names import BOT_PROGRAM, SESSION_PREFIX, session_name_error

log = logging.getLogger(__name__)

KEYS_FD_ENV = "SWITCHBOARD_KEYS_FD"
OWNER_KEY = "owner.key"
OWNER = "owner"  # the User-Id of the owner's key (switchboardctl)
CONTROL_DOMAIN = "control"
EVENTS_DOMAIN = "events"
CHAT_DOMAIN = "chat"
ZAP_ENDPOINT = "inproc://zeromq.zap.01"

# Peer -> the ZAP domain it connects in and the client key it shows: the User-Id, or None.
Policy = Callable[[str, bytes, str], str | None]


class Keypair(msgspec.Struct, frozen=True):
    public: str  # Z85
    secret: str

    def __repr__(self) -> str:  # a key pair in a log line shows only its public half
        return f"Keypair(public={self.public!r})"


class ClientKeys(msgspec.Struct, frozen=True):
    """What a client needs for one server: the server's public key and its own pair."""

    server: str
    client: Keypair


class ChildKeys(msgspec.Struct, frozen=True, kw_only=True):
    control: ClientKeys  # control and events
    chat: ClientKeys | None = None  # a worker's key for the bot's chat socket
    chat_root: str | None = None  # the bot's: hex secret the chat keys derive from


class OwnerKeys(msgspec.Struct, frozen=True, kw_only=True):
    control: ClientKeys
    chat_root: str  # lets the owner (and the test harnesses) stand in for the bot


class KeyFileError(RuntimeError):
    """A key could not be read; str() names the fix."""


def new_keypair() -> Keypair:
    public, secret = zmq.curve_keypair()
    return Keypair(public.decode(), secret.decode())


def derive(root: bytes, label: str) -> Keypair:
    """A keypair determined by `root` and `label` (any 32 bytes are a valid CURVE secret)."""
    secret = zmq.utils.z85.encode(hmac.new(root, label.encode(), hashlib.sha256).digest())
    return Keypair(zmq.curve_public(secret).decode(), secret.decode())


def chat_server_keys(chat_root: bytes) -> Keypair:
    return derive(chat_root, "chat-server")


def worker_chat_keys(chat_root: bytes, session: str) -> Keypair:
    return derive(chat_root, f"chat:{session}")


def chat_identity(session: str) -> bytes:
    """A worker's chat routing id: its name and a random tail, unique per process."""
    return f"{session}/{os.urandom(6).hex()}".encode()


# ----------------------------------------------------------------------- sockets


def as_client(sock: zmq.Socket, keys: ClientKeys) -> None:  # type: ignore[type-arg]
    """Make `sock` a CURVE client of `keys.server` (before connect)."""
    sock.setsockopt(zmq.CURVE_SERVERKEY, keys.server.encode())
    sock.setsockopt(zmq.CURVE_PUBLICKEY, keys.client.public.encode())
    sock.setsockopt(zmq.CURVE_SECRETKEY, keys.client.secret.encode())


def as_server(sock: zmq.Socket, keys: Keypair, domain: str) -> None:  # type: ignore[type-arg]
    """Make `sock` a CURVE server whose peers the ZAP handler judges in `domain` (before bind)."""
    sock.setsockopt(zmq.CURVE_SERVER, 1)
    sock.setsockopt(zmq.CURVE_SECRETKEY, keys.secret.encode())
    sock.setsockopt(zmq.ZAP_DOMAIN, domain.encode())


def peer_of(frame: zmq.Frame) -> str:
    """The ZAP User-Id of the peer that sent `frame` ("" if none)."""
    try:
        return str(frame.get("User-Id") or "")
    except zmq.ZMQError:
        return ""


class ZapHandler:
    """The ZAP handler of one asyncio context: every CURVE handshake on it asks `policy`.

    Bind it (construct it) before any server socket of the context binds: libzmq lets a CURVE
    peer in unchecked when no handler is there."""

    def __init__(self, ctx: zmq.asyncio.Context, policy: Policy) -> None:
        self._policy = policy
        self._sock = ctx.socket(zmq.REP)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.bind(ZAP_ENDPOINT)

    async def run(self) -> None:
        while True:
            frames = await self._sock.recv_multipart()
            await self._sock.send_multipart(self.answer(frames))

    def answer(self, frames: list[bytes]) -> list[bytes]:
        if len(frames) < 6:
            return [b"1.0", b"", b"400", b"malformed ZAP request", b"", b""]
        version, request_id, domain, address, identity, mechanism = frames[:6]
        user = None
        if mechanism == b"CURVE" and len(frames) == 7 and len(frames[6]) == 32:
            key = zmq.utils.z85.encode(frames[6]).decode()
            user = self._policy(domain.decode(errors="replace"), identity, key)
        if user is None:
            log.warning("event=peer_refused domain=%s mechanism=%s address=%r",
                        domain.decode(errors="replace"), mechanism.decode(errors="replace"),
                        address.decode(errors="replace")[:60])
            return [version, request_id, b"400", b"unknown key", b"", b""]
        return [version, request_id, b"200", b"OK", user.encode(), b""]

    def close(self) -> None:
        self._sock.close(linger=0)


# ----------------------------------------------------------------------- the supervisor's keys


@dataclass
class RunKeys:
    """The supervisor's keys of one run: it hands them out and judges control/events peers."""

    server: Keypair = field(default_factory=new_keypair)
    owner: Keypair = field(default_factory=new_keypair)
    chat_root: bytes = field(default_factory=lambda: os.urandom(32))
    root: bytes = field(default_factory=lambda: os.urandom(32))
    programs: dict[str, str] = field(default_factory=dict)  # client public key -> program

    def for_child(self, program: str) -> ChildKeys:
        mine = derive(self.root, f"control:{program}")
        self.programs[mine.public] = program
        control = ClientKeys(self.server.public, mine)
        if program == BOT_PROGRAM:
            return ChildKeys(control=control, chat_root=self.chat_root.hex())
        session = program.removeprefix(SESSION_PREFIX)
        chat = ClientKeys(chat_server_keys(self.chat_root).public,
                          worker_chat_keys(self.chat_root, session))
        return ChildKeys(control=control, chat=chat)

    def owner_keys(self) -> OwnerKeys:
        return OwnerKeys(control=ClientKeys(self.server.public, self.owner),
                         chat_root=self.chat_root.hex())

    def judge(self, domain: str, identity: bytes, key: str) -> str | None:
        """control: the owner, the bot and every worker by its key; events: the owner and bot."""
        user = OWNER if key == self.owner.public else self.programs.get(key)
        if domain == CONTROL_DOMAIN:
            return user
        if domain == EVENTS_DOMAIN and user in (OWNER, BOT_PROGRAM):
            return user
        return None


def chat_judge(domain: str, identity: bytes, key: str) -> str | None:
    """The bot's ZAP policy: any CURVE key completes the handshake, its User-Id is the key.

    libzmq's ZAP request does not carry the peer's routing id, so which session a key speaks
    for is judged per frame by `ChatPeers` (routing id `<name>/...`, key derived for <name>):
    a peer without a worker's key is let in but is never answered and nothing it sends is
    taken."""
    return key if domain == CHAT_DOMAIN else None


class ChatPeers:
    """Which session a chat frame speaks for: its routing id names it, its key must be that
    session's (`worker_chat_keys`); None for anyone else."""

    def __init__(self, chat_root: bytes) -> None:
        self._root = chat_root
        self._keys: dict[str, str] = {}

    def session_of(self, route: bytes, key: str) -> str | None:
        name = route.split(b"/", 1)[0].decode(errors="replace")
        if not key or session_name_error(name):
            return None
        if name not in self._keys:
            self._keys[name] = worker_chat_keys(self._root, name).public
        return name if hmac.compare_digest(self._keys[name], key) else None


# ----------------------------------------------------------------------- handing keys over


def keys_pipe(keys: ChildKeys) -> int:
    """A pipe holding `keys`; returns the read end for the child (pass_fds), the caller closes
    it after the spawn. The keys fit the pipe's buffer, so the write never blocks."""
    r, w = os.pipe()
    try:
        os.write(w, msgspec.json.encode(keys))
    finally:
        os.close(w)
    return r


def receive_keys() -> ChildKeys:
    """Read this child's keys from the inherited fd and close it; SystemExit with a sentence."""
    raw = os.environ.pop(KEYS_FD_ENV, "")
    if not raw.isdigit():
        raise SystemExit(f"{KEYS_FD_ENV} is not set: this program is started by"
                         " `switchboard run`, not by hand.")
    fd = int(raw)
    chunks = []
    try:
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        os.close(fd)
        return msgspec.json.decode(b"".join(chunks), type=ChildKeys)
    except (OSError, msgspec.DecodeError) as exc:
        raise SystemExit(f"the keys on fd {fd} cannot be read ({type(exc).__name__}): restart"
                         " it through `switchboard run`.") from None


def write_owner_keys(runtime_dir: Path, keys: OwnerKeys) -> Path:
    path = runtime_dir / OWNER_KEY
    atomic_write(path, msgspec.json.encode(keys), 0o600)
    return path


def load_owner_keys(runtime_dir: Path) -> OwnerKeys:
    """The owner's key of the supervisor running on `runtime_dir`; KeyFileError names the fix."""
    path = runtime_dir / OWNER_KEY
    try:
        return msgspec.json.decode(path.read_bytes(), type=OwnerKeys)
    except FileNotFoundError:
        raise KeyFileError(f"the supervisor is not running (no key at {path}): start it with"
                        " `switchboard run -c CONFIG`.") from None
    except PermissionError:
        raise KeyFileError(f"{path} is not readable: run switchboardctl as the user who runs"
                        " `switchboard run`.") from None
    except (OSError, msgspec.DecodeError) as exc:
        raise KeyFileError(f"{path} cannot be read ({type(exc).__name__}): restart the supervisor"
                        " to write it again.") from None
