"""Finding a test's processes and proving they are gone.

A test that started a process proves it is gone; these are the readers it proves that with:
processes by an environment tag or a session marker, a short description for a failure
message, and waits until a session's marked processes are gone. `StackProcesses` is the
whole stack's part of that: every process of one stack, its zombies, and what is left after
its run process exited. They only look (and, for a harness's last-resort cleanup, kill what the
caller names); they never decide a test's verdict.
"""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import psutil

from wire.names import INSTANCE_ENV, MARKER_ENV

GONE_STEP = 0.05  # a process scan is costly: poll it less often than a cheap condition
TAG_ENV = "SB_E2E_STACK"  # the whole stack's tag: every process of one stack carries it


def proc_env(p: psutil.Process) -> dict[str, str]:
    """A process's environment, or {} when it is gone or not ours to read."""
    try:
        return dict(p.environ())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, OSError):
        return {}


def describe(p: psutil.Process) -> str:
    try:
        return f"pid {p.pid} {p.status()} {' '.join(p.cmdline())[:120]}"
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return f"pid {p.pid} (gone or zombie)"


def tagged(tag_env: str, tag: str) -> list[psutil.Process]:
    """Every live process (but this one) whose environment has `tag_env=tag`."""
    out = []
    for p in psutil.process_iter(["pid"]):
        if p.pid != os.getpid() and proc_env(p).get(tag_env) == tag:
            out.append(p)
    return out


def marked_pids(session: str) -> list[int]:
    """Live (non-zombie) processes whose environment carries this session's marker."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(MARKER_ENV) == session and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc.pid)
        except (psutil.Error, OSError):
            continue
    return found


def wait_until_gone(session: str, timeout: float) -> list[int]:
    """Wait up to `timeout` for the session's marked processes to go; those still left."""
    deadline = time.monotonic() + timeout
    while True:
        left = marked_pids(session)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(GONE_STEP)


def alive(pid: int) -> bool:
    """The pid is a live process (a zombie counts as gone)."""
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def children_of(pid: int) -> list[psutil.Process]:
    try:
        return list(psutil.Process(pid).children(recursive=True))
    except psutil.NoSuchProcess:
        return []


class StackProcesses:
    """The processes of one whole stack (a mixin of `tests.support.stack.Stack`).

    The stack sets `tag` (the value of TAG_ENV its processes carry), `proc` (the run process),
    `state_dir` and `seen` (pid -> create_time of every stack process noted so far).
    """

    tag: str
    proc: subprocess.Popen[bytes] | None
    state_dir: Path
    seen: dict[int, float]

    def instance(self) -> str | None:
        """The installation id the workers put next to the session marker, if they do."""
        try:
            from wire.names import instance_id
        except ImportError:
            return None
        return instance_id(str(self.state_dir))

    def tagged(self) -> list[psutil.Process]:
        """Every live process of this stack: it carries our tag (the run process, the bot, the
        workers, the CLIs and their tools inherit it), or a session marker of this installation
        (in case something dropped the tag on the way)."""
        instance = self.instance()
        found = []
        for p in psutil.process_iter(["pid"]):
            if p.pid == os.getpid():
                continue
            env = proc_env(p)
            if env.get(TAG_ENV) == self.tag or (
                    instance and env.get(MARKER_ENV) and env.get(INSTANCE_ENV) == instance):
                found.append(p)
        return found

    def clis(self, session: str | None = None) -> list[psutil.Process]:
        """Processes with a session marker (the CLI and its tools), of one session or all."""
        out = []
        for p in self.tagged():
            marker = proc_env(p).get(MARKER_ENV)
            if marker and (session is None or marker == session):
                out.append(p)
        return out

    def cli_roots(self) -> list[psutil.Process]:
        """The CLI processes themselves: marked, and the parent is not marked."""
        marked = {p.pid: p for p in self.clis()}
        roots = []
        for p in marked.values():
            try:
                if p.ppid() not in marked:
                    roots.append(p)
            except psutil.NoSuchProcess:
                pass
        return roots

    def note_processes(self) -> None:
        procs = self.tagged()
        if self.proc is not None:
            try:
                procs.append(psutil.Process(self.proc.pid))
                procs += psutil.Process(self.proc.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                pass
        for p in procs:
            try:
                self.seen.setdefault(p.pid, p.create_time())
            except psutil.NoSuchProcess:
                pass

    def zombies(self) -> list[str]:
        """Zombies among the stack's processes (children of the run process, or pids we saw)."""
        out = []
        candidates: list[psutil.Process] = []
        if self.proc is not None and self.proc.poll() is None:
            try:
                candidates += psutil.Process(self.proc.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                pass
        for pid, created in self.seen.items():
            try:
                p = psutil.Process(pid)
                if abs(p.create_time() - created) < 0.05:
                    candidates.append(p)
            except psutil.NoSuchProcess:
                pass
        for p in {c.pid: c for c in candidates}.values():
            try:
                if p.status() == psutil.STATUS_ZOMBIE:
                    out.append(describe(p))
            except psutil.NoSuchProcess:
                pass
        return out

    def leftovers(self, wait: float = 5.0) -> list[str]:
        """What is still there after the run process exited (waits up to `wait` for it to go)."""
        deadline = time.monotonic() + wait
        while True:
            problems = [f"tagged process left: {describe(p)}" for p in self.tagged()]
            if self.proc is not None and self.proc.poll() is None:
                try:
                    problems += [f"child of run left: {describe(c)}"
                                 for c in psutil.Process(self.proc.pid).children(recursive=True)]
                except psutil.NoSuchProcess:
                    pass
            problems += [f"zombie: {z}" for z in self.zombies()]
            if not problems or time.monotonic() >= deadline:
                return sorted(set(problems))
            time.sleep(GONE_STEP)

    def kill_leftovers(self) -> None:
        for p in self.tagged():
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
