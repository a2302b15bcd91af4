"""The bot's own getUpdates loop: journal first, confirm after.

Telegram confirms an update only when the next getUpdates asks for a later offset. Each update
from an allowed user is written to bot.db (and the file fsynced, in a thread while its handler
already runs) before that next call, so a kill -9 at any moment
leaves it either unconfirmed (Telegram sends it again; the journal drops the repeat) or
journaled (the restarted bot runs what is not marked done). Strangers' updates go straight to
the gate, which refuses them; they are never written anywhere.

Every journaled update is marked done once its handler ran, whether it answered or failed (PTB
hands a handler's exception to bot.app's error handler). One that never finishes because it
took the bot down with it is counted as it starts, and a restarted bot gives it up after
`MAX_UPDATE_STARTS` instead of running it at every start.

Updates run in one lane per chat: in order within a chat, and a slow command in one chat never
holds up another.
"""
from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from telegram import Update
from telegram.error import Conflict, InvalidToken, NetworkError, RetryAfter, TelegramError
from telegram.ext import Application

from bot import place, startup
from bot.gate import Gate
from bot.journal import MAX_UPDATE_STARTS, Journal
from bot.stops import stopper_id

log = logging.getLogger(__name__)

ALLOWED_UPDATES = ["message", "edited_message", "callback_query", "my_chat_member",
                   "stopped_message_generation"]
STRANGERS = "strangers"
MAX_BACKOFF = 30.0


def chat_key(update: Update) -> int | None:
    """The chat an update belongs to (a Stop on a draft names only its chat)."""
    chat = update.effective_chat
    if chat is not None:
        return chat.id
    user = update.effective_user
    return user.id if user is not None else stopper_id(update)


class Poller:
    def __init__(self, app: Application[Any, Any, Any, Any, Any, Any], journal: Journal,
                 gate: Gate, timeout: int) -> None:
        self.app = app
        self.journal = journal
        self.gate = gate
        self.timeout = timeout
        self._lanes: dict[object, asyncio.Queue[tuple[Update, bool, bool]]] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def dispatch(self, update: Update, journaled: bool, counted: bool = False) -> None:
        """Run the update in its chat's lane; `counted`: its start is in the journal already."""
        if not journaled:
            key: object = STRANGERS
        else:
            key = chat_key(update) or 0
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = asyncio.Queue()
            self._tasks.append(asyncio.get_running_loop().create_task(
                self._lane(lane), name=f"lane-{key}"))
        lane.put_nowait((update, journaled, counted))

    async def _lane(self, lane: asyncio.Queue[tuple[Update, bool, bool]]) -> None:
        while True:
            update, journaled, counted = await lane.get()
            if journaled and not counted:
                self.journal.mark_started(update.update_id)
            try:
                with place.in_thread(place.thread_of(update)):  # replies land where it was sent
                    await self.app.process_update(update)
            except Exception:
                log.exception("event=update_failed update_id=%s", update.update_id)
            if journaled:
                self.journal.mark_done(update.update_id)

    def resume(self) -> int | None:
        """Run what a previous run journaled but did not finish; the offset to poll from."""
        for update_id, body in self.journal.unfinished_updates():
            if self.journal.starts(update_id) >= MAX_UPDATE_STARTS:
                log.warning("event=update_given_up update_id=%d starts=%d", update_id,
                            self.journal.starts(update_id))
                self.journal.mark_done(update_id)
                continue
            try:
                update = Update.de_json(json.loads(body), self.app.bot)
            except Exception:
                log.exception("event=journal_bad_update update_id=%d", update_id)
                self.journal.mark_done(update_id)
                continue
            log.info("event=update_resumed update_id=%d", update_id)
            self.dispatch(update, journaled=True)
        last = self.journal.last_update_id()
        return None if last is None else last + 1

    async def run(self) -> None:
        offset = self.resume()
        backoff = 0.5
        polls = 0
        try:
            while True:
                try:
                    updates = await self.app.bot.get_updates(
                        offset=offset, timeout=self.timeout, allowed_updates=ALLOWED_UPDATES)
                except InvalidToken:
                    raise SystemExit("Telegram refused the bot token: check the token in the"
                                     " config (telegram.token or its environment variable)."
                                     ) from None
                except Conflict:
                    log.warning("event=poll_conflict hint='another process polls this bot'")
                    await asyncio.sleep(backoff)
                    backoff = min(MAX_BACKOFF, backoff * 2)
                    continue
                except RetryAfter as exc:  # Telegram said how long: wait exactly that
                    wait = startup.retry_after_seconds(exc)
                    log.warning("event=poll_flood_control delay=%.1f", wait)
                    await asyncio.sleep(wait)
                    continue
                except (NetworkError, TelegramError) as exc:  # refused, timed out, 5xx: back off
                    log.warning("event=poll_failed error=%r delay=%.1f", str(exc), backoff)
                    await asyncio.sleep(backoff)
                    backoff = min(MAX_BACKOFF, backoff * 2)
                    continue
                backoff = 0.5
                journaled = False
                for update in updates:
                    offset = update.update_id + 1
                    if self.gate.allowed(update):
                        body = json.dumps(update.to_dict())  # api_kwargs (a Stop) too
                        # Counted as started in the same write: a new update's start needs
                        # no second fsync (a repeat of a stored one is counted in its lane).
                        journaled = True
                        if self.journal.record_update(update.update_id, chat_key(update), body,
                                                      starts=1):
                            self.dispatch(update, journaled=True,
                                          counted=self.journal.last_insert_new)
                    else:
                        self.dispatch(update, journaled=False)
                if journaled:  # durable before the next getUpdates confirms it; its handler
                    await asyncio.to_thread(self.journal.sync)  # runs meanwhile
                polls += 1
                if polls % 100 == 0:
                    self.journal.prune_updates()
                    self.journal.prune_prompts()
        finally:
            for t in self._tasks:
                t.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
