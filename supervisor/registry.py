"""The persistent set of sessions and whether each should run: <state_dir>/sessions.json.

A restart of the supervisor brings back exactly the sessions marked `autostart`, each in the
place it was given at creation (its project, directory and worktree: supervisor.projects). Written
atomically (temp file, fsync, rename, fsync of the directory) after every change, so a kill at
any moment leaves either the old or the new file, never half of one.
"""
from __future__ import annotations

import time
from pathlib import Path

import msgspec

from supervisor.projects import Place
from wire.files import atomic_write


class SessionRecord(msgspec.Struct, kw_only=True):
    name: str
    persona: str
    autostart: bool = True
    created: float = 0.0
    # Where its CLI runs, fixed at creation (supervisor.projects.Place); none: its private work/.
    project: str | None = None
    work_dir: str | None = None
    worktree: str | None = None
    branch: str | None = None
    repo: str | None = None
    writable: list[str] = []

    def place(self) -> Place:
        return Place(project=self.project, work_dir=self.work_dir, worktree=self.worktree,
                     branch=self.branch, repo=self.repo, writable=list(self.writable))


class _File(msgspec.Struct, kw_only=True):
    version: int = 1
    sessions: list[SessionRecord] = []


class RegistryError(RuntimeError):
    pass


class Registry:
    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "sessions.json"
        self.sessions: dict[str, SessionRecord] = {}

    def load(self) -> None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            self.sessions = {}
            return
        try:
            data = msgspec.json.decode(raw, type=_File)
        except msgspec.DecodeError as exc:
            raise RegistryError(
                f"{self.path} is damaged ({exc}): fix or move it away, then start again."
            ) from None
        self.sessions = {r.name: r for r in data.sessions}

    def save(self) -> None:
        data = _File(sessions=sorted(self.sessions.values(), key=lambda r: r.name))
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write(self.path, msgspec.json.format(msgspec.json.encode(data)) + b"\n")

    def add(self, name: str, persona: str, place: Place | None = None) -> SessionRecord:
        where = place or Place()
        rec = SessionRecord(name=name, persona=persona, autostart=True, created=time.time(),
                            project=where.project, work_dir=where.work_dir,
                            worktree=where.worktree, branch=where.branch, repo=where.repo,
                            writable=list(where.writable))
        self.sessions[name] = rec
        self.save()
        return rec

    def remove(self, name: str) -> None:
        if self.sessions.pop(name, None) is not None:
            self.save()

    def set_autostart(self, name: str, value: bool) -> None:
        rec = self.sessions.get(name)
        if rec is not None and rec.autostart != value:
            rec.autostart = value
            self.save()

    def set_persona(self, name: str, persona: str) -> None:
        rec = self.sessions.get(name)
        if rec is not None and rec.persona != persona:
            rec.persona = persona
            self.save()
