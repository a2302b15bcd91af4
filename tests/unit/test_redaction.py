"""wire.logs: a token is redacted from every log line and from the process's own stdout/stderr,
whatever its shape once the process registered it (PTB's InvalidToken quotes it whole)."""
from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from wire import logs


@pytest.fixture
def secrets_cleared() -> Iterator[None]:
    saved = set(logs._secrets)
    logs._secrets.clear()
    try:
        yield
    finally:
        logs._secrets.clear()
        logs._secrets.update(saved)


@pytest.mark.parametrize("text, registered, expected", [
    ("url /bot123456:AAAAAAAAAAAAAAAAAAAAAAAA/getMe", None, "url /<token>/getMe"),
    ("The token `42:short-secret-x` was rejected", "42:short-secret-x",
     "The token `<token>` was rejected"),
    ("just the half short-secret-x here", "42:short-secret-x", "just the half <token> here"),
    ("nothing to hide", "42:short-secret-x", "nothing to hide"),
    ("a 42:abc short one", "42:abc", "a 42:abc short one"),  # too short to redact words safely
])
def test_redact(secrets_cleared: None, text: str, registered: str | None,
                expected: str) -> None:
    if registered:
        logs.add_secret(registered)
    assert logs.redact(text) == expected


def test_an_uncaught_invalid_token_traceback_is_redacted_on_stderr() -> None:
    token = "42:not-a-pattern-tok"
    code = (
        "from telegram.error import InvalidToken\n"
        "from wire import logs\n"
        f"logs.add_secret({token!r})\n"
        "logs.redact_stdio()\n"
        f"print('stdout has', {token!r})\n"
        f"raise InvalidToken('The token `{token}` was rejected by the server.')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=30, check=False)
    assert proc.returncode == 1
    assert "InvalidToken" in proc.stderr and "<token>" in proc.stderr
    assert "stdout has <token>" in proc.stdout
    assert "not-a-pattern-tok" not in proc.stdout + proc.stderr
