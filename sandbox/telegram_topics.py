"""Forum topics in the sandbox Telegram: in forum supergroups (Bot API 6.3) and in a private chat
with a bot whose topic mode is on (9.3; users may make and delete topics there when the bot
allows it, 9.4).

- the Bot API methods createForumTopic, editForumTopic, closeForumTopic, reopenForumTopic and
  deleteForumTopic (``TOPIC_METHODS``), each posting the service message Telegram posts;
- :func:`send_thread`: the ``message_thread_id`` of every send method, checked;
- the test's side: a user creates, closes, reopens or deletes a topic; the topics of a chat.

A topic's id is the message_id of its ``forum_topic_created`` service message, as on Telegram.

Errors, where the Bot API documentation is silent, are what Telegram answers as far as is known:
"message thread not found" (a send into a thread that is no topic), "TOPIC_CLOSED" (a send into a
closed topic), "TOPIC_ID_INVALID" (a topic method on an id that is no topic), "TOPIC_NOT_MODIFIED"
(closing a closed topic, an edit that changes nothing), "the chat is not a forum" (topics where
there are none), "TOPIC_TITLE_EMPTY" / "TOPIC_TITLE_TOO_LONG" (a name outside 1-128 characters).
The sandbox has no admin rights: a bot may manage every topic, and nobody writes into a closed
one (in a real forum an admin may), except the user into the topics of their private chat with
the bot, which are theirs as a forum's are its admins'. This module must never touch a message
outside topics.
"""

from __future__ import annotations

from typing import Any

from sandbox.telegram_params import Params, send_chat
from sandbox.telegram_state import ApiError, BotState, Chat, Message, Topic, bad
from sandbox.telegram_users import int_field, required_int, user_chat

# the colours Telegram allows for a topic's icon (ForumTopic.icon_color, RGB)
ICON_COLORS = (0x6FB9F0, 0xFFD67E, 0xCB86DB, 0x8EEE98, 0xFF93B2, 0xFB6F5F)
MAX_TOPIC_NAME = 128


def has_topics(bot: BotState, chat: Chat) -> bool:
    return chat.is_forum or (chat.type == "private" and bot.has_topics_enabled)


def send_thread(chat: Chat, p: Params) -> int | None:
    """The topic a send method targets (None: the chat itself), as Telegram checks it."""
    thread = p.integer("message_thread_id")
    if thread is None:
        return None
    topic = chat.topics.get(thread)
    if topic is None or topic.deleted:
        raise bad("message thread not found")
    if topic.closed:
        raise bad("TOPIC_CLOSED")
    return thread


def check_name(name: Any, *, required: bool) -> str | None:
    if name is None or name == "":
        if required:
            raise bad("TOPIC_TITLE_EMPTY")
        return None
    name = str(name)
    if len(name) > MAX_TOPIC_NAME:
        raise bad("TOPIC_TITLE_TOO_LONG")
    return name


def check_color(raw: int | None) -> int:
    if raw is None:
        return ICON_COLORS[0]  # Telegram picks one when none is given
    if raw not in ICON_COLORS:
        raise bad("TOPIC_ICON_COLOR_INVALID")  # docs: "must be one of" the six
    return raw


def _service(
    bot: BotState, chat: Chat, sender: dict[str, Any], thread: int | None, kind: str, obj: Any
) -> tuple[Message, dict[str, Any] | None]:
    """Post a service message in a topic (a new one: ``thread`` None); a user's is also an
    update for the bot, returned."""
    from_bot = sender["id"] == bot.id
    thread = chat.next_message_id if thread is None else thread
    msg = bot.add_message(
        chat, sender=sender, from_bot=from_bot, service={kind: obj}, thread_id=thread
    )
    if from_bot:  # a bot never gets updates about what it did itself
        return msg, None
    return msg, bot.push_update("message", bot.message_obj(msg))


def create(
    bot: BotState,
    chat: Chat,
    sender: dict[str, Any],
    name: str,
    icon_color: int,
    emoji: str | None,
) -> tuple[Topic, Message, dict[str, Any] | None]:
    created: dict[str, Any] = {"name": name, "icon_color": icon_color}
    if emoji:
        created["icon_custom_emoji_id"] = emoji
    msg, update = _service(bot, chat, sender, None, "forum_topic_created", created)
    topic = Topic(thread_id=msg.message_id, name=name, icon_color=icon_color,
                  icon_custom_emoji_id=emoji or None)  # fmt: skip
    chat.topics[topic.thread_id] = topic
    return topic, msg, update


def set_closed(
    bot: BotState, chat: Chat, sender: dict[str, Any], topic: Topic, closed: bool
) -> tuple[Message, dict[str, Any] | None]:
    if topic.closed == closed:
        raise bad("TOPIC_NOT_MODIFIED")
    topic.closed = closed
    kind = "forum_topic_closed" if closed else "forum_topic_reopened"
    return _service(bot, chat, sender, topic.thread_id, kind, {})


def delete(bot: BotState, chat: Chat, topic: Topic) -> None:
    """The topic goes with every message in it, and the drafts shown there."""
    topic.deleted = True
    for m in chat.messages.values():
        if m.thread_id == topic.thread_id:
            m.deleted = True
    for d in bot.drafts:
        if d.ended is None and (d.chat_id, d.thread_id) == (chat.id, topic.thread_id):
            d.ended = "topic_deleted"


# ---------------------------------------------------------------------------- Bot API methods


def _forum_chat(bot: BotState, p: Params) -> Chat:
    chat = send_chat(bot, p)
    if not has_topics(bot, chat):
        raise bad("the chat is not a forum")
    return chat


def _topic(bot: BotState, p: Params) -> tuple[Chat, Topic]:
    chat = _forum_chat(bot, p)
    thread = p.integer("message_thread_id", missing="invalid message thread identifier specified")
    topic = chat.topics.get(thread)  # type: ignore[arg-type]
    if topic is None or topic.deleted:
        raise bad("TOPIC_ID_INVALID")
    return chat, topic


async def create_forum_topic(bot: BotState, p: Params) -> Any:
    chat = _forum_chat(bot, p)
    name = check_name(p.string("name"), required=True)
    assert name is not None
    color = check_color(p.integer("icon_color"))
    topic, _, _ = create(bot, chat, bot.me(), name, color, p.string("icon_custom_emoji_id"))
    return topic.obj()


async def edit_forum_topic(bot: BotState, p: Params) -> Any:
    chat, topic = _topic(bot, p)
    name = check_name(p.string("name"), required=False)
    emoji = p.values.get("icon_custom_emoji_id")  # "" removes the icon; absent keeps it
    edited: dict[str, Any] = {}
    if name is not None and name != topic.name:
        edited["name"] = topic.name = name
    if emoji is not None and (str(emoji) or None) != topic.icon_custom_emoji_id:
        topic.icon_custom_emoji_id = str(emoji) or None
        edited["icon_custom_emoji_id"] = str(emoji)
    if not edited:
        raise bad("TOPIC_NOT_MODIFIED")
    _service(bot, chat, bot.me(), topic.thread_id, "forum_topic_edited", edited)
    return True


async def close_forum_topic(bot: BotState, p: Params) -> Any:
    chat, topic = _topic(bot, p)
    set_closed(bot, chat, bot.me(), topic, True)
    return True


async def reopen_forum_topic(bot: BotState, p: Params) -> Any:
    chat, topic = _topic(bot, p)
    set_closed(bot, chat, bot.me(), topic, False)
    return True


async def delete_forum_topic(bot: BotState, p: Params) -> Any:
    chat, topic = _topic(bot, p)
    delete(bot, chat, topic)
    return True


TOPIC_METHODS = {
    "createForumTopic": create_forum_topic,
    "editForumTopic": edit_forum_topic,
    "closeForumTopic": close_forum_topic,
    "reopenForumTopic": reopen_forum_topic,
    "deleteForumTopic": delete_forum_topic,
}


# ---------------------------------------------------------------------------- the test's side


def _user_topic_chat(bot: BotState, body: dict[str, Any]) -> tuple[dict[str, Any], Chat]:
    user, chat = user_chat(bot, body)
    if not has_topics(bot, chat):
        raise ApiError(400, f"chat {chat.id} has no topics (a forum, or a bot with topic mode)")
    if chat.type == "private" and not bot.allows_users_to_create_topics:
        raise ApiError(403, "this bot does not allow users to create or delete topics")
    return user, chat


def _user_topic(bot: BotState, body: dict[str, Any]) -> tuple[dict[str, Any], Chat, Topic]:
    user, chat = user_chat(bot, body)
    thread = required_int(body, "message_thread_id")
    topic = chat.topics.get(thread)
    if topic is None or topic.deleted:
        raise ApiError(400, f"no topic {thread} in chat {chat.id}")
    return user, chat, topic


def user_create_topic(bot: BotState, body: dict[str, Any]) -> dict[str, Any]:
    """The user makes a topic: ``{topic, message, update}`` (the forum_topic_created update)."""
    user, chat = _user_topic_chat(bot, body)
    try:
        name = check_name(body.get("name"), required=True)
        color = check_color(int_field(body, "icon_color"))
    except ApiError as exc:
        raise ApiError(
            400, f"a topic name is 1-128 characters, colours one of six: {exc}"
        ) from None
    assert name is not None
    topic, msg, update = create(bot, chat, user, name, color, body.get("icon_custom_emoji_id"))
    return {"topic": topic.obj(), "message": bot.message_obj(msg), "update": update}


def user_close_topic(bot: BotState, body: dict[str, Any]) -> dict[str, Any]:
    """The user closes (``closed`` true, the default) or reopens a topic: the service update."""
    user, chat, topic = _user_topic(bot, body)
    closed = bool(body.get("closed", True))
    if topic.closed == closed:
        raise ApiError(400, f"topic {topic.thread_id} is already {'closed' if closed else 'open'}")
    msg, update = set_closed(bot, chat, user, topic, closed)
    return {"message": bot.message_obj(msg), "update": update}


def user_delete_topic(bot: BotState, body: dict[str, Any]) -> dict[str, Any]:
    """The user deletes a topic and its messages; Telegram sends the bot no update for that."""
    _user_topic_chat(bot, body)
    _, chat, topic = _user_topic(bot, body)
    delete(bot, chat, topic)
    return {"topic": topic.obj()}


def topics_view(bot: BotState, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The topics of a chat, oldest first, with ``closed`` and ``deleted``."""
    chat = bot.chats.get(required_int(body, "chat_id"))
    if chat is None:
        return []
    return [{**t.obj(), "closed": t.closed, "deleted": t.deleted} for t in chat.topics.values()]
