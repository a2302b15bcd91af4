"""What `switchboard run` checks before it starts anything: personas against the config, and a
private state dir."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from supervisor import config, personas, preflight, service

ROOT = Path(__file__).resolve().parents[2]


def test_unknown_default_persona_is_refused_naming_the_field(tmp_path: Path) -> None:
    p = tmp_path / "sb.toml"
    p.write_text(f'personas_dir = "{ROOT / "personas"}"\n[claude]\ndefault_persona = "nope"\n')
    with pytest.raises(config.ConfigError) as err:
        personas.load_for(config.load(p))
    assert "claude.default_persona 'nope' is not a persona" in err.value.report()
    assert "planner" in err.value.report()


def test_shipped_default_persona_loads(tmp_path: Path) -> None:
    p = tmp_path / "sb.toml"
    p.write_text(f'personas_dir = "{ROOT / "personas"}"\n')
    assert "default" in personas.load_for(config.load(p))


def test_state_dir_and_sessions_are_made_private(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        state = tmp_path / "deep" / "state"
        assert service.prepare_state_dir(state) == []
        for d in (state, state / "sessions"):
            assert stat.S_IMODE(d.stat().st_mode) == 0o700
        (state / "sessions").chmod(0o755)
        assert service.prepare_state_dir(state) == [state / "sessions"]
        assert stat.S_IMODE((state / "sessions").stat().st_mode) == 0o700
    finally:
        os.umask(old)


@pytest.mark.parametrize("toml, persona, to_run, refused", [
    ("", None, True, "telegram.token_env: $TELEGRAM_BOT_TOKEN is not set"),
    ("", None, False, None),  # check-config validates the files, not the environment
    ("[telegram]\nenabled = false\n", None, True, None),
    ('[telegram]\ntoken = "1:a"\n', '{"name": "x", "permission_mode": "yolo"}', True,
     "personas: "),
    ('[telegram]\ntoken = "1:a"\n[claude]\ndefault_persona = "nope"\n', None, False,
     "claude.default_persona 'nope'"),
    ("[telegram]\nbogus = 1\n", None, False, "telegram.bogus is not a known field"),
])
def test_run_check_config_and_reload_refuse_alike(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, toml: str, persona: str | None,
        to_run: bool, refused: str | None) -> None:
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    personas_dir = tmp_path / "personas"
    personas_dir.mkdir()
    if persona is not None:
        (personas_dir / "x.json").write_text(persona)
    p = tmp_path / "sb.toml"
    p.write_text(f'personas_dir = "{personas_dir}"\n{toml}')
    if refused is None:
        cfg, found = preflight.load(p, to_run=to_run)
        assert cfg.path == str(p) and "default" in found
        return
    with pytest.raises(preflight.Refused) as err:
        preflight.load(p, to_run=to_run)
    assert refused in err.value.report()
    assert err.value.detail, "the log line gets the reason too"
