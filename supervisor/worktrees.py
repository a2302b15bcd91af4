"""The git side of projects: is a directory a repository, make a session's worktree, and judge
whether removing it would lose anything.

Each function runs `git` with a bounded timeout and turns a failure into one sentence
(`GitError`). A worktree is only ever removed through `git worktree remove` after `keep_reason`
found nothing to lose (no uncommitted or untracked file, no commit that is on no other branch,
tag or remote), so the user's work is never deleted; its branch goes with it only then, since
every commit of it is on another ref.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

GIT_TIMEOUT = 30.0


class GitError(Exception):
    """A git operation that did not work; str() is one sentence for the user."""


@dataclass(frozen=True)
class Repo:
    """Where a directory sits in its repository."""

    top: str  # the work tree's top level
    common_dir: str  # the .git dir every worktree of it shares (objects, refs)
    subdir: str  # the directory relative to `top` ("." at the top)


def _git(args: list[str], cwd: str) -> subprocess.CompletedProcess[str]:
    git = shutil.which("git")
    if git is None:
        raise GitError("git is not installed: install it (apt-get install git) to use"
                       " worktrees = true.")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env["GIT_TERMINAL_PROMPT"] = "0"
    try:
        return subprocess.run([git, *args], cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=GIT_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise GitError(f"git {args[0]} in {cwd} took over {GIT_TIMEOUT:.0f} s: check the"
                       " repository and try again.") from None
    except OSError as exc:
        raise GitError(f"git could not run in {cwd} ({exc.strerror}): check the"
                       " directory.") from None


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return (lines[-1] if lines else "no output").removeprefix("fatal: ")


def repo_of(path: str) -> Repo | None:
    """The repository `path` is in, or None when it is in none."""
    done = _git(["rev-parse", "--path-format=absolute", "--show-toplevel", "--git-common-dir"],
                path)
    if done.returncode != 0:
        return None
    lines = done.stdout.strip().splitlines()
    if len(lines) != 2:
        return None
    top, common = lines
    real = os.path.realpath(path)
    return Repo(top=top, common_dir=common, subdir=os.path.relpath(real, os.path.realpath(top)))


def branch_exists(top: str, branch: str) -> bool:
    return _git(["rev-parse", "--verify", "--quiet", f"refs/heads/{branch}"],
                top).returncode == 0


def add(repo: Repo, where: Path, branch: str) -> None:
    """A new worktree at `where` on a new branch `branch` from the repository's HEAD."""
    if branch_exists(repo.top, branch):
        raise GitError(f"the repository {repo.top} already has a branch '{branch}': pick"
                       " another session name, or delete that branch.")
    if _git(["rev-parse", "--verify", "--quiet", "HEAD"], repo.top).returncode != 0:
        raise GitError(f"the repository {repo.top} has no commit yet, so there is nothing to"
                       " make a worktree of: commit once, then create the session again.")
    where.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    done = _git(["worktree", "add", "-b", branch, str(where), "HEAD"], repo.top)
    if done.returncode != 0:
        raise GitError(f"git could not make a worktree of {repo.top} at {where}"
                       f" ({_last_line(done.stderr)}): fix that, then create the session"
                       " again.")


def keep_reason(where: Path, branch: str) -> str | None:
    """Why the worktree at `where` must not be removed (in words), or None when nothing in it
    would be lost."""
    status = _git(["status", "--porcelain", "--untracked-files=normal"], str(where))
    if status.returncode != 0:
        return f"git cannot read it ({_last_line(status.stderr)})"
    changed = [ln for ln in status.stdout.splitlines() if ln.strip()]
    if changed:
        n = len(changed)
        return f"it has uncommitted changes ({n} file{'s' if n != 1 else ''})"
    ours = f"refs/heads/{branch}"
    heads = ["HEAD"] + ([ours] if branch_exists(str(where), branch) else [])
    for head in heads:
        # --exclude takes the name without refs/heads/ for --branches, and only that one.
        only_here = _git(["rev-list", "--count", head, "--not", f"--exclude={branch}",
                          "--branches", "--tags", "--remotes"], str(where))
        if only_here.returncode != 0:
            return f"git cannot read its commits ({_last_line(only_here.stderr)})"
        count = int(only_here.stdout.strip() or "0")
        if count:
            return (f"it has {count} unpushed commit{'s' if count != 1 else ''} (on no other"
                    " branch, tag or upstream)")
    return None


def remove(top: str, where: Path, branch: str) -> None:
    """Remove a worktree `keep_reason` cleared, and its branch (whose commits are elsewhere)."""
    done = _git(["worktree", "remove", str(where)], top)
    if done.returncode != 0:
        raise GitError(f"git would not remove the worktree {where} ({_last_line(done.stderr)}):"
                       f" remove it by hand with `git worktree remove {where}`.")
    if branch_exists(top, branch):
        _git(["branch", "-D", branch], top)


def prune(top: str) -> None:
    """Forget worktrees whose directory is gone (a user removed one by hand)."""
    _git(["worktree", "prune"], top)
