"""supervisor.bot_token: one lookup of the bot token, and where it was found."""
from __future__ import annotations

from pathlib import Path

import pytest

from supervisor import config
from supervisor.bot_token import find_token


@pytest.mark.parametrize("token, environ, env_file, expected", [
    ("1:cfg", {"T": "2:env"}, "T=3:file", ("1:cfg", "telegram.token in the config")),
    (None, {"T": "2:env"}, "T=3:file", ("2:env", "T in the environment")),
    (None, {"T": ""}, "T=3:file", ("3:file", "T in {file}")),
    (None, {}, "# T=4\nT='3:file'", ("3:file", "T in {file}")),
    (None, {"OTHER": "2:env"}, "OTHER=3:file", None),
    ("", {}, "", None),
])
def test_first_source_wins(tmp_path: Path, token: str | None, environ: dict[str, str],
                           env_file: str, expected: tuple[str, str] | None) -> None:
    cfg_path = tmp_path / "switchboard.toml"
    (tmp_path / "env").write_text(env_file + "\n")
    found = find_token(token, "T", cfg_path, environ)
    if expected is None:
        assert found is None
        return
    assert found is not None
    assert (found.value, found.source) == (expected[0],
                                           expected[1].format(file=tmp_path / "env"))
    holder = {"telegram.token in the config": cfg_path, "T in the environment": None}
    assert found.file == holder.get(expected[1], tmp_path / "env")


def test_no_config_file_no_env_file(tmp_path: Path) -> None:
    assert find_token(None, "T", None, {}) is None


@pytest.mark.parametrize("text, environ, refused", [
    ("", {}, True),
    ("", {"TELEGRAM_BOT_TOKEN": "1:a"}, False),
    ('[telegram]\ntoken = "1:a"', {}, False),
    ("[telegram]\nenabled = false", {}, False),
])
def test_run_and_reload_refuse_a_bot_without_a_token(
        monkeypatch: pytest.MonkeyPatch, text: str, environ: dict[str, str],
        refused: bool) -> None:
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    for k, v in environ.items():
        monkeypatch.setenv(k, v)
    why = config.parse(text).missing_token()
    if refused:
        assert why is not None and "telegram.token_env: $TELEGRAM_BOT_TOKEN is not set" in why
    else:
        assert why is None
