"""A SIGHUP reaching the running bot: apply the settings the supervisor sent in `Reload`.

The supervisor sends the bot its whole BotSettings as the new config makes them; this applies
the fields that can change while the bot runs (the allow-list first: a user taken off it is a
stranger at their next update, one added is let in) and answers `Ok`. It must never apply what
needs a restart (the Telegram base URL, the state and runtime dirs: the bot was built on them;
`switchboard check-config` names them), and never log a user's text or the token.
"""
from __future__ import annotations

import copy
import logging

import msgspec

from bot.delivery import Delivery
from bot.gate import Gate
from bot.poller import Poller
from wire import messages as m
from wire.settings import BotSettings

log = logging.getLogger(__name__)

# The fields of BotSettings a running bot takes from a reload; the rest need a restart.
LIVE = ("allowed_user_ids", "edit_interval_seconds", "file_threshold_chars",
        "preview_over_chars", "poll_timeout_seconds", "default_persona", "drafts",
        "draft_interval_seconds")


def changed_fields(old: BotSettings, new: BotSettings) -> list[str]:
    return [f for f in LIVE if getattr(old, f) != getattr(new, f)]


class Reloader:
    """Applies a Reload to the parts of the running bot that hold a reloadable setting."""

    def __init__(self, settings: BotSettings, gate: Gate, delivery: Delivery,
                 poller: Poller) -> None:
        self.settings = settings  # the object every part reads: changed in place
        self.gate = gate
        self.delivery = delivery
        self.poller = poller

    def __call__(self, msg: m.Reload) -> m.Ok | m.Error:
        try:
            new = msgspec.json.decode(msg.settings_json, type=BotSettings)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.error("event=reload_bad_settings error=%r", str(exc))
            return m.Error(id=msg.id, code=m.E_BAD_REQUEST,
                           message=f"the bot cannot read its new settings ({exc}): restart it.")
        changed = changed_fields(self.settings, new)
        for f in changed:
            setattr(self.settings, f, copy.copy(getattr(new, f)))
        self.gate.allow(self.settings.allowed_user_ids)
        self.poller.timeout = self.settings.poll_timeout_seconds
        # Every chat's edit throttle, not only the ones made from now on.
        for throttle in self.delivery._throttles.values():  # noqa: SLF001 - its one reader
            throttle.interval = self.settings.edit_interval_seconds
        log.info("event=reloaded changed=%s allowed_users=%d", ",".join(changed) or "-",
                 len(self.gate.allowed_ids))
        return m.Ok(id=msg.id)
