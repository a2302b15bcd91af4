"""The permission prompts Claude is waiting on: open, answered, always allowed, timed out,
withdrawn or dropped with their turn.

Claude asks (a `can_use_tool` control request) before a tool runs; `Prompts.ask` answers at once
for a tool the user allowed for the rest of the session, else opens a `PendingPrompt` with a
deadline and sends the bot a PermissionRequest. Every prompt that closes, however it closes,
sends one PermissionResolved to the chat and the message it was asked for.

It must never leave a prompt open after its turn, and never answer the CLI for the user except
by an always-allow the user gave or a timeout's denial.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from session_worker import notices, stream_json
from session_worker.translate import PermissionAsk
from wire import messages as m

log = logging.getLogger(__name__)

# Writes one line to the current CLI; False when there is none to take it.
Send = Callable[[bytes], Awaitable[bool]]
# Sends one event to a given chat and message.
Publish = Callable[[m.EventBody, int | None, str], None]


@dataclass
class PendingPrompt:
    tool_name: str
    tool_input: dict[str, Any]
    deadline: float
    chat_id: int | None
    key: str


class Prompts:
    def __init__(
        self,
        timeout_seconds: float,
        send: Send,
        publish: Publish,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.timeout_seconds = timeout_seconds
        self._send = send
        self._publish = publish
        self._clock = clock
        self.open: dict[str, PendingPrompt] = {}
        self.always_allow: set[str] = set()

    def __bool__(self) -> bool:
        """True while Claude waits on the user (the hang timer does not run then)."""
        return bool(self.open)

    async def ask(self, ask: PermissionAsk, chat_id: int | None, key: str) -> None:
        if ask.tool_name in self.always_allow:
            await self._send(stream_json.permission_line(ask.request_id, True, ask.input, ""))
            log.info("event=permission_always_allowed tool=%s", ask.tool_name)
            return
        self.open[ask.request_id] = PendingPrompt(
            tool_name=ask.tool_name,
            tool_input=ask.input,
            deadline=self._clock() + self.timeout_seconds,
            chat_id=chat_id,
            key=key,
        )
        self._publish(
            m.PermissionRequest(
                prompt_id=ask.request_id,
                tool_name=ask.tool_name,
                summary=ask.summary,
                input_json=ask.input_json,
                timeout_seconds=self.timeout_seconds,
            ),
            chat_id,
            key,
        )

    async def reply_to(self, msg: m.PermissionAnswer) -> m.Ok | m.Error:
        """The user's answer from the bot; the reply says whether it reached Claude."""
        prompt = self.open.get(msg.prompt_id)
        if prompt is None:
            return m.Error(
                id=msg.id,
                code=m.E_STATE,
                message="That permission prompt is no longer waiting"
                " (it was answered, timed out or its turn ended).",
            )
        reason = msg.message
        if msg.allow and msg.always:
            self.always_allow.add(prompt.tool_name)
            reason = reason or f"{prompt.tool_name} allowed for the rest of this session"
        if await self.answer(msg.prompt_id, msg.allow, msg.message, reason):
            return m.Ok(id=msg.id)
        return m.Error(
            id=msg.id,
            code=m.E_STATE,
            message="Claude stopped before the answer reached it; send your message again.",
        )

    async def answer(self, prompt_id: str, allow: bool, message: str, reason: str) -> bool:
        """Close one prompt with an answer to the CLI; False if it was not open or the CLI is
        gone."""
        prompt = self.open.pop(prompt_id, None)
        if prompt is None:
            return False
        line = stream_json.permission_line(prompt_id, allow, prompt.tool_input, message)
        sent = await self._send(line)
        self._resolved(prompt_id, prompt, allow, reason)
        log.info(
            "event=permission_answered tool=%s allow=%s sent=%s", prompt.tool_name, allow, sent
        )
        return sent

    async def expire(self) -> None:
        """Deny every prompt whose deadline passed."""
        now = self._clock()
        for pid, prompt in list(self.open.items()):
            if now >= prompt.deadline:
                log.info("event=permission_timeout tool=%s", prompt.tool_name)
                msg = notices.permission_timeout(self.timeout_seconds)
                await self.answer(pid, False, msg, "timeout")

    def withdrawn(self, prompt_id: str) -> None:
        """Claude cancelled its own request."""
        prompt = self.open.pop(prompt_id, None)
        if prompt is not None:
            self._resolved(prompt_id, prompt, False, "withdrawn by Claude")

    def drop_all(self, reason: str) -> None:
        for pid, prompt in list(self.open.items()):
            del self.open[pid]
            self._resolved(pid, prompt, False, reason)

    def _resolved(self, prompt_id: str, prompt: PendingPrompt, allowed: bool, reason: str) -> None:
        self._publish(
            m.PermissionResolved(prompt_id=prompt_id, allowed=allowed, reason=reason),
            prompt.chat_id,
            prompt.key,
        )
