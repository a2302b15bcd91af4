"""SIGHUP: the supervisor re-reads its config and personas, or refuses a broken set whole."""
from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

import psutil
import pytest

from tests.support.supervisor import FAST, ROOT, SupervisorHarness
from tests.support.waits import wait_until
from wire import messages as m
from wire.settings import WORKER_SETTINGS_ENV

pytestmark = pytest.mark.timeout(60)

REVIEWER = {
    "name": "reviewer",
    "description": "Reads a diff and says what is wrong with it.",
    "append_system_prompt": "You review changes; you do not make them.",
    "permission_mode": "plan",
    "allowed_tools": ["Read", "Grep"],
}


@pytest.fixture
def sup(tmp_path: Path):
    personas = tmp_path / "personas"
    shutil.copytree(ROOT / "personas", personas)
    s = SupervisorHarness(tmp_path, personas_dir=personas)
    yield s
    s.close()


def reload(sup: SupervisorHarness, outcome: str) -> None:
    """SIGHUP, then wait until the supervisor logged one more `event=<outcome>`."""
    line = f"event={outcome}"
    before = sup.log().count(line)
    assert sup.proc is not None
    sup.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: sup.log().count(line) > before, 10, f"{line} in the supervisor log")


def persona_names(sup: SupervisorHarness) -> list[str]:
    return [p.name for p in sup.ok(m.ListPersonas(id=m.new_id())).personas]


def worker_persona(sup: SupervisorHarness, session: str) -> dict[str, object]:
    """The persona the session's worker was started with, read from its environment."""
    pid = sup.wait_state(f"session:{session}", "RUNNING").pid
    settings = json.loads(psutil.Process(pid).environ()[WORKER_SETTINGS_ENV])
    persona: dict[str, object] = settings["persona"]
    return persona


def test_sighup_loads_a_new_persona_and_new_config_values(sup: SupervisorHarness) -> None:
    sup.start()
    assert "reviewer" not in persona_names(sup)
    refused = sup.request(m.NewSession(id=m.new_id(), name="rev", persona="reviewer"))
    assert isinstance(refused, m.Error) and refused.code == m.E_UNKNOWN_PERSONA
    # A program that exists before the reload: it gives up under the old policy (2 retries).
    sup.ok(m.NewSession(id=m.new_id(), name="crash-old"))  # ok or not: it crashes either way
    row = sup.wait_state("session:crash-old", "FATAL")
    assert "gave up after 3 failures in 30s" in row.description

    (sup.personas_dir / "reviewer.json").write_text(json.dumps(REVIEWER))
    sup.sections["claude"]["default_persona"] = "reviewer"
    sup.sections["supervisor"].update(startretries=0, retry_window_seconds=45.0)
    sup.write_config()
    pid = sup.proc.pid if sup.proc else None
    reload(sup, "reloaded")
    assert sup.proc is not None and sup.proc.pid == pid and sup.proc.poll() is None

    assert persona_names(sup) == ["brainstorm", "default", "planner", "research", "reviewer"]
    # A new session can use the new persona: its worker runs with that persona's settings.
    assert sup.ok(m.NewSession(id=m.new_id(), name="rev", persona="reviewer")).results[0].ok
    assert sup.status()["session:rev"].persona == "reviewer"
    persona = worker_persona(sup, "rev")
    assert persona["append_system_prompt"] == REVIEWER["append_system_prompt"]
    assert persona["permission_mode"] == "plan"
    # The new default persona applies to a session created without one.
    assert sup.ok(m.NewSession(id=m.new_id(), name="plain")).results[0].ok
    assert sup.status()["session:plain"].persona == "reviewer"
    # The existing program runs under the new policy: no retry, and the new window.
    sup.ok(m.Start(id=m.new_id(), names=["crash-old"]))
    row = sup.wait_state("session:crash-old", "FATAL")
    assert "gave up after 1 failures in 45s" in row.description


@pytest.mark.parametrize("breakage", ["toml", "value", "persona", "token"])
def test_a_broken_config_on_sighup_is_refused_and_the_old_one_kept(sup: SupervisorHarness,
                                                                     breakage: str) -> None:
    sup.start()
    assert sup.ok(m.NewSession(id=m.new_id(), name="before")).results[0].ok
    personas = persona_names(sup)
    # Changes that would show if any part of the broken set were applied.
    (sup.personas_dir / "reviewer.json").write_text(json.dumps(REVIEWER))
    sup.sections["claude"]["default_persona"] = "reviewer"
    sup.write_config()
    if breakage == "toml":
        with sup.config.open("a") as f:
            f.write("startsecs = = 1\n")
    elif breakage == "value":
        sup.sections["supervisor"]["heartbeat_interval_seconds"] = -1
        sup.write_config()
    elif breakage == "persona":
        (sup.personas_dir / "broken.json").write_text('{"name": "broken", "permission_mode": 7}')
    else:  # the bot switched on without a token to run it with
        sup.sections["telegram"] = {"enabled": True, "token_env": "SB_TEST_NO_SUCH_TOKEN"}
        sup.write_config()

    reload(sup, "reload_refused")
    assert sup.proc is not None and sup.proc.poll() is None
    assert "event=reloaded" not in sup.log()
    assert persona_names(sup) == personas
    assert "bot" not in sup.status()
    # Still serving, with the old config: a new session starts, with the old default persona.
    assert sup.ok(m.NewSession(id=m.new_id(), name="after")).results[0].ok
    assert sup.status()["session:after"].persona == "default"
    assert {sup.state(n) for n in ("session:before", "session:after")} == {"RUNNING"}

    # Once fixed, the same signal applies it.
    (sup.personas_dir / "broken.json").unlink(missing_ok=True)
    sup.sections["telegram"] = {"enabled": False}
    sup.sections["supervisor"]["heartbeat_interval_seconds"] = FAST["heartbeat_interval_seconds"]
    sup.write_config()
    reload(sup, "reloaded")
    assert "reviewer" in persona_names(sup)


def test_reload_that_turns_the_bot_off_stops_it_and_on_starts_it(tmp_path):
    sup = SupervisorHarness(tmp_path, telegram={"enabled": True}, env={"TELEGRAM_BOT_TOKEN": "1:x"})
    try:
        sup.start()
        pid = sup.wait_state("bot", "RUNNING").pid
        sup.sections["telegram"]["enabled"] = False
        sup.write_config()
        reload(sup, "bot_retired")
        assert "bot" not in sup.status()
        wait_until(lambda: not psutil.pid_exists(pid), 5, "the old bot to be gone")
        sup.sections["telegram"]["enabled"] = True
        sup.write_config()
        reload(sup, "reloaded")
        assert sup.wait_state("bot", "RUNNING").pid != pid
    finally:
        sup.close()
