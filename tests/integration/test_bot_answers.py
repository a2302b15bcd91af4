"""What answers look like in the chat: streamed by edits, formatted, split, rate-limited."""
from __future__ import annotations

import base64
import itertools
from pathlib import Path
from typing import Any

import pytest

from sandbox.model_scripts import sized_text
from tests.support.chat import texts
from tests.support.stack import OWNER, bot_stack
from tests.support.waits import wait_until

SECOND = 2002


def _answer_after(tg: Any, chat_id: int, mid: int) -> list[dict[str, Any]]:
    return [m for m in tg.chat(chat_id) if m["from_bot"] and m["message_id"] > mid]


def _finished(tg: Any, chat_id: int, mid: int) -> bool:
    return any("✓ " in (m["text"] or "") for m in _answer_after(tg, chat_id, mid))


def _chat_of(call: dict[str, Any]) -> int | None:
    chat = str(call["params"].get("chat_id"))
    return int(chat) if chat.lstrip("-").isdigit() else None


def _calls_to(tg: Any, chat_id: int, status: int) -> list[dict[str, Any]]:
    return [c for c in tg.calls() if _chat_of(c) == chat_id and c["status"] == status]


@pytest.mark.timeout(90)
def test_streaming_markdown_and_long_answers(tmp_path: Path, telegram_api, claude_bin,
                                             cli_env) -> None:
    tg = telegram_api
    with bot_stack(tmp_path, tg, claude_bin, cli_env,
               telegram={"file_threshold_chars": 20000, "preview_over_chars": 150000,
                         "drafts": False}) as st:
        st.new_session("demo")

        # Streaming by edits (a group's way; drafts off here): the answer appears by edits of one
        # message, then is the full text.
        mid = st.say("#sb:slow=100 #sb:words=40")
        wait_until(lambda: _finished(tg, OWNER, mid), 30, "the streamed answer")
        (answer,) = _answer_after(tg, OWNER, mid)
        words = " ".join(f"w{i}" for i in range(1, 41))
        assert answer["text"].startswith(words + "\n\n✓ ")
        assert answer["edits"] >= 3
        edits = [c["params"]["text"] for c in tg.calls("editMessageText")
                 if str(c["params"].get("message_id")) == str(answer["message_id"])]
        assert all(a.strip() != b.strip() for a, b in itertools.pairwise(edits)), "identical edit"
        sends = [c["params"]["text"] for c in tg.calls("sendMessage")
                 if c["params"]["text"].startswith("w1")]
        assert len(sends[0]) < len(words)  # it began as a partial draft

        # Markdown: code blocks and bold arrive as entities, not as asterisks and fences.
        mid = st.say("#sb:markdown")
        wait_until(lambda: _finished(tg, OWNER, mid), 30, "the markdown answer")
        (md,) = _answer_after(tg, OWNER, mid)
        kinds = {e["type"] for e in md["entities"]}
        assert {"bold", "code", "pre"} <= kinds
        assert "```" not in md["text"] and "**" not in md["text"]
        covered = {k: v for k, v in tg.entity_texts(md["text"], md["entities"])
                       if k == "pre"}
        assert "def greet(name: str) -> str:" in covered["pre"]
        assert [e.get("language") for e in md["entities"] if e["type"] == "pre"] == ["python"]

        # 100 KB: valid messages (<= 4096) whose texts join back to the original, plus a file.
        mid = st.say("#sb:size=100000")
        wait_until(lambda: _finished(tg, OWNER, mid), 60, "the 100 KB answer")
        parts = [m for m in _answer_after(tg, OWNER, mid) if m["text"]]
        assert len(parts) >= 25
        bodies = [m["text"] for m in parts]
        assert all(len(t.encode("utf-16-le")) // 2 <= 4096 for t in bodies)
        bodies[-1] = bodies[-1].rsplit("\n\n✓ ", 1)[0]
        assert " ".join(b.strip() for b in bodies) == sized_text(100000)
        docs = [m for m in _answer_after(tg, OWNER, mid) if m["document"]]
        assert len(docs) == 1

        # Past preview_over_chars: no flood of messages, one preview and the whole answer as a file.
        mid = st.say("#sb:size=400000")
        wait_until(lambda: _finished(tg, OWNER, mid), 60, "the 400 KB answer")
        wait_until(lambda: any(m["document"] for m in _answer_after(tg, OWNER, mid)), 30,
                   "the 400 KB answer's file")
        after = _answer_after(tg, OWNER, mid)
        (preview,) = [m for m in after if m["text"]]
        assert preview["text"].startswith(sized_text(400000)[:1000])
        assert "400,000 characters in all" in preview["text"]
        (doc,) = [m for m in after if m["document"]]
        assert doc["document"]["file_name"].endswith(".md")
        assert base64.b64decode(doc["document"]["content_b64"]).decode() == sized_text(400000)


@pytest.mark.timeout(90)
def test_flood_in_one_chat_does_not_stall_another(tmp_path: Path, telegram_api, claude_bin,
                                                   cli_env) -> None:
    tg = telegram_api
    with bot_stack(tmp_path, tg, claude_bin, cli_env,
               telegram={"allowed_user_ids": [OWNER, SECOND]}) as st:
        st.new_session("one", OWNER)
        st.new_session("two", SECOND)
        # A 429 storm in the first chat: every send and edit refused for a while.
        tg.fault("429", method="sendMessage", chat_id=OWNER, count=2, retry_after=2)
        tg.fault("429", method="editMessageText", chat_id=OWNER, count=1, retry_after=2)
        mid1 = st.say("first chat, flooded")
        wait_until(lambda: _calls_to(tg, OWNER, status=429), 20, "the first chat's first 429")
        mid2 = st.say("second chat", SECOND)
        wait_until(lambda: _finished(tg, SECOND, mid2), 20, "the second chat's answer")
        assert not _finished(tg, OWNER, mid1), "the flooded chat should still be waiting"
        wait_until(lambda: _finished(tg, OWNER, mid1), 40, "the flooded chat's answer")
        # In the order the server saw them: the second chat's whole answer went out while the
        # first chat sat out its first retry_after (a global pause would have held both back
        # until the first chat's retry).
        calls = tg.calls()
        first_429 = next(i for i, c in enumerate(calls) if _chat_of(c) == OWNER
                         and c["status"] == 429)
        first_retry = next(i for i, c in enumerate(calls) if _chat_of(c) == OWNER and i > first_429
                           and c["method"] in ("sendMessage", "editMessageText"))
        second_done = next(i for i, c in enumerate(calls) if _chat_of(c) == SECOND
                           and "✓ " in str(c["params"].get("text") or ""))
        assert first_429 < second_done < first_retry, (first_429, second_done, first_retry)
        assert any("echo: first chat, flooded" in t for t in texts(tg.chat(OWNER)))
        flooded = [c for c in tg.calls() if c["status"] == 429]
        assert len(flooded) == 3
        # Every refused call was retried only after its retry_after.
        log = st.bot_log()
        assert "event=flood_wait chat_id=1001" in log and "chat_id=2002 " not in log.split(
            "event=flood_wait")[-1].split("\n")[0]
