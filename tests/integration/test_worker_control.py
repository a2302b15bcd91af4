"""Interrupts, permission prompts and personas, with the real CLI against the sandbox model."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from tests.support import standin_cli
from tests.support.worker import ROOT, WorkerHarness
from wire import messages as m

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def env(cli_env):
    return dict(cli_env, CLAUDE_CODE_MAX_RETRIES="0")


def test_interrupt_a_slow_stream_then_queue_proceeds(tmp_path, claude_bin, env):
    with WorkerHarness(tmp_path, claude_bin, env) as w:
        w.start()
        w.ask("warm up")
        pids = w.cli_pids()
        slow = w.turn("tell me #sb:slow=200 #sb:words=200")
        queued = w.turn("after the cancel")
        w.wait_for(lambda: w.bodies(m.TextDelta, slow), 20, "the slow stream to start")
        w.send(m.Cancel(id="c1"))
        assert isinstance(w.reply("c1", 15), m.Ok)
        res = w.result(slow, 15)
        assert res.subtype == "error_during_execution", res
        assert w.result(queued, 15).is_error is False
        assert w.texts(queued).endswith("after the cancel")
        assert w.cli_pids() == pids, "the interrupt kept the warm CLI"
        w.send(m.Cancel(id="c2"))
        err = w.reply("c2")
        assert isinstance(err, m.Error) and err.code == m.E_STATE


def test_interrupt_ignored_kills_and_resumes(tmp_path, env):
    fake = standin_cli.install(tmp_path, standin_cli.SCRIPTED)
    with WorkerHarness(tmp_path, fake, env, interrupt_timeout_seconds=1.0) as w:
        w.start()
        w.ask("hello")
        deaf = w.turn("deaf")
        w.wait_for(lambda: w.cli_pids() and w.events(deaf), 10, "the deaf turn to start")
        w.send(m.Cancel(id="c1"))
        assert isinstance(w.reply("c1", 10), m.Ok)
        w.wait_for(lambda: w.notices(), 10, "a notice")
        assert "did not answer the interrupt" in w.notices()[-1].message
        k, _res = w.ask("next")
        assert w.texts(k) == "fake: next"


def _prompt(w: WorkerHarness, key: str) -> m.PermissionRequest:
    got = w.wait_for(
        lambda: w.bodies(m.PermissionRequest, key), 20, f"a permission prompt in {key}"
    )
    return got[0]  # type: ignore[no-any-return]


def test_permission_allowed_denied_always_and_timeout(tmp_path, claude_bin, env):
    with WorkerHarness(tmp_path, claude_bin, env, permission_timeout_seconds=1.5) as w:
        w.start()
        work = w.session_dir / "work"
        k1 = w.turn("#sb:bash=touch allowed.txt")
        p1 = _prompt(w, k1)
        assert p1.tool_name == "Bash" and p1.summary == "Bash: touch allowed.txt"
        assert p1.timeout_seconds == 1.5
        w.send(m.PermissionAnswer(id="a1", prompt_id=p1.prompt_id, allow=True))
        assert isinstance(w.reply("a1"), m.Ok)
        assert not w.result(k1).is_error
        assert (work / "allowed.txt").exists()
        assert w.bodies(m.PermissionResolved, k1)[0].allowed is True

        k2 = w.turn("#sb:bash=touch denied.txt")
        p2 = _prompt(w, k2)
        w.send(m.PermissionAnswer(id="a2", prompt_id=p2.prompt_id, allow=False, message="not now"))
        assert isinstance(w.reply("a2"), m.Ok)
        w.result(k2)
        assert not (work / "denied.txt").exists()
        assert any(r.is_error for r in w.bodies(m.ToolResult, k2))
        w.send(m.PermissionAnswer(id="a3", prompt_id=p2.prompt_id, allow=True))
        assert isinstance(w.reply("a3"), m.Error), "a prompt is answered once"

        k3 = w.turn("#sb:bash=touch timeout.txt")
        _prompt(w, k3)
        w.result(k3, 20)
        resolved = w.bodies(m.PermissionResolved, k3)
        assert resolved and not resolved[0].allowed and resolved[0].reason == "timeout"
        assert not (work / "timeout.txt").exists()

        k4 = w.turn("#sb:bash=touch always1.txt")
        p4 = _prompt(w, k4)
        w.send(m.PermissionAnswer(id="a4", prompt_id=p4.prompt_id, allow=True, always=True))
        w.result(k4)
        k5 = w.turn("#sb:bash=touch always2.txt")
        w.result(k5)
        assert not w.bodies(m.PermissionRequest, k5), "always: no second prompt for Bash"
        assert (work / "always1.txt").exists() and (work / "always2.txt").exists()


def _load_persona(name: str) -> m.Persona:
    return msgspec.json.decode((ROOT / "personas" / f"{name}.json").read_bytes(), type=m.Persona)


@pytest.mark.parametrize("name", ["brainstorm", "planner", "research"])
def test_persona_flags_reach_the_cli(tmp_path, claude_bin, env, model_api, name):
    persona = _load_persona(name)
    with WorkerHarness(tmp_path, claude_bin, env, persona=persona) as w:
        w.start()
        w.ask("hello persona")
        req = [r for r in model_api.requests() if "hello persona" in str(r["messages"])][-1]
        system = str(req.get("system"))
        assert persona.append_system_prompt[:60] in system
        assert "Claude Code" in system, "appended to Claude Code's own prompt, not replacing it"
        tools = {t.get("name") for t in req.get("tools", [])}
        for denied in persona.disallowed_tools:
            assert denied not in tools, f"{denied} reached the model despite the persona"
        import psutil

        cmd = psutil.Process(w.cli_pids()[0]).cmdline()
        assert cmd[cmd.index("--permission-mode") + 1] == persona.permission_mode
        for tool in persona.allowed_tools:
            assert tool in cmd


def test_shipped_personas_are_valid():
    for path in sorted(Path(ROOT / "personas").glob("*.json")):
        p = msgspec.json.decode(path.read_bytes(), type=m.Persona)
        assert p.name == path.stem
    names = {p.stem for p in (ROOT / "personas").glob("*.json")}
    assert {"default", "brainstorm", "planner", "research"} <= names
