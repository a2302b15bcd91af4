"""A session that the supervisor gives up on (FATAL) is news for the chat using it; the owner
learns it at once, in one sentence that says what to do, and writing to it brings it back."""
from __future__ import annotations

import os
import signal

import pytest

from tests.support.stack import OWNER, bot_stack
from tests.support.waits import wait_until

pytestmark = pytest.mark.timeout(90)


def test_fatal_session_is_announced_and_a_message_revives_it(
    tmp_path, telegram_api, claude_bin, cli_env
):
    with bot_stack(tmp_path, telegram_api, claude_bin, cli_env,
               supervisor={"startretries": 0, "retry_window_seconds": 60}) as st:
        st.new_session("doomed")
        killed: set[int] = set()

        def crash_until_fatal() -> bool:
            row = st.sup.status()["session:doomed"]
            if row.state == "FATAL":
                return True
            if row.state == "RUNNING" and row.pid and row.pid not in killed:
                killed.add(row.pid)
                os.kill(row.pid, signal.SIGKILL)
            return False

        wait_until(crash_until_fatal, 30, "the session to go FATAL")
        st.wait_text(lambda t: "Session doomed kept crashing and was given up" in t
                     and "/restart doomed" in t, OWNER, 20)
        # Writing to it clears FATAL, and the message is answered.
        assert st.ask("back?", timeout=40, expect=lambda t: "echo: back?" in t)
        assert st.sup.status()["session:doomed"].state == "RUNNING"
