"""Where a new session works, and what `/remove` does to its worktree, with real git in temp
repositories (supervisor.projects, supervisor.worktrees).

A worktree is removed only when nothing in it would be lost: each way of having something to
lose (a changed file, an untracked one, a commit on no other branch, a detached commit) keeps
it, with a sentence that says where and why; a commit that is also on another branch does not.
Every refusal creates nothing.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from supervisor import config, preflight, projects
from wire.messages import Persona

pytestmark = pytest.mark.timeout(60)

PERSONAS = {"default": Persona(name="default"), "planner": Persona(name="planner")}


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t",
                           *args], capture_output=True, text=True, timeout=30, check=True)
    return done.stdout


def make_repo(path: Path, commit: bool = True) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    if commit:
        (path / "README").write_text("hello\n")
        git(path, "add", "README")
        git(path, "commit", "-qm", "first")
    return path


def cfg_for(tmp: Path, projects_toml: str) -> config.Config:
    (tmp / "state").mkdir(exist_ok=True)
    return config.parse(f'state_dir = "{tmp / "state"}"\n{projects_toml}', str(tmp / "x.toml"),
                        base_dir=tmp)


@pytest.fixture
def web(tmp_path: Path) -> tuple[config.Config, Path]:
    repo = make_repo(tmp_path / "web")
    return cfg_for(tmp_path, '[projects.web]\npath = "web"\nworktrees = true\n'), repo


def test_two_sessions_get_two_worktrees_on_their_own_branches(
        web: tuple[config.Config, Path]) -> None:
    cfg, repo = web
    a = projects.place(cfg, PERSONAS, "a", "web", None)
    b = projects.place(cfg, PERSONAS, "b", "web", None)
    assert a.work_dir == str(Path(cfg.state_dir) / "worktrees" / "web" / "a") == a.worktree
    assert a.work_dir != b.work_dir and a.repo == b.repo == str(repo)
    assert a.writable == [str(repo / ".git")] and (a.branch, b.branch) == ("a", "b")
    listed = git(repo, "worktree", "list", "--porcelain")
    assert "branch refs/heads/a" in listed and "branch refs/heads/b" in listed
    assert (Path(b.work_dir) / "README").read_text() == "hello\n"


def test_a_subdirectory_project_works_in_the_same_subdirectory_of_its_worktree(
        tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "mono")
    (repo / "app").mkdir()
    (repo / "app" / "main.py").write_text("print(1)\n")
    git(repo, "add", "app")
    git(repo, "commit", "-qm", "app")
    cfg = cfg_for(tmp_path, '[projects.app]\npath = "mono/app"\nworktrees = true\n')
    got = projects.place(cfg, PERSONAS, "s", "app", None)
    assert got.work_dir == str(Path(cfg.state_dir) / "worktrees" / "app" / "s" / "app")
    assert (Path(got.work_dir) / "main.py").exists()


@pytest.mark.parametrize(("change", "why"), [
    ("edit", "uncommitted changes (1 file)"),
    ("untracked", "uncommitted changes (1 file)"),
    ("commit", "1 unpushed commit (on no other branch, tag or upstream)"),
    ("detached", "1 unpushed commit"),
])
def test_a_worktree_with_something_to_lose_is_kept_and_said_why(
        web: tuple[config.Config, Path], change: str, why: str) -> None:
    cfg, repo = web
    place = projects.place(cfg, PERSONAS, "s", "web", None)
    tree = Path(place.work_dir or "")
    if change == "edit":
        (tree / "README").write_text("changed\n")
    elif change == "untracked":
        (tree / "new.txt").write_text("new\n")
    else:
        if change == "detached":
            git(tree, "checkout", "-q", "--detach")
        (tree / "new.txt").write_text("new\n")
        git(tree, "add", "new.txt")
        git(tree, "commit", "-qm", "work")
    said = projects.release(place)
    assert said.startswith(f"Its worktree {tree} (branch s) was kept because it has {why}"), said
    assert f"git worktree remove {tree}" in said
    assert tree.is_dir() and "s" in git(repo, "branch", "--format=%(refname:short)").split()


def test_a_clean_worktree_goes_with_its_branch_even_after_a_commit_merged_elsewhere(
        web: tuple[config.Config, Path]) -> None:
    cfg, repo = web
    place = projects.place(cfg, PERSONAS, "s", "web", None)
    tree = Path(place.work_dir or "")
    (tree / "new.txt").write_text("new\n")
    git(tree, "add", "new.txt")
    git(tree, "commit", "-qm", "work")
    git(repo, "merge", "-q", "--ff-only", "s")  # the commit is on main too: nothing is lost
    assert projects.release(place) == f"Its worktree {tree} was removed."
    assert not tree.exists() and not tree.parent.exists()
    assert git(repo, "branch", "--format=%(refname:short)").split() == ["main"]
    assert (repo / "new.txt").exists(), "the user's checkout keeps the merged work"


def test_a_worktree_the_user_removed_by_hand_is_forgotten(web: tuple[config.Config, Path]) -> None:
    cfg, repo = web
    place = projects.place(cfg, PERSONAS, "s", "web", None)
    git(repo, "worktree", "remove", place.worktree or "")
    assert projects.release(place) == ""
    assert projects.release(projects.Place(project="web", work_dir=str(repo))) == ""


def test_refusals_name_the_field_or_the_name_and_create_nothing(
        web: tuple[config.Config, Path], tmp_path: Path) -> None:
    cfg, repo = web
    git(repo, "branch", "taken")
    empty = make_repo(tmp_path / "empty", commit=False)
    cfg.projects["empty"] = config.ProjectConfig(path=str(empty), worktrees=True)
    (tmp_path / "file").write_text("x")
    cases = [
        ("s", "nope", None, "no project 'nope' in the config (configured: empty, web)"),
        ("s", "web", str(tmp_path), "not both"),
        ("s", None, str(tmp_path / "missing"), f"the directory {tmp_path / 'missing'} does not"
         " exist"),
        ("s", None, str(tmp_path / "file"), "is not a directory"),
        ("s", None, cfg.state_dir, "is inside state_dir"),
        ("taken", "web", None, "already has a branch 'taken'"),
        ("s", "empty", None, "has no commit yet"),
    ]
    for session, project, work_dir, words in cases:
        with pytest.raises(projects.PlaceError) as err:
            projects.place(cfg, PERSONAS, session, project, work_dir)
        assert words in str(err.value), (project, work_dir, str(err.value))
        assert str(err.value).count(". ") == 0 and str(err.value).endswith("."), str(err.value)
    assert not (Path(cfg.state_dir) / "worktrees").exists()
    assert git(repo, "worktree", "list").count("\n") == 1


def test_a_plain_project_and_any_directory_are_used_as_they_are(tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    cfg = cfg_for(tmp_path, '[projects.notes]\npath = "notes"\npersona = "planner"\n')
    got = projects.place(cfg, PERSONAS, "s", "notes", None)
    assert (got.project, got.work_dir, got.worktree, got.writable) == (
        "notes", str(tmp_path / "notes"), None, [])
    assert projects.persona_for(cfg, "notes") == "planner"
    assert projects.place(cfg, PERSONAS, "s", None, None) == projects.Place()
    sub = make_repo(tmp_path / "repo") / "sub"
    sub.mkdir()
    got = projects.place(cfg, PERSONAS, "s", None, str(sub))
    assert got.work_dir == str(sub) and got.writable == [str(tmp_path / "repo" / ".git")]


def test_run_check_config_and_reload_refuse_a_bad_project_naming_its_field(
        tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    (tmp_path / "file").write_text("x")
    path = tmp_path / "switchboard.toml"
    path.write_text(f'state_dir = "{tmp_path / "state"}"\n[telegram]\nenabled = false\n'
                    '[projects.plain]\npath = "plain"\nworktrees = true\npersona = "ghost"\n'
                    '[projects.gone]\npath = "nowhere"\n[projects.file]\npath = "file"\n')
    with pytest.raises(preflight.Refused) as err:
        preflight.load(path, to_run=True)
    report = err.value.report()
    assert "projects.plain.worktrees = true needs a git repository" in report
    assert "projects.plain.persona 'ghost' is not a persona" in report
    assert f"projects.gone.path {tmp_path / 'nowhere'} does not exist" in report
    assert f"projects.file.path {tmp_path / 'file'} is not a directory" in report
    make_repo(tmp_path / "plain" / "r")
    path.write_text(f'state_dir = "{tmp_path / "state"}"\n[telegram]\nenabled = false\n'
                    '[projects.r]\npath = "plain/r"\nworktrees = true\n')
    cfg, _ = preflight.load(path, to_run=True)
    assert cfg.projects["r"].path == str(tmp_path / "plain" / "r")


def test_doctor_reports_the_projects_with_the_same_sentences(tmp_path: Path) -> None:
    from supervisor import doctor

    (tmp_path / "plain").mkdir()
    cfg = cfg_for(tmp_path, '[projects.plain]\npath = "plain"\n[projects.gone]\npath = "gone"\n')
    check = doctor.check_projects(cfg)
    assert check is not None and check.status == doctor.FAIL
    assert check.detail == f"projects.gone.path {tmp_path / 'gone'} does not exist: create it or" \
        " correct the path"
    del cfg.projects["gone"]
    check = doctor.check_projects(cfg)
    assert check is not None and check.status == doctor.OK
    assert check.detail == f"plain ({tmp_path / 'plain'})"
    assert doctor.check_projects(cfg_for(tmp_path, "")) is None


def test_a_worker_whose_directory_is_gone_says_so_and_makes_nothing(
        tmp_path: Path, claude_bin: str) -> None:
    from tests.support.worker import WorkerHarness

    gone = tmp_path / "project-gone"
    with WorkerHarness(tmp_path / "state", claude_bin, {}, work_dir=str(gone)) as w:
        w.start(wait_hello=False)
        assert w.proc is not None and w.proc.wait(15) == 2
        assert (f"the session's directory {gone} is gone: restore it, or remove the session and"
                " create it again.") in w.log_path.read_text()
    assert not gone.exists()
