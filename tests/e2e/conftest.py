"""Fixtures for the end-to-end tier: the whole stack, started as a user starts it.

`stack` is a running `switchboard run` against both sandboxes (the bot RUNNING, no session yet);
`make_stack(...)` makes one with other settings (and `start=False` to start it yourself). Both
prove on teardown that nothing of the stack is left: the run process exited after SIGTERM, and
no process with the stack's tag or a session marker, no zombie, no child of the run remains.

The tests act only through the sandbox Telegram server (as the user) and `switchboardctl`.
"""
from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.stack import OWNER, Stack


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.e2e)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: the whole stack, started as a user starts it")


def bot_token() -> str:
    """A token that is easy to look for in logs and argv."""
    return f"{secrets.randbelow(10**9) + 10**9}:E2E-SECRET-{secrets.token_hex(12)}"


def unique(name: str) -> str:
    """A session name no other stack on this machine uses at the same time, so that a process
    found by its session marker is certainly this test's (other tiers run alongside)."""
    return f"{name}-{secrets.token_hex(2)}"


@pytest.fixture
def tg() -> Iterator[Any]:
    from sandbox.telegram_api import TelegramSandbox

    with TelegramSandbox(token=bot_token()) as sb:
        yield sb


@pytest.fixture
def model() -> Iterator[Any]:
    from sandbox.model_api import ModelSandbox

    with ModelSandbox() as sb:
        yield sb


@pytest.fixture
def make_stack(claude_bin: str, tg: Any, model: Any) -> Iterator[Callable[..., Stack]]:
    stacks: list[Stack] = []

    def make(start: bool = True, claude: str | None = None, **kw: Any) -> Stack:
        st = Stack(tg, model, claude or claude_bin, **kw)
        stacks.append(st)
        if start:
            st.start()
        return st

    yield make
    problems = []
    for st in stacks:
        try:
            st.stop()
        except AssertionError as exc:
            problems.append(str(exc) + "\nrun output:\n" + st.run_output()[-1500:])
        finally:
            st.close()
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def stack(make_stack: Callable[..., Stack]) -> Stack:
    return make_stack()


@pytest.fixture
def owner() -> int:
    return OWNER
