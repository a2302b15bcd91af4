"""The bot token's way to the bot: a pipe written by the supervisor, read once by the bot."""
from __future__ import annotations

import os

import pytest

from supervisor import bot_token
from supervisor.process import secret_pipe
from wire.settings import read_secret


def fd_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


@pytest.mark.parametrize("secret, expected", [
    ("123456:abcdefabcdefabcdefabcdef", "123456:abcdefabcdefabcdefabcdef"),
    ("  123:x\n", "123:x"),  # an env file's stray blank does not reach Telegram
    ("", None),
])
def test_a_secret_goes_through_the_pipe_once_and_the_fd_is_closed(
        secret: str, expected: str | None) -> None:
    fd = secret_pipe(secret.encode())
    assert not os.get_inheritable(fd)  # only pass_fds hands it on
    assert read_secret(fd) == expected
    assert not fd_open(fd)


def test_no_fd_is_no_secret() -> None:
    assert read_secret(None) is None


@pytest.mark.parametrize("environ, names, left, taken", [
    ({"T": "1:a", "PATH": "/bin"}, ["T"], {"PATH": "/bin"}, ["T"]),
    ({"TELEGRAM_X": "y", "PATH": "/bin"}, ["T"], {"PATH": "/bin"}, ["TELEGRAM_X"]),
    ({"PATH": "/bin"}, ["T"], {"PATH": "/bin"}, []),
])
def test_the_token_variables_leave_the_environment_but_stay_findable(
        environ: dict[str, str], names: list[str], left: dict[str, str],
        taken: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bot_token, "_taken", {})  # this process's own taken values stay apart
    env = dict(environ)
    assert bot_token.take_from_environ(names, env) == taken
    assert env == left
    for name in taken:
        found = bot_token.find_token(None, name, None)
        assert found is not None and found.value == environ[name]
