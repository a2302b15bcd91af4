"""One topic per session, in a private chat whose bot has topic mode on (Bot API 9.3), and reply-to
routing in one without: the user's stories, through the sandbox Telegram, real PTB, the real CLI.

With topics: `/new` in General makes a topic per session; what is typed in a topic is answered
there by that session, two sessions streaming at once; a bot killed and restarted makes no
second topic; a topic the user makes by hand becomes a session; a topic Telegram says is gone
("message thread not found") is recreated and the answer arrives there; `/stop` closes a topic
and a message typed into the closed topic reopens it and is answered; a session given up
(FATAL) says so in its own topic; `/remove` deletes its topic. Without topics: `/switch`, a
reply to a session's message goes to that session, and a forum supergroup works with forum
topics."""
from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.e2e.conftest import bot_token, unique
from tests.support.chat import button, last_id, wait_text
from tests.support.stack import OWNER, Stack
from tests.support.waits import wait_until

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def tg(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The sandbox Telegram; with topic mode on (and users allowed to make topics) unless a
    test asks for it off (parametrized indirectly with False)."""
    from sandbox.telegram_api import TelegramSandbox

    on = bool(getattr(request, "param", True))
    with TelegramSandbox(token=bot_token(), has_topics_enabled=on,
                         allows_users_to_create_topics=on) as sb:
        yield sb


def topic_of(tg: Any, name: str, timeout: float = 20) -> dict[str, Any]:
    """The newest live topic whose title ends with the session's name."""
    def find() -> dict[str, Any] | None:
        live = [t for t in tg.topics(OWNER) if not t["deleted"]
                and t["name"].split(" ")[-1] == name]
        return live[-1] if live else None
    found: dict[str, Any] = wait_until(find, timeout, f"a topic for {name}")
    return found


def thread_texts(tg: Any, thread: int) -> list[str]:
    return [m["text"] or "" for m in tg.topic_chat(OWNER, thread) if m["from_bot"]]


def wait_in(tg: Any, thread: int, pred: Callable[[str], bool], what: str,
            timeout: float = 40) -> str:
    def find() -> str | None:
        return next((t for t in thread_texts(tg, thread) if pred(t)), None)
    found: str = wait_until(find, timeout, f"{what} in topic {thread}")
    return found


def general_texts(tg: Any) -> list[str]:
    return [m["text"] or "" for m in tg.topic_chat(OWNER, 0) if m["from_bot"]]


def test_sessions_live_in_their_own_topics(make_stack: Callable[..., Stack], tg: Any) -> None:
    # sessions are given up at their first crash; the bot, never given up, is back within 1 s
    st = make_stack(supervisor={"startretries": 0, "retry_window_seconds": 60,
                                "bot_max_backoff_seconds": 1.0})
    alpha, beta = unique("alpha"), unique("beta")
    for name in (alpha, beta):
        st.say(f"/new {name}")
        wait_text(tg, OWNER, rf"Session {re.escape(name)} is ready in its own topic", 30)
    a, b = topic_of(tg, alpha), topic_of(tg, beta)
    # named after the session, its state in front (💤: no CLI until its first message)
    assert a["name"] in (f"🟢 {alpha}", f"💤 {alpha}") and b["name"].endswith(f" {beta}")
    assert f"Session {alpha} is ready: write here." in thread_texts(tg, a["message_thread_id"])
    ta, tb = a["message_thread_id"], b["message_thread_id"]

    # Typed in each topic, answered there by its session, both streaming at the same time.
    words = " ".join(f"x{i}" for i in range(12))
    tg.send(OWNER, f"#sb:slow=250 #sb:text=from-a {words}", message_thread_id=ta)
    tg.send(OWNER, f"#sb:slow=250 #sb:text=from-b {words}", message_thread_id=tb)
    partial_at: dict[str, float] = {}
    final_at: dict[str, float] = {}

    def both_done() -> bool:
        for key, thread in (("a", ta), ("b", tb)):
            # A partial answer is a draft streaming in the topic (or an edited message where
            # drafts are refused); the final one a message there.
            drafts = [d["text"] or "" for d in tg.drafts(OWNER, thread)]
            for text in thread_texts(tg, thread) + drafts:
                if text.startswith(f"from-{key}"):
                    partial_at.setdefault(key, time.monotonic())
            if any(t.startswith(f"from-{key}") and "x11" in t for t in thread_texts(tg, thread)):
                final_at.setdefault(key, time.monotonic())
        return len(final_at) == 2
    wait_until(both_done, 60, "both answers, each in its own topic")
    assert partial_at["a"] < final_at["b"] and partial_at["b"] < final_at["a"], (
        "the two sessions did not stream at the same time")
    assert not any("from-b" in t for t in thread_texts(tg, ta))
    assert not any("from-b" in (d["text"] or "") for d in tg.drafts(OWNER, ta))
    assert not any("from-a" in t for t in thread_texts(tg, tb))
    assert not any(t.startswith("from-") for t in general_texts(tg))

    # /status in General: the pinned live status opens each session's topic; a tap on "Open
    # alpha" (a private chat: no link leads into a topic) puts a line in alpha's topic.
    after = last_id(tg, OWNER)
    st.say("/status")
    status = wait_text(tg, OWNER, "Sessions, live", 20, after=after)
    assert status.get("message_thread_id") is None  # in General
    tg.tap(OWNER, status["message_id"], button(status, f"Open {alpha}"))
    wait_in(tg, ta, lambda t: t.startswith(f"📍 {alpha} is here"), "the line in alpha's topic")
    assert button(status, f"Open {beta}") == f"tp:{beta}"

    # A kill -9 of the bot: the restarted bot knows every topic and makes no second one.
    pid = st.bot_pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: st.bot_pid() not in (None, pid), 30, "the bot restarted")
    tg.send(OWNER, "after the crash", message_thread_id=tb)
    wait_in(tg, tb, lambda t: "echo: after the crash" in t, "beta's answer after the crash")
    assert [t["message_thread_id"] for t in tg.topics(OWNER)] == [ta, tb]

    # A topic the user makes by hand becomes a session named after it.
    made = tg.create_topic(OWNER, f"Gamma {alpha[-4:]}")
    gamma, tgm = f"gamma-{alpha[-4:]}", made["topic"]["message_thread_id"]
    wait_in(tg, tgm, lambda t: f"Session {gamma} is ready: write here." in t, "the hand-made")
    assert f"session:{gamma}" in st.sup.status()
    tg.send(OWNER, "hello gamma", message_thread_id=tgm)
    wait_in(tg, tgm, lambda t: "echo: hello gamma" in t, "gamma's answer")
    wait_until(lambda: topic_of(tg, gamma)["name"] == f"🟢 {gamma}", 30, "gamma's title")

    # Telegram says alpha's topic is gone: it is recreated and the answer arrives there.
    tg.fault("5xx", "sendMessage", OWNER, status=400,
             description="Bad Request: message thread not found")
    tg.send(OWNER, "still there?", message_thread_id=ta)
    a2 = wait_until(lambda: (t := topic_of(tg, alpha))["message_thread_id"] != ta and t, 30,
                    "alpha's topic recreated")
    ta = a2["message_thread_id"]
    wait_in(tg, ta, lambda t: "echo: still there?" in t, "the answer in the new topic")

    # /stop closes the topic; a message in the closed topic reopens it, starts the session and
    # is answered there.
    tg.send(OWNER, "/stop", message_thread_id=ta)
    wait_in(tg, ta, lambda t: "stop" in t.lower(), "the stop's reply")
    wait_until(lambda: topic_of(tg, alpha)["closed"], 30, "alpha's topic closed")
    st.wait_state(f"session:{alpha}", "STOPPED", 30)
    wait_until(lambda: topic_of(tg, alpha)["name"] == f"⏹ {alpha}", 30, "the stopped title")
    tg.send(OWNER, "wake up", message_thread_id=ta)
    wait_until(lambda: not topic_of(tg, alpha)["closed"], 30, "alpha's topic reopened by the bot")
    wait_in(tg, ta, lambda t: "echo: wake up" in t, "the answer after the reopen")
    assert st.sup.status()[f"session:{alpha}"].state == "RUNNING"

    # A background session given up (FATAL) says so in its own topic, not in General.
    killed: set[int] = set()

    def crash_until_fatal() -> bool:
        row = st.sup.status()[f"session:{gamma}"]
        if row.state == "FATAL":
            return True
        if row.state == "RUNNING" and row.pid and row.pid not in killed:
            killed.add(row.pid)
            os.kill(row.pid, signal.SIGKILL)
        return False
    wait_until(crash_until_fatal, 30, "gamma to go FATAL")
    wait_in(tg, tgm, lambda t: f"Session {gamma} kept crashing" in t, "the FATAL notice")
    assert not any("kept crashing" in t for t in general_texts(tg))
    wait_until(lambda: topic_of(tg, gamma)["name"] == f"⛔ {gamma}", 30, "the FATAL title",
               detail=lambda: f"{tg.topics(OWNER)}\n{st.bot_log()[-3000:]}")

    # A session stopped from the terminal gets its topic closed too.
    assert st.ctl("stop", beta).returncode == 0
    wait_until(lambda: topic_of(tg, beta)["closed"], 30, "beta's topic closed by its stop",
               detail=lambda: f"{tg.topics(OWNER)}")

    # /remove (confirmed) deletes the session's topic with everything in it.
    after = last_id(tg, OWNER)
    st.say(f"/remove {beta}")
    confirm = wait_text(tg, OWNER, "cannot be undone", 20, after=after)
    tg.tap(OWNER, confirm["message_id"], f"rm:y:{beta}")
    wait_text(tg, OWNER, rf"Session {re.escape(beta)} removed", 60, after=after)
    assert next(t for t in tg.topics(OWNER) if t["message_thread_id"] == tb)["deleted"]
    assert f"session:{beta}" not in st.sup.status()


@pytest.mark.parametrize("tg", [False], indirect=True, ids=["no-topics"])
def test_without_topics_switch_and_reply_to_route(make_stack: Callable[..., Stack],
                                                  tg: Any) -> None:
    st = make_stack()
    one, two = unique("one"), unique("two")
    st.new_session(one)
    # streamed: the draft message becomes the answer, and a reply to it still finds its session
    first = st.ask_msg("#sb:slow=150 #sb:text=one says a b c d e",
                       expect=lambda t: "one says a b c d e" in t)
    st.new_session(two)  # now the active session
    assert st.ask("to two", expect=lambda t: t.startswith("echo:")).startswith("echo: to two")
    # A reply to one's answer goes to one, whatever the active session is.
    after = last_id(tg, OWNER)
    tg.send(OWNER, "back to one", reply_to_message_id=first["message_id"])
    back = wait_text(tg, OWNER, "echo: back to one", 40, after=after)
    assert back["text"].startswith(f"[{one}]"), back["text"]  # labelled: not the active one
    assert st.sup.status()[f"session:{one}"].state == "RUNNING"
    calls = [c for c in tg.calls("sendMessage") if "back to one" in str(c.get("params"))]
    assert calls and all("message_thread_id" not in c["params"] for c in calls)
    # /switch still picks the session plain text goes to.
    assert st.ask(f"/switch {one}", expect=lambda t: "Active session" in t)
    assert "echo: plain" in st.ask("plain", expect=lambda t: "echo: plain" in t)

    # A forum supergroup of the owner's: the same model with forum topics.
    forum, fx = -100900, unique("fx")
    tg.add_bot(OWNER, forum, chat_type="supergroup", title="forum")
    tg.send(OWNER, f"/new {fx}", forum, chat_type="supergroup", is_forum=True)
    wait_text(tg, forum, rf"Session {re.escape(fx)} is ready in its own topic", 30)
    topic = next(t for t in tg.topics(forum) if t["name"].endswith(f" {fx}"))
    tg.send(OWNER, "in the forum", forum, message_thread_id=topic["message_thread_id"])
    answer = wait_text(tg, forum, "echo: in the forum", 40)
    assert answer["message_thread_id"] == topic["message_thread_id"]
