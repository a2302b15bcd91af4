"""The sandbox Telegram's Bot API 9.3-10.3 features, seen through the real python-telegram-bot:
topics in private chats and forums, sendMessageDraft with its Stop button, and link previews.
Every error shows up as PTB's own exception; updates are the ones PTB parses."""

from __future__ import annotations

import os

import pytest
from telegram import Bot, LinkPreviewOptions, Update
from telegram.error import BadRequest

from sandbox.telegram_api import SandboxError, TelegramSandbox

pytestmark = [
    pytest.mark.timeout(30),
    # do_api_request is how PTB 22.8 sends parameters newer than its Bot API 10.0 (can_stop)
    pytest.mark.filterwarnings("ignore:Please use 'Bot.send"),
]

USER = 4242
GROUP = -100777


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture(scope="module")
def server():
    """A bot with topic mode on and users allowed to make topics; proven gone afterwards."""
    with TelegramSandbox(has_topics_enabled=True, allows_users_to_create_topics=True) as tg:
        yield tg
    assert tg.returncode == 0, f"the sandbox exited with {tg.returncode} on SIGTERM"
    assert _gone(tg.pid)


@pytest.fixture
def tg(server):
    server.reset()
    return server


@pytest.fixture
async def bot(tg):
    async with Bot(**tg.bot_kwargs) as b:
        yield b


async def _updates(bot: Bot, **kwargs) -> list[Update]:
    return list(await bot.get_updates(timeout=0, **kwargs))


# ------------------------------------------------------------------------------- getMe


async def test_get_me_tells_topic_mode(bot):
    me = await bot.get_me()
    assert me.has_topics_enabled is True and me.allows_users_to_create_topics is True


async def test_topic_mode_is_off_by_default():
    with TelegramSandbox() as plain:
        async with Bot(**plain.bot_kwargs) as b:
            me = await b.get_me()
            assert me.has_topics_enabled is False and me.allows_users_to_create_topics is False
            with pytest.raises(BadRequest, match="(?i)the chat is not a forum"):
                await b.create_forum_topic(USER, "api")
            with pytest.raises(SandboxError, match="has no topics"):
                plain.create_topic(USER, "api")
    assert _gone(plain.pid)


# ------------------------------------------------------------------------------- bot's topics


async def test_bot_creates_a_topic_and_sends_into_it(bot, tg):
    topic = await bot.create_forum_topic(USER, "api", icon_color=0xFFD67E)
    assert (topic.name, topic.icon_color) == ("api", 0xFFD67E)
    sent = await bot.send_message(USER, "in the topic", message_thread_id=topic.message_thread_id)
    assert sent.message_thread_id == topic.message_thread_id and sent.is_topic_message
    await bot.send_message(USER, "outside")
    in_topic = tg.topic_chat(USER, topic.message_thread_id)
    assert in_topic[0]["service"] == {
        "forum_topic_created": {"name": "api", "icon_color": 0xFFD67E}
    }
    assert in_topic[0]["message_id"] == topic.message_thread_id
    assert [m["text"] for m in in_topic[1:]] == ["in the topic"]
    assert [m["text"] for m in tg.topic_chat(USER, 0)] == ["outside"]
    assert await _updates(bot) == []  # a bot gets no update about its own topic


async def test_every_send_method_takes_message_thread_id(bot, tg):
    thread = (await bot.create_forum_topic(USER, "files")).message_thread_id
    doc = await bot.send_document(USER, b"x", filename="a.txt", message_thread_id=thread)
    photo = await bot.send_photo(USER, b"\x89PNG\r\n\x1a\n" + b"\0" * 16, message_thread_id=thread)
    assert doc.message_thread_id == photo.message_thread_id == thread
    assert await bot.send_chat_action(USER, "typing", message_thread_id=thread)
    assert await bot.send_message_draft(USER, 7, "draft", message_thread_id=thread)
    with pytest.raises(BadRequest, match="(?i)message thread not found"):
        await bot.send_chat_action(USER, "typing", message_thread_id=thread + 50)


async def test_sends_into_missing_closed_and_deleted_topics(bot, tg):
    thread = (await bot.create_forum_topic(USER, "api")).message_thread_id
    plain = await bot.send_message(USER, "not a topic")
    for missing in (thread + 100, plain.message_id):
        with pytest.raises(BadRequest, match="(?i)^message thread not found$"):
            await bot.send_message(USER, "x", message_thread_id=missing)
    assert await bot.close_forum_topic(USER, thread)
    with pytest.raises(BadRequest, match="(?i)^topic_closed$"):
        await bot.send_message(USER, "x", message_thread_id=thread)
    with pytest.raises(BadRequest, match="(?i)topic_not_modified"):
        await bot.close_forum_topic(USER, thread)
    assert await bot.reopen_forum_topic(USER, thread)
    await bot.send_message(USER, "open again", message_thread_id=thread)
    assert await bot.delete_forum_topic(USER, thread)
    with pytest.raises(BadRequest, match="(?i)message thread not found"):
        await bot.send_message(USER, "x", message_thread_id=thread)
    assert tg.topic_chat(USER, thread) == []  # its messages went with it
    assert [m["text"] for m in tg.topic_chat(USER, thread, deleted=True)][-1] == "open again"
    kinds = [next(iter(m["service"])) for m in tg.topic_chat(USER, thread, deleted=True)
             if m["service"]]  # fmt: skip
    assert kinds == ["forum_topic_created", "forum_topic_closed", "forum_topic_reopened"]


async def test_topic_methods_on_ids_that_are_no_topic(bot):
    plain = await bot.send_message(USER, "a message, not a topic")
    for call in (
        bot.edit_forum_topic(USER, plain.message_id, name="n"),
        bot.close_forum_topic(USER, 999),
        bot.reopen_forum_topic(USER, 999),
        bot.delete_forum_topic(USER, 999),
    ):
        with pytest.raises(BadRequest, match="(?i)^topic_id_invalid$"):
            await call


async def test_create_and_edit_forum_topic_rules(bot, tg):
    with pytest.raises(BadRequest, match="(?i)topic_title_too_long"):
        await bot.create_forum_topic(USER, "n" * 129)
    with pytest.raises(BadRequest, match="(?i)topic_icon_color_invalid"):
        await bot.create_forum_topic(USER, "api", icon_color=0x123456)
    topic = await bot.create_forum_topic(USER, "n" * 128)
    assert topic.icon_color == 0x6FB9F0  # one of the six when none is given
    thread = topic.message_thread_id
    assert await bot.edit_forum_topic(USER, thread, name="renamed")
    with pytest.raises(BadRequest, match="(?i)topic_not_modified"):
        await bot.edit_forum_topic(USER, thread, name="renamed")
    assert tg.topics(USER)[0]["name"] == "renamed"
    edited = [m["service"] for m in tg.topic_chat(USER, thread) if m["service"]][-1]
    assert edited == {"forum_topic_edited": {"name": "renamed"}}


async def test_forum_supergroup_topics(bot, tg):
    tg.send(USER, "hello group", GROUP, chat_type="supergroup", is_forum=True)
    tg.send(USER, "hello plain", -100888, chat_type="supergroup")
    with pytest.raises(BadRequest, match="(?i)the chat is not a forum"):
        await bot.create_forum_topic(-100888, "x")
    thread = (await bot.create_forum_topic(GROUP, "builds")).message_thread_id
    sent = await bot.send_message(GROUP, "green", message_thread_id=thread)
    assert sent.is_topic_message and sent.chat.is_forum
    # in a forum, a topic message with no reply replies to the topic's first message
    assert sent.reply_to_message.forum_topic_created.name == "builds"
    with pytest.raises(BadRequest, match="(?i)textdraft_peer_invalid"):
        await bot.send_message_draft(GROUP, 1, "no drafts in groups")
    # a member who is no admin cannot write into a closed topic of a forum
    assert await bot.close_forum_topic(GROUP, thread)
    with pytest.raises(SandboxError, match="closed"):
        tg.send(USER, "late", GROUP, chat_type="supergroup", message_thread_id=thread)


# ------------------------------------------------------------------------------- users' topics


async def test_user_creates_writes_in_closes_and_deletes_a_topic(bot, tg):
    made = tg.create_topic(USER, "web")
    thread = made["topic"]["message_thread_id"]
    tg.send(USER, "in web", message_thread_id=thread)
    tg.close_topic(USER, thread)
    tg.send(USER, "closed now", message_thread_id=thread)  # the user's own chat: still theirs
    tg.close_topic(USER, thread, closed=False)
    updates = await _updates(bot)
    created, text, closed, late, reopened = (u.message for u in updates)
    assert created.forum_topic_created.name == "web" and created.message_thread_id == thread
    assert (text.text, text.message_thread_id, text.is_topic_message) == ("in web", thread, True)
    assert (late.text, late.message_thread_id) == ("closed now", thread)
    assert closed.forum_topic_closed is not None and reopened.forum_topic_reopened is not None
    tg.delete_topic(USER, thread)
    assert tg.topics(USER)[0]["deleted"] is True
    assert tg.topic_chat(USER, thread) == []
    with pytest.raises(SandboxError, match="no topic"):
        tg.send(USER, "gone", message_thread_id=thread)
    assert await _updates(bot, offset=updates[-1].update_id + 1) == []  # no update for a deletion


async def test_users_may_not_make_topics_unless_the_bot_allows():
    with TelegramSandbox(has_topics_enabled=True) as strict:
        with pytest.raises(SandboxError, match="does not allow") as err:
            strict.create_topic(USER, "mine")
        assert err.value.status == 403
        async with Bot(**strict.bot_kwargs) as b:
            assert (await b.create_forum_topic(USER, "the bot's")).name == "the bot's"
    assert _gone(strict.pid)


# ------------------------------------------------------------------------------- drafts


async def test_draft_lifecycle_history_and_replacement_by_a_message(bot, tg):
    assert await bot.send_message_draft(USER, 1, "")  # 10.0: "Thinking…"
    assert await bot.send_message_draft(USER, 1, "Hel")
    assert await bot.send_message_draft(USER, 1, "<b>Hello</b>", parse_mode="HTML")
    [draft] = tg.drafts(USER)
    assert [h["text"] for h in draft["history"]] == ["", "Hel", "Hello"]
    assert draft["entities"] == [{"type": "bold", "offset": 0, "length": 5}]
    assert draft["shown"] and draft["ended"] is None
    times = [h["time"] for h in draft["history"]]
    assert times == sorted(times)
    assert tg.chat(USER) == []  # a draft is no message
    await bot.send_message(USER, "Hello")
    [draft] = tg.drafts(USER)
    assert (draft["shown"], draft["ended"]) == (False, "message")


async def test_draft_rules(bot):
    with pytest.raises(BadRequest, match="(?i)message is too long"):
        await bot.send_message_draft(USER, 1, "a" * 4097)
    with pytest.raises(BadRequest, match="(?i)draft_id must be non-zero"):
        await bot.send_message_draft(USER, 0, "zero")
    with pytest.raises(BadRequest, match="(?i)can't parse entities"):
        await bot.send_message_draft(USER, 1, "<b>open", parse_mode="HTML")
    assert await bot.send_message_draft(USER, 1, "a" * 4096)


async def test_drafts_are_per_topic_and_expire_after_30_seconds(bot, tg):
    thread = (await bot.create_forum_topic(USER, "api")).message_thread_id
    await bot.send_message_draft(USER, 5, "main chat")
    await bot.send_message_draft(USER, 5, "in topic", message_thread_id=thread)
    await bot.send_message(USER, "answer in the topic", message_thread_id=thread)
    assert [(d["text"], d["ended"]) for d in tg.drafts(USER, thread)] == [("in topic", "message")]
    assert [(d["text"], d["ended"]) for d in tg.drafts(USER, 0)] == [("main chat", None)]
    tg.advance_clock(29)
    await bot.send_message_draft(USER, 5, "main chat, changed")  # a change restarts the time
    tg.advance_clock(29.5)
    assert tg.drafts(USER, 0)[0]["shown"]
    tg.advance_clock(1)
    [draft] = tg.drafts(USER, 0)
    assert (draft["shown"], draft["ended"]) == (False, "expired")


async def test_stop_button_sends_stopped_message_generation(bot, tg):
    thread = (await bot.create_forum_topic(USER, "api")).message_thread_id
    await bot.do_api_request(
        "sendMessageDraft",
        api_kwargs={"chat_id": USER, "draft_id": 9, "text": "long answer",
                    "message_thread_id": thread, "can_stop": True},
    )  # fmt: skip
    with pytest.raises(SandboxError, match="no draft"):
        tg.stop_draft(USER, 9)  # not in the main chat
    tg.stop_draft(USER, 9, message_thread_id=thread)
    [update] = await _updates(bot)
    stopped = update.api_kwargs["stopped_message_generation"]
    assert stopped == {
        "chat": {"id": USER, "type": "private", "first_name": f"User {USER}"},
        "message_thread_id": thread,
        "draft_id": 9,
    }
    [draft] = tg.drafts(USER, thread)
    assert draft["stopped"] and not draft["shown"]  # no keep_on_stop: it went
    assert await bot.send_message_draft(USER, 9, "more", message_thread_id=thread)
    [draft] = tg.drafts(USER, thread)
    assert draft["text"] == "long answer" and draft["history"][-1]["ignored"]


async def test_keep_on_stop_and_drafts_without_a_stop_button(bot, tg):
    await bot.send_message_draft(USER, 2, "no button")
    with pytest.raises(SandboxError, match="can_stop"):
        tg.stop_draft(USER, 2)
    await bot.do_api_request(
        "sendMessageDraft",
        api_kwargs={"chat_id": USER, "draft_id": 3, "text": "kept", "can_stop": True,
                    "keep_on_stop": True},
    )  # fmt: skip
    tg.stop_draft(USER, 3)
    kept = next(d for d in tg.drafts(USER) if d["draft_id"] == 3)
    assert kept["stopped"] and kept["shown"]
    with pytest.raises(SandboxError, match="no draft"):
        tg.stop_draft(USER, 3)  # stopped once: the button is gone


async def test_allowed_updates_filters_stopped_message_generation(bot, tg):
    await bot.get_updates(timeout=0, allowed_updates=["message"])
    await bot.do_api_request(
        "sendMessageDraft",
        api_kwargs={"chat_id": USER, "draft_id": 4, "text": "x", "can_stop": True},
    )
    tg.stop_draft(USER, 4)
    tg.send(USER, "a message")
    [update] = await _updates(bot, allowed_updates=["message"])
    assert update.message.text == "a message"
    # like Telegram, a new allowed_updates applies to updates made after the call
    after = update.update_id + 1
    assert await _updates(bot, offset=after, allowed_updates=["stopped_message_generation"]) == []
    await bot.do_api_request(
        "sendMessageDraft",
        api_kwargs={"chat_id": USER, "draft_id": 5, "text": "y", "can_stop": True},
    )
    tg.stop_draft(USER, 5)
    tg.send(USER, "filtered out")
    [update] = await _updates(bot, offset=after)
    assert update.api_kwargs["stopped_message_generation"]["draft_id"] == 5


# ------------------------------------------------------------------------------- link previews


async def test_enabled_previews_lists_messages_with_a_url_and_no_disabled_preview(bot, tg):
    await bot.send_message(USER, "no link here")
    shown = await bot.send_message(USER, "see https://example.org/a")
    await bot.send_message(
        USER, "see https://example.org/b", link_preview_options=LinkPreviewOptions(is_disabled=True)
    )
    await bot.do_api_request(
        "sendMessage",
        api_kwargs={"chat_id": USER, "text": "legacy https://example.org/c",
                    "disable_web_page_preview": True},
    )  # fmt: skip
    assert [p["message_id"] for p in tg.enabled_previews(USER)] == [shown.message_id]
    await bot.edit_message_text(
        "see https://example.org/a, quietly",
        USER,
        shown.message_id,
        link_preview_options=LinkPreviewOptions(is_disabled=True),
    )
    assert tg.enabled_previews() == []
    by_id = {m["message_id"]: m for m in tg.chat(USER)}
    assert by_id[shown.message_id]["link_preview"] == {"is_disabled": True}
