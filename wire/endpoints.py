"""Where the sockets live, and making sure that place is private.

All endpoints are `ipc://` sockets in one runtime directory made 0700; each socket file is
chmod 0600 after bind. A unix socket path must fit in 107 bytes, so a too-long runtime dir is
refused at start with a sentence that names the fix, instead of a cryptic ZMQ error later.
"""
from __future__ import annotations

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
