"""Projects' pure parts: the `[projects.NAME]` tables, `/new`'s arguments, the fence of a
project or worktree session, the registry record that keeps a session's place across restarts,
what `status -l`, `/sessions` and `/projects` print, and the requests refused before any disk
is touched."""
from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bot import render
from bot.commands import parse_new
from session_worker.fence import Fence, sandbox_settings, tool_rules
from supervisor import config
from supervisor.commands import Commands
from supervisor.ctl import detail_line
from supervisor.projects import Place
from supervisor.registry import Registry
from wire import messages as m

pytestmark = pytest.mark.timeout(5)


def test_a_project_table_is_read_with_its_path_resolved_like_every_path(tmp_path: Path) -> None:
    cfg = config.parse('[projects.web]\npath = "code/web"\npersona = "planner"\n'
                       'worktrees = true\n[projects.home]\npath = "~/notes"\n',
                       str(tmp_path / "sb.toml"), base_dir=tmp_path)
    assert cfg.projects["web"] == config.ProjectConfig(path=str(tmp_path / "code/web"),
                                                       persona="planner", worktrees=True)
    assert cfg.projects["home"].path == str(Path("~/notes").expanduser())
    assert cfg.projects["home"].worktrees is False and cfg.projects["home"].persona is None
    assert config.parse("").projects == {}


@pytest.mark.parametrize(("text", "fragment"), [
    ('[projects.web]\npersona = "x"\n', "projects.web.path is missing"),
    ('[projects.web]\npath = ""\n', "projects.web.path is missing"),
    ('[projects.web]\npath = "p"\nbranch = "x"\n', "projects.web.branch is not a known field"),
    ('[projects.web]\npath = "p"\nworktrees = "yes"\n', "projects.web.worktrees must be true or"),
    ('[projects.Web]\npath = "p"\n', "[projects.Web]: a project name is 1-32 characters"),
    ('projects = 3\n', "[projects] must hold one [projects.NAME] table"),
    ('[projects]\nweb = 3\n', "[projects.web] must be a table"),
])
def test_a_bad_project_table_is_named_by_its_field(text: str, fragment: str) -> None:
    with pytest.raises(config.ConfigError) as err:
        config.parse(text)
    assert any(fragment in p for p in err.value.problems), err.value.problems


@pytest.mark.parametrize(("args", "parsed"), [
    (["api"], ("api", None, None)),
    (["api", "planner"], ("api", "planner", None)),
    (["api", "@web"], ("api", None, "web")),
    (["api", "planner", "@web"], ("api", "planner", "web")),
    (["api", "@web", "planner"], ("api", "planner", "web")),
    ([], None),
    (["api", "@"], None),
    (["api", "@a", "@b"], None),
    (["api", "p", "q"], None),
    (["api", "p", "@w", "x"], None),
])
def test_new_takes_a_name_a_persona_and_an_at_project(
        args: list[str], parsed: tuple[str, str | None, str | None] | None) -> None:
    assert parse_new(args) == parsed


def test_a_worktree_session_may_write_its_repositorys_git_dir_and_not_other_worktrees() -> None:
    fence = Fence("/s", "/r", "/s/worktrees/web/ab", "/c/sb.toml", None, ("ab", "cd"),
                  ("/code/web/.git", "/s/sneaky", "/r/x"))
    settings: Any = sandbox_settings(fence)
    fs = settings["sandbox"]["filesystem"]
    assert fs["allowWrite"] == ["/code/web/.git"], "never inside the state or runtime dir"
    assert fs["allowRead"] == ["/s/worktrees/web/ab"] and "/s" in fs["denyRead"]
    assert "/s" not in fs["denyWrite"]
    rules = tool_rules(fence)
    assert "Read(//s/worktrees/*/cd/**)" in rules and "Edit(//s/sessions/cd/**)" in rules
    assert not any("worktrees/*/ab" in r for r in rules), rules
    assert "Read(//s/*.*)" in rules and "Read(//s/**)" not in rules


def test_a_project_dir_outside_the_state_dir_keeps_all_of_it_denied() -> None:
    settings: Any = sandbox_settings(Fence("/s", "/r", "/code/notes"))
    fs = settings["sandbox"]["filesystem"]
    assert fs["denyRead"] == fs["denyWrite"] == ["/s", "/r"]
    assert "allowWrite" not in fs and "allowRead" not in fs


def test_a_project_session_may_read_its_own_uploads_and_nothing_else_of_the_state_dir() -> None:
    fence = Fence("/s", "/r", "/code/notes", None, None, ("ab", "cd"),
                  readable=("/s/sessions/ab/work/uploads",))
    settings: Any = sandbox_settings(fence)
    fs = settings["sandbox"]["filesystem"]
    assert fs["allowRead"] == ["/s/sessions/ab/work/uploads"]
    assert fs["denyWrite"] == ["/s", "/r"], "read, never written from Bash"
    rules = tool_rules(fence)
    assert "Read(//s/**)" not in rules and "Read(//s/sessions/cd/**)" in rules
    assert "Read(//s/sessions/*/*.*)" in rules and "Read(//s/*.*)" in rules
    assert not any("sessions/ab" in r for r in rules), rules
    assert "Edit(//s/**)" in rules and "Write(//s/**)" in rules, "its tools write none of it"


def test_a_sessions_place_survives_the_registry_file(tmp_path: Path) -> None:
    place = Place(project="web", work_dir="/st/worktrees/web/a", worktree="/st/worktrees/web/a",
                  branch="a", repo="/code/web", writable=["/code/web/.git"])
    reg = Registry(tmp_path)
    reg.add("a", "default", place)
    reg.add("b", "planner")
    again = Registry(tmp_path)
    again.load()
    assert again.sessions["a"].place() == place
    assert again.sessions["b"].place() == Place()
    (tmp_path / "sessions.json").write_text(
        '{"version": 1, "sessions": [{"name": "old", "persona": "default"}]}')
    again.load()
    assert again.sessions["old"].place() == Place(), "a file from before projects still loads"


def test_status_long_and_sessions_show_the_project_and_the_dir() -> None:
    r = m.ProgramStatus(name="session:a", state="RUNNING", persona="default", project="web",
                        work_dir="/st/worktrees/web/a")
    assert detail_line(r).endswith(" project=web dir=/st/worktrees/web/a")
    plain = m.ProgramStatus(name="session:b", state="STOPPED", work_dir="/st/sessions/b/work")
    assert detail_line(plain).endswith(" project=- dir=/st/sessions/b/work")
    assert "dir=" not in detail_line(m.ProgramStatus(name="bot", state="RUNNING"))
    text = render.sessions_text([r, plain], "a")
    assert "· project web · dir /st/worktrees/web/a" in text.splitlines()[0]
    assert "project" not in text.splitlines()[1] and "dir /st/sessions/b/work" in text


def test_projects_lists_each_with_its_sessions_or_says_how_to_add_one() -> None:
    text = render.projects_text([
        m.ProjectInfo(name="notes", path="/n", sessions=[]),
        m.ProjectInfo(name="web", path="/w", persona="planner", worktrees=True,
                      sessions=["a", "b"])])
    assert text.splitlines() == [
        "• notes — /n · sessions: none",
        "• web — /w · a git worktree per session · persona planner · sessions: a, b",
        "Start a session in one with /new NAME @PROJECT."]
    assert "[projects.NAME]" in render.projects_text([])


def _commands(tmp_path: Path) -> Commands:
    cfg = config.parse(f'state_dir = "{tmp_path}"\n[projects.web]\npath = "{tmp_path}/nowhere"\n')
    sup: Any = SimpleNamespace(programs={}, registry=SimpleNamespace(sessions={}), cfg=cfg,
                               personas={"default": SimpleNamespace(name="default")})
    return Commands(sup)


@pytest.mark.parametrize(("identity", "msg", "words"), [
    (b"bot", m.NewSession(id="1", name="a", work_dir="/tmp"), "only the owner at the terminal"),
    (b"owner", m.NewSession(id="2", name="a", project="nope"), "no project 'nope' in the config"
     " (configured: web): add a [projects.nope] table and reload, or pick a configured one."),
    (b"bot", m.NewSession(id="3", name="a", project="web"), "projects.web.path"),
    (b"owner", m.NewSession(id="4", name="a", project="web", work_dir="/tmp"), "not both"),
])
def test_a_new_session_that_cannot_be_placed_is_refused_and_nothing_is_made(
        tmp_path: Path, identity: bytes, msg: m.NewSession, words: str) -> None:
    commands = _commands(tmp_path)
    reply = asyncio.run(commands.handle(identity, msg))
    assert isinstance(reply, m.Error) and words in reply.message, reply
    assert commands.sup.registry.sessions == {} and list(tmp_path.iterdir()) == []


def test_a_second_new_of_a_name_whose_worktree_is_being_made_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from supervisor import projects

    release = threading.Event()

    def slow_place(*args: Any) -> Place:
        release.wait(5)
        raise projects.PlaceError("made up: the first one failed.")

    monkeypatch.setattr(projects, "place", slow_place)
    commands = _commands(tmp_path)

    async def both() -> tuple[m.Ok | m.Error | None, m.Ok | m.Error | None]:
        first = asyncio.create_task(commands.handle(b"owner", m.NewSession(id="1", name="a")))
        while "a" not in commands.placing:
            await asyncio.sleep(0.01)
        second = await commands.handle(b"owner", m.NewSession(id="2", name="a"))
        release.set()
        return await first, second

    first, second = asyncio.run(both())
    assert isinstance(second, m.Error) and second.code == m.E_EXISTS, second
    assert isinstance(first, m.Error) and first.message == "made up: the first one failed."
    assert commands.placing == set()
