"""The bot token: the one lookup `run`, a SIGHUP reload, `doctor` and `init` all use.

Where it may come from, first found wins: `telegram.token` in the config; the variable named by
`telegram.token_env` (TELEGRAM_BOT_TOKEN unless it says otherwise) in the environment; the same
variable in the `env` file next to the config, which `switchboard init` writes 0600 and the
supervisor reads itself (the systemd units do not load it, so the token is in no environment).

A token found in the supervisor's own environment is taken out of it at start
(`take_from_environ`): popped from `os.environ` so no child can inherit it, and wiped from the
exec-time block that `/proc/<pid>/environ` shows. This module never logs or prints a token: it
says where one was found.
"""
from __future__ import annotations

import ctypes
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_TOKEN_ENV = "TELEGRAM_BOT_TOKEN"
ENV_FILE_NAME = "env"

# Values taken out of our environment by take_from_environ, still found by find_token.
_taken: dict[str, str] = {}
_libc = ctypes.CDLL(None, use_errno=True)
_libc.getenv.restype = ctypes.c_void_p
_libc.getenv.argtypes = [ctypes.c_char_p]


def _wipe_exec_block(name: str) -> None:
    """Overwrite the value of `name` where the C environment holds it. At start that is the
    exec-time block `/proc/<pid>/environ` reads, which popping from os.environ leaves intact."""
    addr = _libc.getenv(os.fsencode(name))
    if addr:
        ctypes.memset(addr, ord("x"), len(ctypes.string_at(addr)))


def take_from_environ(names: Iterable[str], environ: dict[str, str] | None = None) -> list[str]:
    """Move each variable of `names` (and every TELEGRAM_* one) out of our environment into
    memory, so that find_token still finds it and nothing we start inherits it; returns the names
    taken. Only `switchboard run` calls this."""
    env: dict[str, str] | os._Environ[str] = os.environ if environ is None else environ
    wanted = set(names) | {k for k in env if k.startswith("TELEGRAM_")}
    taken = []
    for name in sorted(wanted):
        if name not in env:
            continue
        if environ is None:
            _wipe_exec_block(name)  # before the pop: unsetenv would leave the bytes in place
        _taken[name] = env.pop(name)
        taken.append(name)
    return taken


def _environment() -> dict[str, str]:
    return {**_taken, **os.environ}


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
    env = _environment() if environ is None else environ
    value = env.get(token_env)
    if value:
        return FoundToken(value, f"{token_env} in the environment", None)
    if config_path is not None:
        env_file = env_file_path(config_path)
        value = read_env_file(env_file).get(token_env)
        if value:
            return FoundToken(value, f"{token_env} in {env_file}", env_file)
    return None
