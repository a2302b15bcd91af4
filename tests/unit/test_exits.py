"""wire.exits: one meaning for an exit code, in each sentence's own words."""
from __future__ import annotations

import pytest

from session_worker import notices
from supervisor import program
from wire.exits import describe_exit


@pytest.mark.parametrize("code, supervisor_words, worker_words", [
    (0, "exit status 0", "exit code 0"),
    (3, "exit status 3", "exit code 3"),
    (-9, "killed by SIGKILL", "killed by SIGKILL"),
    (-15, "killed by SIGTERM", "killed by SIGTERM"),
    (-99, "killed by signal 99", "killed by signal 99"),
    (None, "unknown exit", "with an unknown status"),
])
def test_the_supervisor_and_the_worker_read_a_code_alike(
        code: int | None, supervisor_words: str, worker_words: str) -> None:
    assert describe_exit(code) == supervisor_words
    assert program.describe_exit(code) == supervisor_words
    assert notices.exit_description(code) == worker_words
