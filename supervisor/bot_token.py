"""The bot token: the one lookup `run`, a SIGHUP reload, `doctor` and `init` all use.

Where it may come from, first found wins: `telegram.token` in the config; the variable named by
`telegram.token_env` (TELEGRAM_BOT_TOKEN unless it says otherwise) in the environment; the same
variable in the `env` file next to the config, which `switchboard init` writes 0600 and the
systemd unit loads. This module never logs or prints a token: it says where one was found.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_TOKEN_ENV = "TELEGRAM_BOT_TOKEN"
ENV_FILE_NAME = "env"


def env_file_path(config_path: Path) -> Path:
    """The env file next to the config (`switchboard init` keeps the token there, 0600)."""
    return config_path.parent / ENV_FILE_NAME


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines as systemd's EnvironmentFile reads them (comments and blanks skipped)."""
    values: dict[str, str] = {}
    try:
        text = path.read_text()
    except OSError:
        return values
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")) or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


@dataclass(frozen=True)
class FoundToken:
    value: str
    source: str  # where, for `doctor`: "TELEGRAM_BOT_TOKEN in the environment"
    file: Path | None  # the file that holds it (it must be private), None for the environment


def find_token(token: str | None, token_env: str, config_path: Path | None,
               environ: Mapping[str, str] | None = None) -> FoundToken | None:
    """The token from the config's own value, else `token_env` in `environ` (ours by default),
    else `token_env` in the env file next to `config_path` (None: there is no file yet)."""
    if token:
        return FoundToken(token, "telegram.token in the config", config_path)
    env = os.environ if environ is None else environ
    value = env.get(token_env)
    if value:
        return FoundToken(value, f"{token_env} in the environment", None)
    if config_path is not None:
        env_file = env_file_path(config_path)
        value = read_env_file(env_file).get(token_env)
        if value:
            return FoundToken(value, f"{token_env} in {env_file}", env_file)
    return None
