"""The permission prompts Claude is waiting on: open, answered, granted, timed out, withdrawn or
dropped with their turn; and the session's grants.

Claude asks (a `can_use_tool` control request) before a tool runs; `Prompts.ask` answers at once
for a request the session's grants cover (session_worker.grants: every part of a Bash command
must match one), else opens a `PendingPrompt` with a deadline and sends the bot a
PermissionRequest carrying the whole input and the rule "allow for this session" would grant.
Grants live in session.db, so they outlast a worker restart; ListGrants/RevokeGrant read and
withdraw them. Every prompt that closes, however it closes, sends one PermissionResolved to the
chat and the message it was asked for.

It must never leave a prompt open after its turn, never answer the CLI for the user except by a
grant the user gave or a timeout's denial, and never approve an input other than the one the
PermissionRequest showed.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from session_worker import grants, notices, stream_json
from session_worker.grants import Rule
from session_worker.translate import PermissionAsk
from wire import messages as m

log = logging.getLogger(__name__)

# Claude reads this when its request could not be shown to the user exactly as it would run.
UNSHOWABLE = ("Switchboard could not show this tool input to the user exactly as it would run,"
              " so it was denied; try a simpler input.")

# Writes one line to the current CLI; False when there is none to take it.
Send = Callable[[bytes], Awaitable[bool]]
# Sends one event to a given chat and message.
Publish = Callable[[m.EventBody, int | None, str], None]




class GrantStore(Protocol):
    """Where grants are kept (session_worker.store.Store)."""

    def add_grant(self, tool: str, spec: str) -> int: ...
    def grants(self) -> list[tuple[int, str, str]]: ...
    def remove_grant(self, grant_id: int) -> bool: ...


class MemoryGrants:
    """Grants kept in memory only (tests, and a worker without a store)."""

    def __init__(self) -> None:
        self._rows: dict[int, tuple[str, str]] = {}

    def add_grant(self, tool: str, spec: str) -> int:
        for gid, row in self._rows.items():
            if row == (tool, spec):
                return gid
        gid = max(self._rows, default=0) + 1
        self._rows[gid] = (tool, spec)
        return gid

    def grants(self) -> list[tuple[int, str, str]]:
        return [(gid, t, s) for gid, (t, s) in sorted(self._rows.items())]

    def remove_grant(self, grant_id: int) -> bool:
        return self._rows.pop(grant_id, None) is not None


@dataclass
class PendingPrompt:
    tool_name: str
    tool_input: dict[str, Any]  # exactly what the PermissionRequest showed
    deadline: float
    chat_id: int | None
    key: str
    rule: Rule | None = None  # what "allow for this session" grants


class Prompts:
    def __init__(
        self,
        timeout_seconds: float,
        send: Send,
        publish: Publish,
        clock: Callable[[], float] = time.monotonic,
        *,
        store: GrantStore | None = None,
        cwd: str = "/",
    ) -> None:
        self.timeout_seconds = timeout_seconds
        self._send = send
        self._publish = publish
        self._clock = clock
        self._store: GrantStore = store if store is not None else MemoryGrants()
        self._cwd = cwd
        self.open: dict[str, PendingPrompt] = {}

    def rules(self) -> list[Rule]:
        return [Rule(tool, spec) for _, tool, spec in self._store.grants()]

    def __bool__(self) -> bool:
        """True while Claude waits on the user (the hang timer does not run then)."""
        return bool(self.open)

    async def ask(self, ask: PermissionAsk, chat_id: int | None, key: str) -> None:
        shown = _shown_input(ask)
        if shown is None:
            # What the user would see is not what Claude would run: refuse rather than guess.
            log.warning("event=permission_input_mismatch tool=%s", ask.tool_name)
            await self._send(stream_json.permission_line(
                ask.request_id, False, {}, UNSHOWABLE))
            return
        if grants.allowed(self.rules(), ask.tool_name, shown, self._cwd):
            await self._send(stream_json.permission_line(ask.request_id, True, shown, ""))
            log.info("event=permission_granted_by_rule tool=%s", ask.tool_name)
            return
        rule = grants.rule_for(ask.tool_name, shown, self._cwd)
        self.open[ask.request_id] = PendingPrompt(
            tool_name=ask.tool_name,
            tool_input=shown,
            deadline=self._clock() + self.timeout_seconds,
            chat_id=chat_id,
            key=key,
            rule=rule,
        )
        self._publish(
            m.PermissionRequest(
                prompt_id=ask.request_id,
                tool_name=ask.tool_name,
                summary=ask.summary,
                input_json=ask.input_json,
                timeout_seconds=self.timeout_seconds,
                grant=rule.text if rule else "",
                grant_label=rule.label if rule else "",
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
        if msg.allow and msg.always and prompt.rule is not None:
            self._store.add_grant(prompt.rule.tool, prompt.rule.spec)
            log.info("event=grant_added rule=%s", prompt.rule.text)
            reason = reason or f"{prompt.rule.label} allowed for the rest of this session"
        if await self.answer(msg.prompt_id, msg.allow, msg.message, reason):
            return m.Ok(id=msg.id)
        return m.Error(
            id=msg.id,
            code=m.E_STATE,
            message="Claude stopped before the answer reached it; send your message again.",
        )

    def list_grants(self, msg: m.ListGrants) -> m.Ok:
        infos = [m.GrantInfo(id=gid, rule=Rule(t, sp).text, label=Rule(t, sp).label)
                 for gid, t, sp in self._store.grants()]
        return m.Ok(id=msg.id, result=m.GrantsResult(grants=infos))

    def revoke(self, msg: m.RevokeGrant) -> m.Ok | m.Error:
        if self._store.remove_grant(msg.grant_id):
            log.info("event=grant_revoked id=%d", msg.grant_id)
            return m.Ok(id=msg.id)
        return m.Error(id=msg.id, code=m.E_STATE,
                       message="That grant is already gone: /permissions lists the current ones.")

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


def _shown_input(ask: PermissionAsk) -> dict[str, Any] | None:
    """The input the PermissionRequest shows, parsed back; None unless it is the input Claude
    sent, whole."""
    try:
        shown = json.loads(ask.input_json)
    except ValueError:
        return None
    return shown if isinstance(shown, dict) and shown == ask.input else None
