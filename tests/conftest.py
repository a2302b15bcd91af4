"""Shared fixtures: the two sandbox servers and a private environment for the real Claude CLI.

Every fixture that starts a process also proves, on teardown, that the process is gone. The
helpers every tier shares are the `tests.support` package: the project root goes on sys.path
here once, so `from tests.support... import` works however pytest was started.
"""
from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# A command started in the background by a non-interactive shell (`make test &`, some CI
# runners) has SIGINT ignored, and an ignored signal stays ignored across fork and exec: every
# process a test starts would inherit it, and a test's Ctrl-C (SIGINT to `switchboardctl tail
# -f`) would do nothing, as it would to GNU tail. The tests start their processes as a terminal
# does, with SIGINT in place: a handled signal is reset to its default by exec.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def claude_bin() -> str:
    from sandbox.model_api import find_claude

    path = find_claude()
    if path is None:
        pytest.fail("the Claude Code CLI is not installed:"
                    " run `make test`, which installs it into .cli/")
    return path


@pytest.fixture
def model_api():
    """A running sandbox Anthropic Messages API (sandbox.model_api.ModelSandbox)."""
    from sandbox.model_api import ModelSandbox

    with ModelSandbox() as sb:
        yield sb


@pytest.fixture
def telegram_api():
    """A running sandbox Telegram Bot API (sandbox.telegram_api.TelegramSandbox)."""
    from sandbox.telegram_api import TelegramSandbox

    with TelegramSandbox() as sb:
        yield sb


@pytest.fixture
def cli_env(tmp_path, model_api) -> dict[str, str]:
    """Environment for the real CLI: private config dir, dummy key, only the sandbox reachable."""
    from sandbox.model_api import cli_environment

    return cli_environment(model_api.url, tmp_path / "claude-home")
