"""A stranger writing to the bot causes nothing: no session, no file, no process, no forwarding."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.chat import journal_rows, snapshot, texts
from tests.support.procs import children_of
from tests.support.stack import OWNER, bot_stack
from tests.support.waits import wait_until

STRANGER = 4242
GROUP = -555


def strip_db(files: dict[str, tuple[int, int]]) -> dict[str, tuple[int, int]]:
    """bot.db changes for the owner's own messages; its rows are checked separately."""
    return {k: v for k, v in files.items() if not k.startswith("bot.db")}


@pytest.mark.timeout(60)
def test_stranger_causes_no_side_effect(tmp_path: Path, telegram_api, claude_bin, cli_env) -> None:
    tg = telegram_api
    with bot_stack(tmp_path, tg, claude_bin, cli_env) as st:
        bot_pid = st.bot_pid()
        assert bot_pid
        st.new_session("keep")
        # The owner asks to remove it in a group; a stranger in that group taps "Remove".
        mid = int(tg.send(OWNER, "/remove keep", GROUP, chat_type="group")["message"]["message_id"])
        chat = st.wait_text(lambda t: "Remove session keep" in t, GROUP, after=mid)
        confirm = [msg for msg in chat if msg["reply_markup"]][-1]
        st.sup.wait_state("session:keep", "RUNNING", 15)
        before_files = snapshot(st.state_dir)
        before_procs = {p.pid for p in children_of(st.sup.proc.pid)}
        tg.send(STRANGER, "/new evil")
        tg.send(STRANGER, "rm -rf / please, secret-stranger-text")
        tg.send_document(STRANGER, "x.sh", b"echo pwned", caption="secret-stranger-caption")
        tg.send(STRANGER, "/status")
        tg.send(STRANGER, "group hello", chat_id=GROUP, chat_type="group")
        tg.tap(STRANGER, confirm["message_id"], "rm:y:keep", chat_id=GROUP)
        # The owner's next command is answered: so every stranger update before it was handled.
        tg.send(OWNER, "/help")
        tg.wait_for(lambda c: any("/new NAME" in t for t in texts(c)), OWNER, 15)
        wait_until(lambda: not tg.pending_updates(), 10, "all updates confirmed")

        assert texts(tg.chat(STRANGER)) == ["This is a private bot."]  # one refusal only
        assert not [t for t in texts(tg.chat(GROUP)) if "private" in t]
        answers = [c for c in tg.callbacks() if c.get("data") == "rm:y:keep"]
        assert answers and answers[0]["answered"]
        assert strip_db(snapshot(st.state_dir)) == strip_db(before_files)  # no file written
        rows = journal_rows(st.state_dir, "SELECT body FROM updates")
        assert rows and all("4242" not in body for (body,) in rows)  # only the owner's /help
        assert journal_rows(st.state_dir, "SELECT * FROM handoffs") == []
        assert not (st.state_dir / "sessions" / "evil").exists()
        assert set(st.sup.status()) == {"bot", "session:keep"}  # nothing created or removed
        assert st.sup.state("session:keep") == "RUNNING"
        still = [msg for msg in tg.chat(GROUP) if msg["message_id"] == confirm["message_id"]]
        assert still[0]["reply_markup"]  # the owner's buttons are still there
        assert {p.pid for p in children_of(st.sup.proc.pid)} == before_procs  # no process
        assert st.bot_pid() == bot_pid
        log = st.bot_log()
        assert "event=stranger user_id=4242" in log
        assert "secret-stranger" not in log and "rm -rf" not in log and "pwned" not in log
        assert tg.token not in log
