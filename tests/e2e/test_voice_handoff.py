"""Voice notes and the terminal handoff, end to end: the whole stack, the real CLI.

A voice note goes through the sandbox transcription endpoint (served by the model sandbox) and
becomes a turn with its "🎤" transcript shown; a failing endpoint costs one sentence and nothing
else (the recording stays in the session's uploads). `/handoff` and `switchboardctl attach`
print a command that, run against the sandbox model, resumes the same conversation; while that
terminal CLI runs, a message waits with one sentence and is answered after it exits.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import re
import shlex
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import psutil
import pytest

from bot.voice import MIC
from tests.e2e.conftest import unique
from tests.support.chat import last_id, new_session, wait_text
from tests.support.procs import TAG_ENV
from tests.support.stack import OWNER, Stack
from tests.support.waits import wait_until

pytestmark = pytest.mark.timeout(240)
KEY_ENV = "SB_E2E_VOICE_KEY"


def user_texts(request: dict[str, Any]) -> str:
    """Every user text of one model request, in order (what the conversation carried)."""
    from sandbox.model_scripts import user_text

    return "\n".join(user_text(msg) for msg in request.get("messages") or []
                     if isinstance(msg, dict) and msg.get("role") == "user")


def asked(model: Any, words: str) -> list[dict[str, Any]]:
    """The model requests whose newest user text holds `words`."""
    from sandbox.model_scripts import newest_user_message, user_text

    return [r for r in model.requests()
            if words in user_text(newest_user_message(r.get("messages")))]


def test_a_voice_note_becomes_a_turn_and_a_failed_one_costs_nothing(
        make_stack: Callable[..., Stack], tg: Any, model: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    key = f"sk-voice-{time.time_ns()}"
    monkeypatch.setenv(KEY_ENV, key)
    st = make_stack(start=False)
    st.sections["voice"] = {"api_base_url": f"{model.url}/v1", "api_key_env": KEY_ENV,
                            "timeout_seconds": 20}
    st.write_config()
    st.start()
    name = unique("voice")
    new_session(tg, OWNER, name)
    uploads = st.state_dir / "sessions" / name / "work" / "uploads"

    # A voice note: transcribed, shown, and answered as the message.
    after = last_id(tg, OWNER)
    sent = tg.send_voice(OWNER, b"please answer my voice", duration=2)["message"]
    wait_text(tg, OWNER, re.escape(f"{MIC} please answer my voice"), 30, after=after)
    wait_text(tg, OWNER, re.escape("echo: please answer my voice"), 60, after=after)
    [record] = model.transcriptions()
    assert record["model"] == "whisper-1" and record["authorization"] == f"Bearer {key}"
    assert record["sha256"] == hashlib.sha256(b"please answer my voice").hexdigest()
    assert record["content_type"] == "audio/ogg"
    saved = uploads / f"{sent['message_id']}-voice.ogg"
    assert saved.read_bytes() == b"please answer my voice"

    # An audio file with real (binary) sound: its transcript is the turn too.
    sound = bytes(range(256)) * 4
    after = last_id(tg, OWNER)
    tg.send_audio(OWNER, sound, filename="memo.mp3", duration=3)
    heard = f"audio of {len(sound)} bytes, sha256 {hashlib.sha256(sound).hexdigest()[:8]}"
    wait_text(tg, OWNER, re.escape(f"{MIC} {heard}"), 30, after=after)
    wait_text(tg, OWNER, re.escape(f"echo: {heard}"), 60, after=after)
    assert model.transcriptions()[-1]["content_type"] == "audio/mpeg"

    # The endpoint fails: one sentence naming why and where the recording is; no turn.
    turns = len(model.requests())
    after = last_id(tg, OWNER)
    broken = tg.send_voice(OWNER, b"this one breaks #stt:error=500")["message"]
    where = f"uploads/{broken['message_id']}-voice.ogg"
    msg = wait_text(tg, OWNER, r"The voice note was not transcribed", 30, after=after)
    assert "answered 500" in msg["text"] and where in msg["text"], msg["text"]
    assert (uploads.parent / where).read_bytes() == b"this one breaks #stt:error=500"
    wait_until(lambda: not tg.pending_updates(), 20, "the update confirmed")
    assert len(model.requests()) == turns
    assert not any(MIC in (m.get("text") or "") and "breaks" in (m.get("text") or "")
                   for m in tg.chat(OWNER))

    # The key is in no process's environment block, and in no log.
    for proc in st.tagged():
        try:
            assert key not in "\0".join(proc.environ().values()), proc.cmdline()
        except psutil.Error:
            continue
    logs = "".join(p.read_text(errors="replace") for p in st.logs_dir().glob("*"))
    assert key not in logs


def test_handoff_to_a_terminal_and_back(stack: Stack, tg: Any, model: Any) -> None:
    from sandbox.model_api import cli_environment

    name = unique("hand")
    new_session(tg, OWNER, name)
    # Nothing to hand off yet, and no such session: one sentence each.
    after = last_id(tg, OWNER)
    tg.send(OWNER, "/handoff")
    wait_text(tg, OWNER, r"has no conversation yet: send it a message first", 30, after=after)
    nosuch = stack.ctl("attach", "nosuch")
    assert nosuch.returncode == 4 and "no session 'nosuch'" in nosuch.stderr
    after = last_id(tg, OWNER)
    tg.send(OWNER, "the first words")
    wait_text(tg, OWNER, re.escape("echo: the first words"), 60, after=after)
    # Not while it answers: the running turn keeps its CLI.
    after = last_id(tg, OWNER)
    tg.send(OWNER, "a slow answer #sb:slow=250 #sb:words=12")
    # It is streaming (into the chat's draft) when the user asks.
    wait_until(lambda: any(" w2" in (d["text"] or "") and "w12" not in (d["text"] or "")
                           for d in tg.drafts(OWNER)), 30, "the answer streaming")
    tg.send(OWNER, "/handoff")
    wait_text(tg, OWNER, r"is answering a message: wait for the answer", 30, after=after)
    wait_text(tg, OWNER, r"w12", 30, after=after)

    # /handoff: the CLI is suspended and the chat gets the command.
    after = last_id(tg, OWNER)
    tg.send(OWNER, "/handoff")
    wait_text(tg, OWNER, rf"Session {re.escape(name)} is suspended", 30, after=after)
    shown = wait_text(tg, OWNER, r"--resume ", 30, after=after)["text"]
    meta = json.loads((stack.state_dir / "sessions" / name / "metadata.json").read_text())
    sid = meta["claude_session_id"]
    work = stack.state_dir / "sessions" / name / "work"
    assert shown.startswith(f"cd {shlex.quote(str(work))} && CLAUDE_CONFIG_DIR=")
    assert shown.endswith(f" --resume {sid}")
    wait_until(lambda: (stack.row(f"session:{name}") or {}).get("suspended"), 20,
               "status showing the session suspended")
    # switchboardctl attach says the same, and only the command goes to stdout.
    out = stack.ctl("attach", name)
    assert out.returncode == 0 and out.stdout.strip() == shown, (out.stdout, out.stderr)
    assert "suspended" in out.stderr

    # Run it at a "terminal": the sandbox model's environment, but a home of its own, so only
    # the command itself can point the CLI at the session's conversations.
    env = cli_environment(model.url, stack.tmp / "terminal-home")
    env.pop("CLAUDE_CONFIG_DIR")
    env.pop(TAG_ENV, None)
    with at_terminal(shown, "from the terminal", env) as terminal:
        first = wait_until(lambda: asked(model, "from the terminal"), 30,
                           "the terminal's model request")
        assert "the first words" in user_texts(first[0])  # the same conversation
        # Messages while the terminal holds the id: one sentence each, and they wait.
        after = last_id(tg, OWNER)
        tg.send(OWNER, "while you were away")
        wait_text(tg, OWNER, r"in use at a terminal", 20, after=after)
        second = last_id(tg, OWNER)
        tg.send(OWNER, "and this too")
        wait_text(tg, OWNER, r"in use at a terminal", 20, after=second)
        assert terminal.poll() is None, "the terminal's claude ended before the check"
        assert not asked(model, "while you were away")
    assert terminal.returncode == 0  # never killed as a stale CLI

    # Back in the chat: the waiting messages run on the conversation the terminal continued.
    wait_text(tg, OWNER, re.escape("echo: and this too"), 60, after=after)
    [resumed] = asked(model, "while you were away")
    carried = user_texts(resumed)
    assert "the first words" in carried and "from the terminal" in carried

    # The CLI is warm again; a `claude --resume` started without /handoff makes it step aside.
    assert (stack.row(f"session:{name}") or {}).get("claude_pid")
    # Long enough for a sweep to see it (2.4 s), not for two chat round trips as above.
    with at_terminal(shown, "again from the terminal", env, words=8) as terminal:
        wait_until(lambda: (stack.row(f"session:{name}") or {}).get("suspended"), 20,
                   "the warm CLI suspended for the terminal")
    assert terminal.returncode == 0
    after = last_id(tg, OWNER)
    tg.send(OWNER, "home again")
    wait_text(tg, OWNER, re.escape("echo: home again"), 60, after=after)
    assert "again from the terminal" in user_texts(asked(model, "home again")[0])


@contextlib.contextmanager
def at_terminal(command: str, prompt: str, env: dict[str, str],
                words: int = 15) -> Iterator[Any]:
    """Run the printed command as a user would at a terminal, with one slow prompt (-p, `words`
    words 0.3 s apart), and wait for it to exit at the end of the block (killed if it outlives
    60 s)."""
    proc = subprocess.Popen(
        ["bash", "-c",
         f"{command} -p {shlex.quote(prompt + f' #sb:slow=300 #sb:words={words}')}"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        yield proc
        out, err = proc.communicate(timeout=60)
        assert f"w{words}" in out, (out, err)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
