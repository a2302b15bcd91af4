"""The test's side of the sandbox Telegram's newer features (Bot API 9.3-10.3), mixed into
:class:`sandbox.telegram_api.TelegramSandbox`: a user's topics, the bot's drafts and the Stop
button, the draft clock, and the link previews the bot's messages would show.

Standard library only (through ``_request``); it must never reach the server's state directly.
"""

from __future__ import annotations

from typing import Any


class TopicsAndDrafts:
    """``tg.create_topic(user, "api")`` acts as the user; ``tg.drafts(chat)`` reads the drafts."""

    def _request(
        self,
        verb: str,
        path: str,
        body: dict[str, Any] | None = None,
        query: dict[str, Any] | None = None,
    ) -> Any:
        raise NotImplementedError

    # ------------------------------------------------------------------------ topics

    def create_topic(
        self,
        user_id: int,
        name: str,
        chat_id: int | None = None,
        *,
        icon_color: int | None = None,
        token: str | None = None,
    ) -> dict[str, Any]:
        """The user makes a topic (when the bot allows it, or in a forum): ``{topic, message,
        update}``, the update carrying ``forum_topic_created``."""
        body = {"user_id": user_id, "chat_id": chat_id, "name": name, "icon_color": icon_color,
                "token": token}  # fmt: skip
        return self._request("POST", "create_topic", body)

    def close_topic(
        self,
        user_id: int,
        message_thread_id: int,
        chat_id: int | None = None,
        *,
        closed: bool = True,
        token: str | None = None,
    ) -> dict[str, Any]:
        """The user closes (or, ``closed=False``, reopens) a topic: ``{message, update}``."""
        body = {"user_id": user_id, "chat_id": chat_id, "message_thread_id": message_thread_id,
                "closed": closed, "token": token}  # fmt: skip
        return self._request("POST", "close_topic", body)

    def delete_topic(
        self,
        user_id: int,
        message_thread_id: int,
        chat_id: int | None = None,
        *,
        token: str | None = None,
    ) -> dict[str, Any]:
        """The user deletes a topic and its messages (the bot gets no update for it)."""
        body = {"user_id": user_id, "chat_id": chat_id, "message_thread_id": message_thread_id,
                "token": token}  # fmt: skip
        return self._request("POST", "delete_topic", body)

    def topics(self, chat_id: int, *, token: str | None = None) -> list[dict[str, Any]]:
        """The chat's topics: ForumTopic fields plus ``closed`` and ``deleted``."""
        return self._request("GET", "topics", query={"chat_id": chat_id, "token": token})

    def topic_chat(
        self, chat_id: int, thread: int, *, deleted: bool = False, token: str | None = None
    ) -> list[dict[str, Any]]:
        """One topic's messages as the user sees them (``thread=0``: those outside topics)."""
        query = {"deleted": int(deleted), "content": 0, "thread": thread, "token": token}
        return self._request("GET", f"chat/{chat_id}", query=query)

    # ------------------------------------------------------------------------ drafts

    def drafts(
        self, chat_id: int, thread: int | None = None, *, token: str | None = None
    ) -> list[dict[str, Any]]:
        """Every draft of the chat (or one topic) since the reset, with ``shown``, ``ended``
        ("message", "expired", "topic_deleted") and ``history`` (``{text, entities, time,
        ignored}``)."""
        query = {"chat_id": chat_id, "thread": thread, "token": token}
        return self._request("GET", "drafts", query=query)

    def stop_draft(
        self,
        user_id: int,
        draft_id: int,
        chat_id: int | None = None,
        *,
        message_thread_id: int | None = None,
        token: str | None = None,
    ) -> dict[str, Any]:
        """The user taps Stop on a draft sent with can_stop: ``{update}``, whose
        ``stopped_message_generation`` is ``{chat, message_thread_id?, draft_id}``."""
        body = {"user_id": user_id, "chat_id": chat_id, "draft_id": draft_id,
                "message_thread_id": message_thread_id, "token": token}  # fmt: skip
        return self._request("POST", "stop_draft", body)

    def advance_clock(self, seconds: float, *, token: str | None = None) -> None:
        """Move the bot's draft clock on (a draft expires 30 s after its last change)."""
        self._request("POST", "advance_clock", {"seconds": seconds, "token": token})

    # ------------------------------------------------------------------------ link previews

    def enabled_previews(
        self, chat_id: int | None = None, *, token: str | None = None
    ) -> list[dict[str, Any]]:
        """The bot's messages that show a link preview (a URL and no ``is_disabled``)."""
        return self._request("GET", "previews", query={"chat_id": chat_id, "token": token})
