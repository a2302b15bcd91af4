"""The supervisor's refusals: every handler raises one `Refusal`, `Commands.handle` answers it.

A stand-in for the supervisor (no programs, two personas) is enough: every case here is refused
or answered before anything would be started.
"""
from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from supervisor.commands import Commands, delete_session_dir
from wire import messages as m


def _commands(sessions: dict[str, Any] | None = None,
              max_sessions: int = 50) -> tuple[Commands, list[str]]:
    shutdowns: list[str] = []
    sup: Any = SimpleNamespace(
        programs={}, personas={n: SimpleNamespace(name=n, description="") for n in
                               ("default", "research")},
        registry=SimpleNamespace(sessions=sessions or {}), cfg=SimpleNamespace(
            claude=SimpleNamespace(default_persona="default"),
            supervisor=SimpleNamespace(max_sessions=max_sessions)),
        request_shutdown=shutdowns.append, on_pong=lambda identity, pong: None, sweeps=0)
    return Commands(sup), shutdowns


def _reply(msg: m.Msg) -> m.Ok | m.Error | None:
    commands, _ = _commands()
    return asyncio.run(commands.handle(b"ctl", msg))


@pytest.mark.timeout(5)
@pytest.mark.parametrize(("msg", "code", "sentence"), [
    (m.Status(id="r1", names=["Bad*Name"]), m.E_INVALID_NAME, "not a valid"),
    (m.Status(id="r2", names=["ghost"]), m.E_UNKNOWN_NAME,
     "no such program 'ghost': see `switchboardctl status`."),
    (m.Stop(id="r3", names=["ghost"]), m.E_UNKNOWN_NAME, "no such program 'ghost'"),
    (m.NewSession(id="r4", name="../x"), m.E_INVALID_NAME, "not a valid"),
    (m.NewSession(id="r5", name="x", persona="nope"), m.E_UNKNOWN_PERSONA,
     "no persona 'nope' (known: default, research): add personas/nope.json and send SIGHUP,"
     " or pick a known one."),
    (m.RemoveSession(id="r6", name="ghost"), m.E_UNKNOWN_NAME,
     "no session 'ghost': see `switchboardctl status`."),
    (m.SetPersona(id="r7", name="ghost", persona="default"), m.E_UNKNOWN_NAME,
     "no session 'ghost'"),
    (m.EnsureRunning(id="r8", name="session:ghost"), m.E_UNKNOWN_NAME,
     "no session 'ghost': create it with /new ghost."),
    (m.Pong(id="r9"), None, None),
    (m.NewSession(id="r10", name="all"), m.E_INVALID_NAME, "'all' is a reserved word"),
    (m.NewSession(id="r11", name="bot"), m.E_INVALID_NAME, "'bot' is a reserved word"),
])
def test_a_refusal_is_one_error_that_echoes_the_id(msg: m.Msg, code: str | None,
                                                   sentence: str | None) -> None:
    reply = _reply(msg)
    if code is None:
        assert reply is None
        return
    assert isinstance(reply, m.Error)
    assert (reply.id, reply.code) == (getattr(msg, "id"), code)  # noqa: B009
    assert sentence is not None and sentence in reply.message


@pytest.mark.timeout(5)
def test_a_session_past_max_sessions_is_refused_with_the_fix() -> None:
    commands, _ = _commands(sessions={"a": object(), "b": object()}, max_sessions=2)
    reply = asyncio.run(commands.handle(b"ctl", m.NewSession(id="n", name="c")))
    assert isinstance(reply, m.Error) and (reply.id, reply.code) == ("n", m.E_STATE)
    assert reply.message == ("there are already 2 sessions, the most supervisor.max_sessions"
                             " allows: remove one, or raise max_sessions in the config and"
                             " reload.")


@pytest.mark.timeout(5)
def test_a_result_is_wrapped_in_ok_with_the_id() -> None:
    commands, shutdowns = _commands()
    version = asyncio.run(commands.handle(b"ctl", m.Version(id="v")))
    assert isinstance(version, m.Ok) and version.id == "v"
    assert isinstance(version.result, m.VersionResult) and version.result.version
    personas = asyncio.run(commands.handle(b"ctl", m.ListPersonas(id="p")))
    assert isinstance(personas, m.Ok) and isinstance(personas.result, m.PersonasResult)
    assert [p.name for p in personas.result.personas] == ["default", "research"]
    status = asyncio.run(commands.handle(b"ctl", m.Status(id="s")))
    assert isinstance(status, m.Ok) and status.result == m.StatusResult(programs=[], sweeps=0)
    done = asyncio.run(commands.handle(b"ctl", m.Shutdown(id="d")))
    assert done == m.Ok(id="d") and shutdowns == ["switchboardctl"]


def _session(state: Path, name: str) -> Path:
    d = state / "sessions" / name
    (d / "work" / "uploads").mkdir(parents=True)
    (d / "session.db").write_text("db")
    (d / "metadata.json").write_text("{}")
    (d / "work" / "uploads" / "a.txt").write_text("a")
    return d


@pytest.mark.timeout(5)
def test_remove_deletes_the_session_dir_and_says_what_was_in_it(tmp_path: Path) -> None:
    d = _session(tmp_path, "x")
    other = _session(tmp_path, "y")
    assert delete_session_dir(tmp_path, "x") == ["metadata.json", "session.db", "work/"]
    assert not d.exists() and other.exists() and (other / "work" / "uploads" / "a.txt").exists()
    assert delete_session_dir(tmp_path, "x") == []  # already gone: nothing to say


@pytest.mark.timeout(5)
def test_remove_never_follows_a_link_out_of_the_state_dir(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "main.py").write_text("keep me")
    state = tmp_path / "state"
    d = _session(state, "x")
    (d / "project").symlink_to(project)  # a link inside the session dir goes as a link
    assert "project" in delete_session_dir(state, "x")
    assert (project / "main.py").read_text() == "keep me"
    (state / "sessions" / "linked").symlink_to(project)  # a session dir that is a link: refused
    assert delete_session_dir(state, "linked") == []
    assert (project / "main.py").read_text() == "keep me"
    for bad in ("..", "../project", "", "x/../.."):
        assert delete_session_dir(state, bad) == []
    assert project.exists() and state.exists()
