"""Where a session works: the check of the config's projects, and a new session's place.

`problems` is the one check of `[projects.NAME]` on disk (the path exists, is a directory, lies
outside the state dir; a worktrees project is a git repository; its persona exists): `run`,
`check-config` and a SIGHUP reload refuse through it (supervisor.preflight), `doctor` reports it.
`place` decides a new session's directory once, at `/new`: the project's directory, a new git
worktree of it under `<state_dir>/worktrees/<project>/<session>`, a directory the owner named
(`switchboardctl new --dir`), or None for its private `work/`. The answer is stored in the
session's registry record, so a session's cwd never changes afterwards (`--resume` finds a
conversation only in the cwd it was made in). `release` is `/remove`'s side: a worktree that
would lose nothing is removed, any other is kept and said so. Nothing here deletes a directory
the user made.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from supervisor import worktrees
from supervisor.config import Config, ProjectConfig
from wire.messages import Persona

WORKTREES_DIR = "worktrees"


class PlaceError(Exception):
    """A session that cannot be placed; str() is one sentence naming the field or the name."""


@dataclass(frozen=True)
class Place:
    """Where a session's CLI runs, as its registry record keeps it."""

    project: str | None = None
    work_dir: str | None = None  # None: <state_dir>/sessions/<name>/work
    worktree: str | None = None  # the git worktree made for it (removed with it when clean)
    branch: str | None = None
    repo: str | None = None  # the repository's top level, for `git worktree remove`
    writable: list[str] = field(default_factory=list)  # more dirs its tools may write (.git)


def _inside(path: str, root: str) -> bool:
    path, root = os.path.realpath(path), os.path.realpath(root)
    return path == root or path.startswith(root.rstrip("/") + "/")


def dir_problem(where: str, path: str, cfg: Config) -> str | None:
    """Why `path` cannot be a session's directory (a sentence that starts with `where`)."""
    p = Path(path)
    if not p.exists():
        return f"{where} {path} does not exist: create it or correct the path"
    if not p.is_dir():
        return f"{where} {path} is not a directory: name a directory"
    for field_name in ("state_dir", "runtime_dir"):
        if _inside(path, getattr(cfg, field_name)):
            return (f"{where} {path} is inside {field_name}, which is Switchboard's own: name a"
                    " directory outside it")
    return None


def project_problems(name: str, project: ProjectConfig, cfg: Config,
                     personas: dict[str, Persona]) -> list[str]:
    where = f"projects.{name}"
    problem = dir_problem(f"{where}.path", project.path, cfg)
    out = [problem] if problem else []
    if project.persona is not None and project.persona not in personas:
        out.append(f"{where}.persona '{project.persona}' is not a persona in {cfg.personas_dir}"
                   f" (there: {', '.join(sorted(personas))})")
    if project.worktrees and not problem:
        try:
            repo = worktrees.repo_of(project.path)
        except worktrees.GitError as exc:
            out.append(f"{where}.worktrees: {exc}")
        else:
            if repo is None:
                out.append(f"{where}.worktrees = true needs a git repository, and {project.path}"
                           " is not in one: run `git init` there or set worktrees = false")
    return out


def problems(cfg: Config, personas: dict[str, Persona]) -> list[str]:
    """Every project's problems, one sentence each naming its field."""
    return [p for name, project in sorted(cfg.projects.items())
            for p in project_problems(name, project, cfg, personas)]


def worktree_path(state_dir: str, project: str, session: str) -> Path:
    return Path(state_dir) / WORKTREES_DIR / project / session


def _git_writable(path: str) -> list[str]:
    """The repository's shared .git dir when `path` is in one outside it (a commit writes there)."""
    try:
        repo = worktrees.repo_of(path)
    except worktrees.GitError:
        return []
    if repo is None or _inside(repo.common_dir, path):
        return []
    return [repo.common_dir]


def persona_for(cfg: Config, project: str | None) -> str | None:
    """The persona a project gives its sessions, if it names one."""
    return cfg.projects[project].persona if project in cfg.projects else None


def place(cfg: Config, personas: dict[str, Persona], session: str, project: str | None,
          work_dir: str | None) -> Place:
    """A new session's place (see the module docstring); PlaceError when it cannot have it.
    Only a worktree is created, and only after every check passed."""
    if project and work_dir:
        raise PlaceError("a session works in a project or in a directory, not both: give"
                         " --project or --dir.")
    if work_dir:
        path = os.path.abspath(os.path.expanduser(work_dir))
        if problem := dir_problem("the directory", path, cfg):
            raise PlaceError(problem + ".")
        return Place(work_dir=path, writable=_git_writable(path))
    if not project:
        return Place()
    known = cfg.projects.get(project)
    if known is None:
        have = ", ".join(sorted(cfg.projects)) or "none"
        raise PlaceError(f"no project '{project}' in the config (configured: {have}): add a"
                         f" [projects.{project}] table and reload, or pick a configured one.")
    found = project_problems(project, known, cfg, personas)
    if found:
        raise PlaceError(found[0] + ".")
    path = os.path.abspath(known.path)
    if not known.worktrees:
        return Place(project=project, work_dir=path, writable=_git_writable(path))
    where = worktree_path(cfg.state_dir, project, session)
    if where.exists():
        raise PlaceError(f"{where} is still there (a worktree kept from an earlier session"
                         f" {session}): commit or remove it, or pick another session name.")
    try:
        repo = worktrees.repo_of(path)
        if repo is None:
            raise PlaceError(f"projects.{project}.path {path} is no longer a git repository:"
                             " correct the path or set worktrees = false.")
        worktrees.add(repo, where, session)
    except worktrees.GitError as exc:
        raise PlaceError(str(exc)) from None
    return Place(project=project, work_dir=os.path.normpath(str(where / repo.subdir)),
                 worktree=str(where), branch=session, repo=repo.top,
                 writable=[repo.common_dir])


def release(place: Place) -> str:
    """At `/remove`: remove the session's worktree if it would lose nothing. The sentence for
    the user: what was removed, or where the kept worktree is and why ("" when it had none)."""
    if not place.worktree or not place.repo or not place.branch:
        return ""
    where = Path(place.worktree)
    try:
        if not where.exists():
            worktrees.prune(place.repo)
            return ""
        reason = worktrees.keep_reason(where, place.branch)
        if reason is not None:
            return (f"Its worktree {where} (branch {place.branch}) was kept because {reason}:"
                    f" commit and push or merge what you need, then `git worktree remove"
                    f" {where}`.")
        worktrees.remove(place.repo, where, place.branch)
    except worktrees.GitError as exc:
        return f"Its worktree {where} was kept: {exc}"
    try:
        where.parent.rmdir()  # the project's folder under worktrees/, once it is empty
    except OSError:
        pass
    return f"Its worktree {where} was removed."
