"""One topic per session, the pure parts: where a message goes (bot.routing), what a topic is
called (bot.topic_names), and the topic map that outlives the bot (bot.topic_map in bot.db)."""
from __future__ import annotations

from pathlib import Path

import pytest

from bot import routing
from bot import topic_names as names
from bot.journal import Journal
from bot.reply import NO_SESSION
from bot.topic_map import TopicMap
from wire import messages as m


@pytest.mark.parametrize(("topics", "thread", "topic_session", "reply", "active", "want"), [
    # a chat with topics: the topic decides, replies and the active session do not
    (True, 7, "api", "web", "web", routing.Where("api")),
    (True, 7, None, "web", "web", routing.Where(None, routing.NO_TOPIC_SESSION)),
    # General: the session it replies to, else one sentence (General is for commands)
    (True, None, None, "web", "api", routing.Where("web")),
    (True, None, None, None, "api", routing.Where(None, routing.IN_GENERAL)),
    # no topics: reply-to first, then the active session
    (False, None, None, "web", "api", routing.Where("web")),
    (False, None, None, None, "api", routing.Where("api")),
    (False, None, None, None, None, routing.Where(None, NO_SESSION)),
])
def test_where_a_message_goes(topics, thread, topic_session, reply, active, want) -> None:
    got = routing.route(topics=topics, thread=thread, topic_session=topic_session,
                        reply_session=reply, active=active)
    assert got == want


def _row(state: str, suspended: bool = False) -> m.ProgramStatus:
    return m.ProgramStatus(name="session:api", state=state, suspended=suspended)


@pytest.mark.parametrize(("row", "prompt", "state", "title"), [
    (_row("RUNNING"), False, names.RUNNING, "🟢 api"),
    (_row("RUNNING"), True, names.WAITING, "✋ api"),
    (_row("RUNNING", suspended=True), False, names.SUSPENDED, "💤 api"),
    (_row("RUNNING", suspended=True), True, names.WAITING, "✋ api"),
    (_row("STOPPED"), True, names.STOPPED, "⏹ api"),
    (_row("EXITED"), False, names.STOPPED, "⏹ api"),
    (_row("FATAL"), True, names.FATAL, "⛔ api"),
    (_row("BACKOFF"), False, names.RUNNING, "🟢 api"),
    (None, False, names.STOPPED, "⏹ api"),
])
def test_a_topic_title_carries_the_state(row, prompt, state, title) -> None:
    assert names.state_of(row, prompt) == state
    assert names.title("api", state) == title


@pytest.mark.parametrize(("topic", "session"), [
    ("api", "api"),
    ("My API", "my-api"),
    ("🟢 web", "web"),  # one of our own titles, copied
    ("Front end / v2!", "front-end-v2"),
    ("__x__", "x"),
    ("a" * 50, "a" * 32),
])
def test_a_hand_made_topic_names_a_session(topic, session) -> None:
    assert names.session_of_title(topic) == (session, None)


@pytest.mark.parametrize(("topic", "says"), [
    ("!!!", "no letters or digits"),
    ("🟢", "no letters or digits"),
    ("all", "reserved word"),
])
def test_a_topic_name_that_cannot_name_a_session_is_refused(topic, says) -> None:
    session, why = names.session_of_title(topic)
    assert session is None and why is not None and says in why
    assert why.endswith(".") and why.count(". ") == 0  # one sentence


def test_the_topic_map_outlives_the_bot_and_an_intent_stays_an_intent(tmp_path: Path) -> None:
    j = Journal(tmp_path / "bot.db")
    t = TopicMap(j)
    t.intend(5, "api", "🟢 api")  # written before createForumTopic: a crash leaves this
    t.record(5, "web", 40, "🟢 web")
    t.record(-100, "web", 3, "🟢 web")
    t.set_closed(5, "web", True)
    j.remember_sent(5, 77, "web")
    j.close()

    j = Journal(tmp_path / "bot.db")  # a restarted bot
    t = TopicMap(j)
    assert t.thread(5, "api") is None and (5, "api") in t.intended
    assert t.thread(5, "web") == 40 and t.session_at(5, 40) == "web"
    assert (5, "web") in t.closed and t.chats_of("web") == [-100, 5]
    assert j.sender_of(5, 77) == "web" and j.sender_of(5, 78) is None
    t.record(5, "web", 41, "⏹ web")  # recreated after "message thread not found"
    assert t.session_at(5, 40) is None and t.session_at(5, 41) == "web"
    assert (5, "web") not in t.closed
    t.drop(5, "web")
    j.forget_session("web")
    assert t.thread(5, "web") is None and j.sender_of(5, 77) is None
    assert [r[:3] for r in j.topic_rows()] == [(5, "api", None)]
    j.close()


def test_reply_routing_forgets_the_oldest_messages(tmp_path: Path) -> None:
    j = Journal(tmp_path / "bot.db")
    for mid in range(1, 11):
        j.remember_sent(1, mid, "api")
    j.prune_sent(keep=3)
    assert [mid for mid in range(1, 11) if j.sender_of(1, mid)] == [8, 9, 10]
    j.close()
