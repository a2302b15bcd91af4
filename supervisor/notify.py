"""systemd's notify protocol (sd_notify) and watchdog, without libsystemd.

With `Type=notify` systemd waits for READY=1; STATUS= shows in `systemctl status`; STOPPING=1
announces a clean shutdown; with `WatchdogSec=` the service must send WATCHDOG=1 more often than
that, from the event loop itself, so a wedged loop is restarted. Outside systemd (no
NOTIFY_SOCKET) every call is a cheap no-op. Never blocks: a message that does not fit is dropped.
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        addr = env.get("NOTIFY_SOCKET", "")
        self._addr: str | None = None
        if addr.startswith("@"):
            self._addr = "\0" + addr[1:]
        elif addr.startswith("/"):
            self._addr = addr
        self._sock: socket.socket | None = None
        self.watchdog_interval = self._watchdog_interval(env)

    @staticmethod
    def _watchdog_interval(env: Mapping[str, str]) -> float | None:
        usec = env.get("WATCHDOG_USEC")
        pid = env.get("WATCHDOG_PID")
        if not usec or (pid and pid != str(os.getpid())):
            return None
        try:
            value = int(usec)
        except ValueError:
            return None
        return value / 1e6 if value > 0 else None

    @property
    def enabled(self) -> bool:
        return self._addr is not None

    def send(self, **fields: str | int) -> bool:
        """Send KEY=value lines; returns False (and logs once per failure) if it could not."""
        if self._addr is None:
            return False
        payload = "\n".join(f"{k.upper()}={v}" for k, v in fields.items()).encode()
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                # A reader that is slow or gone must never stall the loop (and so the lifeline):
                # a full queue drops this message, logged, instead of blocking.
                self._sock.setblocking(False)
            self._sock.sendto(payload, self._addr)
            return True
        except OSError as exc:
            log.warning("event=notify_failed error=%r", str(exc))
            return False

    def ready(self, status: str) -> None:
        self.send(ready=1, status=status, mainpid=os.getpid())

    def status(self, status: str) -> None:
        self.send(status=status)

    def stopping(self, status: str = "stopping") -> None:
        self.send(stopping=1, status=status)

    async def watchdog_loop(self, healthy: Callable[[], bool] = lambda: True) -> None:
        """Ping the watchdog at half its interval while `healthy()` holds; owned by the caller."""
        if self.watchdog_interval is None or not self.enabled:
            return
        while True:
            if healthy():
                self.send(watchdog=1)
            await asyncio.sleep(self.watchdog_interval / 2)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
