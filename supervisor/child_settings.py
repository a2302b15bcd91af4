"""What each child is handed, derived from the config in one place: one function per kind.

`switchboard run` and every SIGHUP reload spawn through these, so a field of the config reaches
its child the same way every time. The fields a child takes as they are (wire.settings'
CliTuning and BotTuning) are copied by name, so a new one needs no line here; only the fields
that change shape on the way (MB to bytes, the stop budget) are written out. Pure: it reads no
file and never puts the bot token in a settings struct or an environment (it travels through a
pipe whose fd number is all the settings carry, see wire.settings).
"""
from __future__ import annotations

import copy
import os
from typing import Any

import msgspec

from supervisor.backoff import Policy
from supervisor.bot_token import env_file_path
from supervisor.config import Config
from supervisor.program import ProgramConfig
from supervisor.projects import Place
from wire import names, settings
from wire.messages import Persona


def _shared(source: msgspec.Struct, part: type[msgspec.Struct]) -> dict[str, Any]:
    """The fields of `part` as `source` has them (copied: a child's list is not the config's)."""
    return {f: copy.copy(getattr(source, f)) for f in part.__struct_fields__}


# The variable that carried the token to the bot before the pipe did: never handed on.
LEGACY_TOKEN_ENV = "SWITCHBOARD_TELEGRAM_TOKEN"


def child_env(base: dict[str, str], cfg: Config, secrets: tuple[str, ...] = ()) -> dict[str, str]:
    """A copy of our environment without the bot token or anything that could carry it: the
    token's variables by name, and any variable whose value holds one of `secrets`."""
    drop = {cfg.telegram.token_env, LEGACY_TOKEN_ENV, settings.WORKER_SETTINGS_ENV,
            settings.BOT_SETTINGS_ENV, names.MARKER_ENV, cfg.voice.api_key_env}
    return {k: v for k, v in base.items()
            if k not in drop and not k.startswith("TELEGRAM_")
            and not any(s and s in v for s in secrets)}


def worker_settings(cfg: Config, session: str, persona: Persona,
                    supervisor_pid: int, place: Place | None = None) -> settings.WorkerSettings:
    """`place`: where the session works (its registry record); none: its private work/."""
    c = cfg.claude
    step = min(3.0, cfg.supervisor.stopwaitsecs / 4)  # the worker's stop fits in stopwaitsecs
    return settings.WorkerSettings(
        **_shared(c, settings.CliTuning),
        session=session,
        state_dir=cfg.state_dir,
        runtime_dir=cfg.runtime_dir,
        persona=persona,
        work_dir=place.work_dir if place else None,
        writable_dirs=list(place.writable) if place else [],
        claude_binary=c.binary,
        claude_env=dict(c.env),
        recycle_rss_bytes=c.recycle_rss_mb * settings.MB,
        stop_close_wait_seconds=step,
        stop_term_wait_seconds=step,
        stop_kill_wait_seconds=step,
        supervisor_pid=supervisor_pid,
        config_file=os.path.abspath(cfg.file) if cfg.file else None,
        env_file=os.path.abspath(env_file_path(cfg.file)) if cfg.file else None,
    )


def bot_settings(cfg: Config, supervisor_pid: int, token_fd: int | None = None,
                 voice_key_fd: int | None = None) -> settings.BotSettings:
    return settings.BotSettings(
        token_fd=token_fd,
        voice=settings.VoiceTuning(**_shared(cfg.voice, settings.VoiceTuning)),
        voice_key_fd=voice_key_fd,
        **_shared(cfg.telegram, settings.BotTuning),
        state_dir=cfg.state_dir,
        runtime_dir=cfg.runtime_dir,
        default_persona=cfg.claude.default_persona,
        supervisor_pid=supervisor_pid,
    )


def program_config(cfg: Config, *, lifeline: bool = False) -> ProgramConfig:
    """The same numbers for every program; the bot (`lifeline`) is never given up."""
    s = cfg.supervisor
    return ProgramConfig(
        startsecs=s.startsecs,
        stopwaitsecs=s.stopwaitsecs,
        policy=Policy(retries=s.startretries, window=s.retry_window_seconds,
                      initial=s.backoff_initial_seconds, cap=s.backoff_max_seconds,
                      give_up=not lifeline, lifeline_cap=s.bot_max_backoff_seconds),
    )
