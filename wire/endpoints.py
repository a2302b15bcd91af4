"""Where the sockets live, and making sure that place is private.

All endpoints are `ipc://` sockets in one runtime directory made 0700; each socket file is
chmod 0600 after bind. A unix socket path must fit in 107 bytes, so a too-long runtime dir is
refused at start with a sentence that names the fix, instead of a cryptic ZMQ error later.

A bind on `ipc://` silently unlinks whatever socket file is there, so a second server would
steal the path from a live one. `bind_private` first takes `<socket>.lock` (flock, held for the
life of the process, with its pid inside): a live holder makes the bind fail with a sentence
naming that pid; a stale socket file from a dead process is replaced.
"""
from __future__ import annotations

import fcntl
import os
import stat
from dataclasses import dataclass
from pathlib import Path

# sun_path is 108 bytes including the terminating NUL.
MAX_SOCKET_PATH = 107
CONTROL = "control.sock"
CHAT = "chat.sock"
EVENTS = "events.sock"
_LONGEST = max(CONTROL, CHAT, EVENTS, key=len)


class RuntimeDirError(RuntimeError):
    """The runtime directory cannot be used; str() names the fix."""


class SocketInUse(RuntimeDirError):
    """Another live process serves this socket path; str() names its pid and the fix."""


@dataclass(frozen=True)
class Endpoints:
    runtime_dir: Path

    @property
    def control(self) -> str:
        return f"ipc://{self.runtime_dir / CONTROL}"

    @property
    def chat(self) -> str:
        return f"ipc://{self.runtime_dir / CHAT}"

    @property
    def events(self) -> str:
        return f"ipc://{self.runtime_dir / EVENTS}"

    def path(self, endpoint: str) -> Path:
        return Path(endpoint.removeprefix("ipc://"))


RUNTIME_DIR_ENV = "SWITCHBOARD_RUNTIME_DIR"


def default_runtime_dir() -> Path:
    """$SWITCHBOARD_RUNTIME_DIR (the system unit sets it to its RuntimeDirectory=), else
    $XDG_RUNTIME_DIR/switchboard, else a per-user dir in /tmp."""
    explicit = os.environ.get(RUNTIME_DIR_ENV)
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        return Path(xdg) / "switchboard"
    return Path(f"/tmp/switchboard-{os.getuid()}")


def check_runtime_dir_length(runtime_dir: Path) -> None:
    longest = len(os.fsencode(str(runtime_dir / _LONGEST)))
    if longest > MAX_SOCKET_PATH:
        raise RuntimeDirError(
            f"runtime_dir '{runtime_dir}' is too long for a unix socket path ({longest} > "
            f"{MAX_SOCKET_PATH} bytes): set runtime_dir to a shorter path"
            f" such as /tmp/sb-{os.getuid()}."
        )


def prepare_runtime_dir(runtime_dir: Path) -> Endpoints:
    """Create the runtime dir 0700 (or tighten it), refuse one owned by someone else or too long."""
    runtime_dir = runtime_dir.expanduser().absolute()
    check_runtime_dir_length(runtime_dir)
    runtime_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = runtime_dir.stat()
    if st.st_uid != os.getuid():
        raise RuntimeDirError(
            f"runtime_dir '{runtime_dir}' belongs to another user: choose a directory you own."
        )
    if stat.S_IMODE(st.st_mode) != 0o700:
        os.chmod(runtime_dir, 0o700)
    return Endpoints(runtime_dir)


def make_private(endpoint: str) -> None:
    """chmod 0600 the socket file behind an ipc:// endpoint right after bind."""
    if endpoint.startswith("ipc://"):
        os.chmod(endpoint.removeprefix("ipc://"), 0o600)


def claim(endpoint: str) -> int | None:
    """Take the lock of an ipc:// endpoint for this process (the fd, kept open while it serves);
    SocketInUse when a live process holds it. None for a non-ipc endpoint."""
    if not endpoint.startswith("ipc://"):
        return None
    path = Path(endpoint.removeprefix("ipc://") + ".lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise SocketInUse(
            f"{endpoint.removeprefix('ipc://')} is already served by pid {holder}: stop that"
            " process first, or give this one another runtime_dir."
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def bind_private(sock: object, endpoint: str) -> int | None:
    """Claim `endpoint`, bind `sock` (a zmq socket) to it and chmod it 0600; returns the claim's
    fd (close it with the socket, `release`)."""
    fd = claim(endpoint)
    try:
        sock.bind(endpoint)  # type: ignore[attr-defined]
        make_private(endpoint)
    except BaseException:
        release(fd)
        raise
    return fd


def release(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)
