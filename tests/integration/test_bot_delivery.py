"""The outbound promise as the user sees it: a message Telegram refuses still arrives (as a
file), an outage longer than the retry bound ends in one sentence and the session goes on, and
a bot.db that can no longer be written gets the bot restarted by the supervisor."""
from __future__ import annotations

import base64
import resource
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.stack import OWNER, bot_stack
from tests.support.waits import wait_until

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

BOUND = 3.0  # telegram.delivery_retry_seconds for these tests


def _after(tg: Any, mid: int) -> list[dict[str, Any]]:
    return [m for m in tg.chat(OWNER) if m["from_bot"] and m["message_id"] > mid]


def _text_after(tg: Any, mid: int, needle: str) -> bool:
    return any(needle in (m.get("text") or "") for m in _after(tg, mid))


def _files_after(tg: Any, mid: int) -> list[str]:
    return [base64.b64decode(m["document"]["content_b64"]).decode()
            for m in _after(tg, mid) if m.get("document")]


@pytest.mark.timeout(90)
def test_a_refused_answer_arrives_as_a_file_and_the_next_one_as_text(
        tmp_path: Path, telegram_api: Any, claude_bin: str, cli_env: dict[str, str]) -> None:
    tg = telegram_api
    with bot_stack(tmp_path, tg, claude_bin, cli_env,
                   telegram={"delivery_retry_seconds": BOUND}) as st:
        st.new_session("demo")
        # Telegram refuses every text message to this chat (as it does for a text it cannot
        # take): rich, then plain, are refused; the file is not.
        for method in ("sendMessage", "editMessageText"):
            tg.fault("5xx", method, OWNER, count=10_000, status=400,
                     description="Bad Request: message can't be sent")
        mid = st.say("refused one")
        wait_until(lambda: any("echo: refused one" in f for f in _files_after(tg, mid)),
                   30, "the refused answer as a file")
        # The footer was refused as well and came as a file too: the turn was shown in full.
        wait_until(lambda: any("✓ " in f for f in _files_after(tg, mid)), 30, "the footer")
        assert not any("refused one" in (m.get("text") or "") for m in _after(tg, mid))
        refused = [c for c in tg.calls("sendMessage") if c["status"] == 400]
        plain = [c for c in refused if "refused one" in c["params"]["text"]
                 and not c["params"].get("entities")]
        assert plain, "the plain-text rung was never tried before the file"
        tg.clear_faults()
        assert "echo: after the refusal" in st.ask(
            "after the refusal", expect=lambda t: "after the refusal" in t)


@pytest.mark.timeout(120)
def test_an_outage_past_the_bound_ends_in_one_sentence_and_the_session_goes_on(
        tmp_path: Path, telegram_api: Any, claude_bin: str, cli_env: dict[str, str]) -> None:
    tg = telegram_api
    with bot_stack(tmp_path, tg, claude_bin, cli_env,
                   telegram={"delivery_retry_seconds": BOUND}) as st:
        st.new_session("demo")
        for method in ("sendMessage", "editMessageText", "sendDocument"):
            tg.fault("5xx", method, OWNER, count=100_000, status=502)
        mid = st.say("lost in the outage")
        wait_until(lambda: "event=not_delivered" in st.bot_log(), 30,
                   "the answer given up after the bound")
        tg.clear_faults()
        sentence = st.wait_text(lambda t: "could not be delivered" in t, OWNER, 30, after=mid)
        said = [m["text"] for m in sentence if m["from_bot"] and m["message_id"] > mid
                and "could not be delivered" in (m["text"] or "")]
        assert len(said) == 1, said
        assert said[0].startswith("Session demo: ") and "answer" in said[0], said
        assert "Telegram did not answer" in said[0] and "Bad Gateway" in said[0], said
        # The line moved on: the next message is answered as usual.
        assert "echo: back again" in st.ask("back again", expect=lambda t: "back again" in t)


@pytest.mark.timeout(120)
def test_a_bot_db_that_takes_no_writes_gets_the_bot_restarted(
        tmp_path: Path, telegram_api: Any, claude_bin: str, cli_env: dict[str, str]) -> None:
    """The most honest full disk this test can make without privileges: the running bot may not
    grow any file past bot.db's write-ahead log's current size (RLIMIT_FSIZE, set from outside
    with prlimit), so SQLite's next write fails in the OS as on a full disk. The restarted bot
    is a new process without that limit: the stack serves again."""
    tg = telegram_api
    with bot_stack(tmp_path, tg, claude_bin, cli_env, telegram={"drafts": False}) as st:
        st.new_session("demo")
        assert "echo: before" in st.ask("before", expect=lambda t: "before" in t)
        wal = st.state_dir / "bot.db-wal"
        log = st.logs_dir() / "bot.log"
        pid = st.bot_pid()
        assert pid is not None
        # Room for the log lines that say what happened, none for the journal to grow.
        wait_until(lambda: wal.stat().st_size > log.stat().st_size + 64 * 1024, 30,
                   "a journal larger than the bot's log", step=0.5,
                   pause=lambda s: (st.say("/help"), time.sleep(s)))
        limit = wal.stat().st_size
        # A slow answer: the disk fills while it streams, so the write that fails is the
        # delivery's own (the draft, the delivered seq), which used to end the line silently.
        mid = st.say("#sb:slow=150 #sb:words=30 while the disk is full")
        wait_until(lambda: _after(tg, mid), 30, "the answer streaming")
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (limit, limit))
        wait_until(lambda: "could not be written" in st.bot_log(), 30, "the storage sentence")
        line = next(ln for ln in st.bot_log().splitlines() if "event=storage_failed" in ln)
        assert "bot.db could not be written (" in line and str(st.state_dir) in line, line
        # The heartbeat said so and the supervisor restarted the bot at once.
        sup_log = st.logs_dir() / "supervisor.log"
        wait_until(lambda: "event=unhealthy program=bot" in sup_log.read_text(), 30,
                   "the supervisor acting on the unhealthy heartbeat")
        st.wait_state("bot", "RUNNING", 30, new_pid_after=pid)
        # The answer in progress is shown in full after the restart, and the next one too.
        words = " ".join(f"w{i}" for i in range(1, 31))
        st.wait_text(lambda t: t.startswith(words), OWNER, 40, after=mid)
        assert "echo: after" in st.ask("after", expect=lambda t: "echo: after" in t)
