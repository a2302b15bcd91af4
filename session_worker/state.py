"""The session's own facts, each held in exactly one place: its status, the Claude session id,
and what the session has cost so far.

`SessionState` is their only owner. Its setters log the change and write it out where it is
kept on disk: the status and the Claude session id to `metadata.json` (name, created,
last_active, persona, pid, status, claude_session_id; written atomically), the Claude session
id also to the store's kv (it survives a lost metadata.json), the cost to the store's usage
table. Everyone else (the CLI's argv, the Pong stats, each TurnResult's footer) reads them here.

It must never keep a second copy of any of them, and never raise on a metadata write: a full
disk is logged, the session goes on.
"""

from __future__ import annotations

import datetime
import enum
import json
import logging
import os
from pathlib import Path

from session_worker.store import Store, read_json, write_json_atomic

log = logging.getLogger(__name__)

_SID_KEY = "claude_session_id"
_MODEL_KEY = "model"  # the model /model chose ("" = the persona's)
_HISTORY_KEY = "history"  # JSON list of {"id", "started", "ended"}: earlier Claude sessions
HISTORY_MAX = 50


class Status(enum.Enum):
    RUNNING = "running"  # the worker is up (its CLI warm, or started on the next message)
    SUSPENDED = "suspended"  # the CLI was stopped while idle; the next message resumes it
    STOPPED = "stopped"  # the worker has stopped


class SessionState:
    def __init__(self, name: str, persona: str, meta_path: Path, store: Store) -> None:
        self.name = name
        self.persona = persona
        self.meta_path = meta_path
        self._store = store
        meta = read_json(meta_path)
        self.created = str(meta.get("created") or now_iso())
        from_meta = meta.get(_SID_KEY)
        self._claude_session_id: str | None = (
            store.get(_SID_KEY) or (from_meta if isinstance(from_meta, str) else None) or None
        )
        self._cost_usd = store.total_cost()
        self._status = Status.RUNNING

    # ------------------------------------------------------------------- status

    @property
    def status(self) -> Status:
        return self._status

    def set_status(self, status: Status) -> None:
        """The one place the session's status changes; metadata.json follows it."""
        if status is not self._status:
            log.info("event=status from=%s to=%s", self._status.value, status.value)
        self._status = status
        self.write_meta()

    # ------------------------------------------------------------------- Claude session id

    @property
    def claude_session_id(self) -> str | None:
        return self._claude_session_id

    def set_claude_session_id(self, sid: str) -> None:
        """The CLI told us its session id: --resume uses it from now on."""
        if sid == self._claude_session_id:
            return
        log.info("event=claude_session_id id=%s", sid)
        self._claude_session_id = sid
        self._store.put(_SID_KEY, sid)
        self._store.put("sid_started", now_iso())
        self.write_meta()

    def forget_claude_session_id(self) -> None:
        """The conversation could not be resumed: the next CLI starts a new one."""
        self._claude_session_id = None
        self._store.put(_SID_KEY, "")
        self.write_meta()

    def start_fresh(self) -> str | None:
        """/clear: the next CLI starts a new conversation; the old id goes to the history.
        Returns the old id (None when there was none)."""
        old = self._claude_session_id
        if old:
            entries = self.history()
            entries.append({"id": old, "started": self._store.get("sid_started") or "",
                            "ended": now_iso()})
            self._store.put(_HISTORY_KEY, json.dumps(entries[-HISTORY_MAX:]))
        log.info("event=fresh_conversation old=%s", old)
        self.forget_claude_session_id()
        return old

    def history(self) -> list[dict[str, str]]:
        """The session's earlier Claude session ids, oldest first."""
        try:
            raw = json.loads(self._store.get(_HISTORY_KEY) or "[]")
        except ValueError:
            return []
        return [e for e in raw if isinstance(e, dict) and isinstance(e.get("id"), str)] \
            if isinstance(raw, list) else []

    # ------------------------------------------------------------------- model

    @property
    def model_override(self) -> str:
        """The model /model chose for this session ("" = the persona's)."""
        return self._store.get(_MODEL_KEY) or ""

    def set_model_override(self, model: str) -> None:
        log.info("event=model_override model=%s", model or "-")
        self._store.put(_MODEL_KEY, model)

    # ------------------------------------------------------------------- cost

    @property
    def cost_usd(self) -> float:
        return self._cost_usd

    def add_turn_cost(self, key: str, cost_usd: float, duration_ms: int, num_turns: int) -> float:
        """Record one finished turn; returns the session's total so far."""
        self._cost_usd += cost_usd
        self._store.add_usage(key, cost_usd, duration_ms, num_turns)
        return self._cost_usd

    # ------------------------------------------------------------------- metadata.json

    def write_meta(self) -> None:
        data = {
            "name": self.name,
            "created": self.created,
            "last_active": now_iso(),
            "persona": self.persona,
            "pid": os.getpid(),
            "status": self._status.value,
            "claude_session_id": self._claude_session_id,
        }
        try:
            write_json_atomic(self.meta_path, data)
        except OSError as exc:
            log.error("event=metadata_write_failed error=%r", str(exc))


def now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
