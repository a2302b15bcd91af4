"""switchboard.toml: the example loads, and every kind of mistake is named by its field."""
from __future__ import annotations

from pathlib import Path

import pytest

from supervisor import config

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_example_is_valid() -> None:
    cfg = config.load(ROOT / "switchboard.example.toml")
    assert cfg.telegram.allowed_user_ids == [123456789]
    assert cfg.claude.default_persona == "default"
    assert Path(cfg.state_dir).is_absolute() and "~" not in cfg.state_dir


def test_relative_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    p = tmp_path / "sb.toml"
    p.write_text('state_dir = "state"\nruntime_dir = "rt"\n[claude]\nbinary = "bin/claude"\n')
    cfg = config.load(p)
    assert cfg.state_dir == str(tmp_path / "state")
    assert cfg.runtime_dir == str(tmp_path / "rt")
    assert cfg.claude.binary == str(tmp_path / "bin/claude")


def test_token_from_file_or_named_variable() -> None:
    assert config.parse('[telegram]\ntoken = "1:a"').token({}) == "1:a"
    cfg = config.parse('[telegram]\ntoken_env = "MY_TOKEN"')
    assert cfg.token({"MY_TOKEN": "2:b"}) == "2:b"
    assert cfg.token({}) is None


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("state_dir = ", "not valid TOML"),
        ("bogus = 1", "bogus is not a known field"),
        ("[telegramm]\n", "telegramm is not a known field"),
        ("[telegram]\nallowed_user_ids = 5", "telegram.allowed_user_ids must be"),
        ('[telegram]\nallowed_user_ids = ["me"]', "telegram.allowed_user_ids must be"),
        ("[telegram]\nallowed_user_ids = [-3]", "telegram.allowed_user_ids must be positive"),
        ('[telegram]\napi_base_url = "ftp://x"', "telegram.api_base_url must start with"),
        ("[telegram]\nedit_interval_seconds = 0", "telegram.edit_interval_seconds"),
        ("[telegram]\ndraft_interval_seconds = 0", "telegram.draft_interval_seconds"),
        ("[telegram]\nstatus_refresh_seconds = 0", "telegram.status_refresh_seconds"),
        ("[telegram]\nstartup_retry_max_seconds = 0", "telegram.startup_retry_max_seconds"),
        ("[telegram]\npoll_timeout_seconds = 99", "telegram.poll_timeout_seconds"),
        ("[telegram]\ncolour = 1", "telegram.colour is not a known field"),
        ("[claude]\nenv = 3", "claude.env must be"),
        ('[claude]\nextra_args = "--x"', "claude.extra_args must be"),
        ("[claude]\nidle_suspend_seconds = -1", "claude.idle_suspend_seconds must be positive"),
        ("[supervisor]\nstartretries = -1", "supervisor.startretries must be 0 or more"),
        ("[supervisor]\nbackoff_initial_seconds = 5\nbackoff_max_seconds = 1",
         "supervisor.backoff_initial_seconds"),
        ('[supervisor]\nstartsecs = "soon"', "supervisor.startsecs must be a number"),
        ("[supervisor]\nheartbeat_timeout_seconds = 1\nheartbeat_interval_seconds = 5",
         "heartbeat_timeout_seconds"),
        ('state_dir = ""', "state_dir must be a non-empty path"),
        ("telegram = 3", "[telegram] must be a table"),
        ('runtime_dir = "/tmp/' + "x" * 120 + '"', "runtime_dir is too long"),
    ],
)
def test_each_mistake_names_its_field(text: str, fragment: str) -> None:
    with pytest.raises(config.ConfigError) as err:
        config.parse(text, "sb.toml")
    assert fragment in err.value.report()


def test_all_mistakes_are_reported_at_once() -> None:
    with pytest.raises(config.ConfigError) as err:
        config.parse("x = 1\n[telegram]\nallowed_user_ids = 1\n[supervisor]\nstartretries = -2\n",
                     "sb.toml")
    assert len(err.value.problems) == 3
    assert err.value.report().startswith("sb.toml has 3 problem(s):")


def test_missing_file_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(config.ConfigError, match="switchboard init"):
        config.load(tmp_path / "nope.toml")


def test_token_from_the_env_file_next_to_the_config(tmp_path: Path) -> None:
    p = tmp_path / "switchboard.toml"
    p.write_text("[telegram]\n")
    (tmp_path / "env").write_text(
        "# written by switchboard init\nTELEGRAM_BOT_TOKEN='7:from-file'\n")
    cfg = config.load(p)
    assert cfg.token({}) == "7:from-file"
    assert cfg.token({"TELEGRAM_BOT_TOKEN": "8:env-wins"}) == "8:env-wins"
