"""What `switchboard run` checks before it starts anything: personas against the config, and a
private state dir."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from supervisor import config, personas, service

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
