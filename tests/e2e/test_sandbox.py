"""A session's tools are fenced off from Switchboard's controls and secrets: through the sandbox
Telegram user and the real CLI, the owner approves Bash commands that try to reach the env file,
the config, the bot's journal, another process's environment, the sockets and `switchboardctl`,
and each one fails inside Claude Code's sandbox, while the same `switchboardctl status` works
from the owner's own shell and an ordinary command in the work dir still works.

Each deny is proven by trying it (a deny that only looks right in the settings proves nothing).
Where bubblewrap or socat is missing these tests skip, naming the install command.
"""
from __future__ import annotations

import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import unique

from tests.support.chat import last_id, new_session, wait_text
from tests.support.stack import OWNER, Stack
from wire import sandbox

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(bool(sandbox.missing_programs()),
                       reason=f"Claude Code's sandbox needs bwrap and socat: {sandbox.INSTALL}"),
]

ENV_SECRET = "ENV-FILE-SECRET-7f3a"
CTL = Path(sys.executable).parent / "switchboardctl"


def approved(tg: Any, command: str, timeout: float = 90) -> str:
    """Send `#sb:bash=COMMAND`, tap Allow on its prompt, and return what the tool said."""
    after = last_id(tg, OWNER)
    tg.send(OWNER, f"#sb:bash={command}")
    prompt = wait_text(tg, OWNER, r"asks to use Bash", timeout, after=after)
    allow = next(b["callback_data"] for row in prompt["reply_markup"]["inline_keyboard"]
                 for b in row if b["text"] == "Allow")
    tg.tap(OWNER, prompt["message_id"], allow)
    said = wait_text(tg, OWNER, r"tool said", timeout, after=prompt["message_id"])
    return str(said["text"])


@pytest.fixture
def fenced(make_stack: Callable[..., Stack], tg: Any) -> tuple[Stack, str]:
    st = make_stack(start=False)
    env_file = st.config.parent / "env"
    env_file.write_text(f"SOMETHING_PRIVATE={ENV_SECRET}\n")
    env_file.chmod(0o600)
    st.start()
    name = unique("fence")
    new_session(tg, OWNER, name)
    return st, name


def test_a_sandboxed_sessions_bash_cannot_reach_the_secrets_or_the_controls(
        fenced: tuple[Stack, str], tg: Any) -> None:
    st, name = fenced
    work = st.state_dir / "sessions" / name / "work"
    bot = next(r for r in st.status() if r["name"] == "bot")
    # What the owner's shell can do, for contrast: every one of these works out here.
    assert ENV_SECRET in (st.config.parent / "env").read_text()
    assert (Path("/proc") / str(bot["pid"]) / "environ").read_bytes()
    assert (st.runtime_dir / "control.sock").exists()

    said = approved(tg, f"cat {st.config.parent / 'env'}; echo rc=$?")
    assert ENV_SECRET not in said and re.search(r"rc=[1-9]", said), said

    said = approved(tg, f"grep -c token {st.config}; echo rc=$?")
    assert re.search(r"rc=[1-9]", said), said

    said = approved(tg, f"head -c 20 {st.state_dir / 'bot.db'}; echo rc=$?")
    assert "SQLite" not in said and re.search(r"rc=[1-9]", said), said

    said = approved(tg, f"head -c 20 {work.parent / 'session.db'}; echo rc=$?")
    assert "SQLite" not in said and re.search(r"rc=[1-9]", said), said

    # The bot's environment: the sandbox has its own pid namespace and /proc.
    said = approved(tg, f"wc -c /proc/{bot['pid']}/environ; echo rc=$?")
    assert re.search(r"rc=[1-9]", said) and "No such file" in said, said

    said = approved(tg, f"ls -A {st.runtime_dir}; echo rc=$?")
    assert "sock" not in said and "lock" not in said, said

    # Even with a readable copy of the config (so it knows every path), switchboardctl cannot
    # reach the control socket from inside: the session stays, the supervisor never heard it.
    shutil.copy(st.config, work / "copy.toml")
    (work / "copy.toml").chmod(0o644)  # the sandbox's user is not this one when tests run as root
    said = approved(tg, f"{CTL} -c copy.toml stop all; echo rc=$?")
    assert re.search(r"rc=[1-9]", said) and "not running" in said, said
    states = {r["name"]: r["state"] for r in st.status()}
    assert states["bot"] == "RUNNING" and states[f"session:{name}"] == "RUNNING", states

    # The same command from the owner's shell works.
    out = st.ctl("status")
    assert out.returncode == 0 and f"session:{name}" in out.stdout, out

    # The work dir is the session's own: an ordinary command there works.
    said = approved(tg, "echo hi > f && cat f")
    assert re.search(r"tool said: hi\b", said), said
    assert (work / "f").read_text() == "hi\n"
