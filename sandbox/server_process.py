"""A sandbox server run as a subprocess, for tests, benchmarks and the demo (stdlib only).

The server prints `LISTENING http://127.0.0.1:PORT` as its first stdout line and exits when its
stdin closes (`--exit-on-stdin-eof`), so it cannot outlive the process that started it even if
that process is SIGKILLed. Stopping proves the process is gone.

A server whose test-side endpoints need a key (`stdin_secret`) gets it as the first line of
that same stdin: never argv or the environment, where any local process could read it.
"""
from __future__ import annotations

import os
import selectors
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Self

PROJECT_ROOT = Path(__file__).resolve().parent.parent
START_DEADLINE_S = 10.0
STOP_DEADLINE_S = 5.0
PREFIX = "LISTENING "
USER_KEY_HEADER = "X-Sandbox-Key"  # the header that carries the key of a server's user side


class ServerProcess:
    """`with Subclass() as s: s.url`: start `python -m <module> --port 0`, read its URL, stop it."""

    module = ""
    label = "sandbox server"

    def __init__(self, start_timeout: float = START_DEADLINE_S) -> None:
        self.start_timeout = start_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.returncode: int | None = None
        self._stderr: IO[bytes] | None = None

    def server_args(self) -> list[str]:
        """Extra command-line arguments for the server."""
        return []

    def server_env(self) -> dict[str, str]:
        """Extra environment for the server (never a secret, never into argv)."""
        return {}

    def stdin_secret(self) -> str:
        """A secret for the server, written as the first line of its stdin ("": none)."""
        return ""

    @property
    def pid(self) -> int:
        assert self.proc is not None, "not started"
        return self.proc.pid

    def __enter__(self) -> Self:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p
        )
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self.server_env())
        argv = [sys.executable, "-m", self.module, "--port", "0", "--exit-on-stdin-eof"]
        self._stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            argv + self.server_args(),
            cwd=PROJECT_ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        try:
            secret = self.stdin_secret()
            if secret:
                assert self.proc.stdin is not None
                self.proc.stdin.write(secret.encode() + b"\n")
                self.proc.stdin.flush()
            line = self._read_first_line(self.start_timeout)
            if not line.startswith(PREFIX):
                raise RuntimeError(
                    f"{self.label} did not start: first line {line!r}{self._stderr_tail()}"
                )
            self.url = line[len(PREFIX) :].strip()
        except BaseException:
            self._stop()
            raise
        return self

    def _read_first_line(self, timeout: float) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        buf = b""
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{self.label} printed no LISTENING line in {timeout} s")
                if not sel.select(left):
                    continue
                chunk = os.read(fd, 4096)
                if not chunk:
                    raise RuntimeError(
                        f"{self.label} exited before listening (rc={self.proc.poll()})"
                        + self._stderr_tail()
                    )
                buf += chunk
        return buf.split(b"\n", 1)[0].decode()

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        tail = self._stderr.read()[-2000:].decode(errors="replace")
        return f"\nstderr:\n{tail}" if tail else ""

    def __exit__(self, *exc: object) -> None:
        self._stop()

    def _stop(self) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(STOP_DEADLINE_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(STOP_DEADLINE_S)
        for stream in (proc.stdin, proc.stdout, self._stderr):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
        self._stderr = None
        self.returncode = proc.returncode
        if proc.poll() is None:
            raise RuntimeError(f"{self.label} (pid {proc.pid}) would not stop")
