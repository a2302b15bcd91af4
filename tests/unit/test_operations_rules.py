"""The pure rules of safe operations: what a reload cannot apply, when a file rolls over, what
the bot and the worker take from a Reload."""
from __future__ import annotations

import stat
from pathlib import Path

import pytest

from bot.reload import LIVE, changed_fields
from session_worker.worker import RELOADABLE
from supervisor import config as config_mod
from wire.logs import rotate_if_over
from wire.settings import BotSettings

BASE = 'state_dir = "/s"\nruntime_dir = "/r"\n[telegram]\ntoken = "1:x"\n'


@pytest.mark.parametrize(("extra", "needs"), [
    ("", []),
    ('[claude]\nidle_suspend_seconds = 5.0\n', []),
    ('[supervisor]\nstartretries = 9\n', []),
    ('personas_dir = "/p"\n', []),
])
def test_live_fields_need_no_restart(extra: str, needs: list[str]) -> None:
    old = config_mod.parse(BASE, base_dir=Path("/"))
    text = BASE + extra if extra.startswith("[") else extra + BASE
    assert config_mod.restart_needed(old, config_mod.parse(text, base_dir=Path("/"))) == needs


@pytest.mark.parametrize(("old", "new", "needs"), [
    ('runtime_dir = "/r"\n', 'runtime_dir = "/r2"\n', ["runtime_dir"]),
    ('state_dir = "/s"\n', 'state_dir = "/s2"\n', ["state_dir"]),
    ('[telegram]\ntoken = "1:x"\n', '[telegram]\ntoken = "1:y"\n', ["telegram.token"]),
    ('[telegram]\napi_base_url = "http://a"\n', '[telegram]\napi_base_url = "http://b"\n',
     ["telegram.api_base_url"]),
    ('[telegram]\nallowed_user_ids = [1]\n', '[telegram]\nallowed_user_ids = [2]\n', []),
])
def test_restart_needed(old: str, new: str, needs: list[str]) -> None:
    a = config_mod.parse(old, base_dir=Path("/"))
    b = config_mod.parse(new, base_dir=Path("/"))
    assert config_mod.restart_needed(a, b) == needs


def test_every_restart_field_is_named_by_check_config() -> None:
    note = config_mod.reload_note()
    assert all(f in note for f in config_mod.RESTART_FIELDS)


@pytest.mark.parametrize(("size", "limit", "rolled"), [
    (0, 10, False), (10, 10, False), (11, 10, True), (None, 10, False),
])
def test_rotate_if_over(tmp_path: Path, size: int | None, limit: int, rolled: bool) -> None:
    f = tmp_path / "x.stdio"
    if size is not None:
        f.write_bytes(b"a" * size)
        f.chmod(0o644)
    assert rotate_if_over(f, limit, backups=2) is rolled
    one = tmp_path / "x.stdio.1"
    assert one.exists() is rolled
    if rolled:
        assert not f.exists() and stat.S_IMODE(one.stat().st_mode) == 0o600


def test_rotation_keeps_only_the_backups(tmp_path: Path) -> None:
    f = tmp_path / "x.stdio"
    for run in range(5):
        f.write_bytes(f"run {run} ".encode() * 10)
        assert rotate_if_over(f, 5, backups=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.stdio.1", "x.stdio.2"]
    assert (tmp_path / "x.stdio.1").read_bytes().startswith(b"run 4")
    assert (tmp_path / "x.stdio.2").read_bytes().startswith(b"run 3")


def test_the_bot_applies_the_allow_list_but_not_the_base_url() -> None:
    old = BotSettings(state_dir="/s", runtime_dir="/r", allowed_user_ids=[1])
    new = BotSettings(state_dir="/s", runtime_dir="/r", allowed_user_ids=[2],
                      api_base_url="http://elsewhere", edit_interval_seconds=3.0)
    assert changed_fields(old, new) == ["allowed_user_ids", "edit_interval_seconds"]
    assert "api_base_url" not in LIVE and "state_dir" not in LIVE


def test_the_worker_never_reloads_its_identity() -> None:
    assert {"session", "state_dir", "runtime_dir", "work_dir", "supervisor_pid"}.isdisjoint(
        RELOADABLE)
    assert {"permission_timeout_seconds", "idle_suspend_seconds", "persona"} <= set(RELOADABLE)
