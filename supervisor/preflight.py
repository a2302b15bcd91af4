"""What `switchboard run`, `check-config` and a SIGHUP reload accept: one load, one set of checks.

The config (every field, supervisor.config), its personas checked against it
(supervisor.personas.load_for), its projects on disk (supervisor.projects.problems) and, for a
start or a reload, a bot token when the bot is on: a config one of them takes, all of them take.
`doctor` reports the same refusals check by check. Refusing is all it does: it starts nothing and
writes nothing.
"""
from __future__ import annotations

from pathlib import Path

from supervisor import config as config_mod
from supervisor import personas as personas_mod
from supervisor import projects as projects_mod
from supervisor.config import Config
from wire.messages import Persona


class Refused(Exception):
    """A config that must not run; `detail` for the log, `report()` for a terminal."""

    def __init__(self, detail: str, report: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self._report = report

    def report(self) -> str:
        return self._report


def load(path: str | Path, *, to_run: bool) -> tuple[Config, dict[str, Persona]]:
    """The config at `path` and its personas, or Refused naming every wrong field. `to_run`:
    also refuse an enabled bot without a token (`check-config` only validates the files)."""
    try:
        cfg = config_mod.load(path)
        personas = personas_mod.load_for(cfg)
        if found := projects_mod.problems(cfg, personas):
            raise config_mod.ConfigError(cfg.path, found)
    except config_mod.ConfigError as exc:
        raise Refused(str(exc), exc.report()) from None
    except personas_mod.PersonaError as exc:
        raise Refused(str(exc), f"personas: {exc}") from None
    missing = cfg.missing_token() if to_run else None
    if missing:
        raise Refused(missing, f"{missing}: export the bot token, or set"
                      " telegram.enabled = false.")
    return cfg, personas
