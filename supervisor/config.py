"""switchboard.toml: load it, validate every field, and name each wrong one.

The supervisor is the only process that reads the file. It derives each child's settings
(supervisor.child_settings) from it, so a child never reads the config or sees a secret it does
not need. Every default is written once: the fields a child takes as they are (and theirs) are
wire.settings' CliTuning and BotTuning, which the [claude] and [telegram] sections extend; the
rest are here. The bot token is looked up by supervisor.bot_token, never here by hand.
"""
from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from supervisor.backoff import LIFELINE_MAX_SECONDS
from supervisor.bot_token import DEFAULT_TOKEN_ENV, FoundToken, find_token
from wire.binaries import DEFAULT_CLAUDE_BINARY, is_path
from wire.endpoints import CONTROL, MAX_SOCKET_PATH, default_runtime_dir
from wire.settings import (
    DEFAULT_PERSONA,
    DEFAULT_RECYCLE_RSS_MB,
    BotTuning,
    CliTuning,
    VoiceTuning,
)

ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
PROJECT_PERSONAS = Path(__file__).resolve().parent.parent / "personas"


def default_config_path() -> Path:
    env = os.environ.get("SWITCHBOARD_CONFIG")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "switchboard" / "switchboard.toml"


def default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "switchboard"


class TelegramConfig(BotTuning, kw_only=True, forbid_unknown_fields=True):
    """[telegram]: the bot's own fields (wire.settings.BotTuning, with their defaults) and the
    ones only the supervisor reads."""

    enabled: bool = True  # false: run sessions without the bot (switchboardctl only)
    token: str | None = None
    token_env: str = DEFAULT_TOKEN_ENV


class ClaudeConfig(CliTuning, kw_only=True, forbid_unknown_fields=True):
    """[claude]: the worker's own fields (wire.settings.CliTuning, with their defaults) and the
    ones the supervisor turns into worker settings (supervisor.child_settings)."""

    binary: str = DEFAULT_CLAUDE_BINARY
    env: dict[str, str] = {}
    default_persona: str = DEFAULT_PERSONA
    recycle_rss_mb: int = DEFAULT_RECYCLE_RSS_MB


class VoiceConfig(VoiceTuning, kw_only=True, forbid_unknown_fields=True):
    """[voice]: the bot's transcription fields (wire.settings.VoiceTuning) and the name of the
    variable that holds the key, which only the supervisor reads (empty: no key, e.g. a local
    whisper server)."""

    api_key_env: str = ""


DEFAULT_MAX_SESSIONS = 50
MAX_SESSIONS_CEILING = 1000  # each is a process with its CLI: more is a typo, not a plan


class SupervisorConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    startsecs: float = 1.0
    startretries: int = 3
    retry_window_seconds: float = 60.0
    backoff_initial_seconds: float = 0.5
    backoff_max_seconds: float = 30.0
    bot_max_backoff_seconds: float = 60.0  # the bot is never given up: its wait past the limit
    stopwaitsecs: float = 10.0
    heartbeat_interval_seconds: float = 2.0
    heartbeat_timeout_seconds: float = 15.0
    worker_rss_limit_mb: int = 0  # 0 = no limit
    sweep_interval_seconds: float = 2.0
    max_sessions: int = DEFAULT_MAX_SESSIONS  # a new one past it is refused


class ProjectConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """[projects.NAME]: a directory sessions can work in. Its shape is checked here; whether the
    directory exists and is a git repository is supervisor.projects' check (run, check-config,
    a reload and doctor all ask it)."""

    path: str = ""  # resolved like every path of the file (~, relative to the config's dir)
    persona: str | None = None  # the default persona of sessions in it
    worktrees: bool = False  # one git worktree (and branch) per session


class Config(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    state_dir: str = ""
    runtime_dir: str = ""
    personas_dir: str = ""
    telegram: TelegramConfig = msgspec.field(default_factory=TelegramConfig)
    claude: ClaudeConfig = msgspec.field(default_factory=ClaudeConfig)
    supervisor: SupervisorConfig = msgspec.field(default_factory=SupervisorConfig)
    projects: dict[str, ProjectConfig] = {}
    voice: VoiceConfig = msgspec.field(default_factory=VoiceConfig)
    # Not from the file: where it was read from (for messages and relative paths).
    path: str = ""

    @property
    def state_path(self) -> Path:
        return Path(self.state_dir)

    @property
    def runtime_path(self) -> Path:
        return Path(self.runtime_dir)

    @property
    def personas_path(self) -> Path:
        return Path(self.personas_dir)

    @property
    def file(self) -> Path | None:
        """The file this config was read from; None for text parsed on its own."""
        return Path(self.path) if self.path and self.path != "<config>" else None

    def token_source(self, environ: Mapping[str, str] | None = None) -> FoundToken | None:
        """The bot token and where it was found (supervisor.bot_token says where it may be)."""
        return find_token(self.telegram.token, self.telegram.token_env, self.file, environ)

    def token(self, environ: Mapping[str, str] | None = None) -> str | None:
        found = self.token_source(environ)
        return found.value if found else None

    def voice_key(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The transcription key from `voice.api_key_env` (the environment, else the env file
        next to the config, like the bot token); None when none is configured or set."""
        if not self.voice.api_key_env:
            return None
        found = find_token(None, self.voice.api_key_env, self.file, environ)
        return found.value if found else None

    def missing_token(self) -> str | None:
        """Why `run` and a reload refuse this config for want of a token, or None: a bot that
        cannot log in must not be started."""
        if not self.telegram.enabled or self.token():
            return None
        return (f"{self.path}: telegram.token_env: ${self.telegram.token_env} is not set and"
                " telegram.token is empty")


# What a SIGHUP cannot apply to the processes that run, and which process must be restarted for
# it; every other field applies at once (the persona, claude.binary, claude.env and
# claude.extra_args at each session's next CLI start: a running CLI keeps its argv).
RESTART_FIELDS: dict[str, str] = {
    "state_dir": "the supervisor",
    "runtime_dir": "the supervisor",
    "telegram.api_base_url": "the bot",
    "telegram.token": "the bot",
    "telegram.token_env": "the bot",
    "voice.api_key_env": "the bot",
}


def field_value(cfg: Config, dotted: str) -> Any:
    value: Any = cfg
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def restart_needed(old: Config, new: Config) -> list[str]:
    """The fields that differ between two configs and that a reload cannot apply."""
    return [f for f in RESTART_FIELDS if field_value(old, f) != field_value(new, f)]


def reload_note() -> str:
    """What `check-config` says about a reload: which fields it applies, which need a restart."""
    by_whom: dict[str, list[str]] = {}
    for f, who in RESTART_FIELDS.items():
        by_whom.setdefault(who, []).append(f)
    parts = [f"{', '.join(fs)} ({who})" for who, fs in by_whom.items()]
    return ("a reload (SIGHUP, `systemctl reload`) applies every other field to the running"
            " supervisor, bot and sessions at once (the persona and claude.binary, claude.env,"
            " claude.extra_args at each session's next CLI start); these need a restart: "
            + "; ".join(parts) + ".")


class ConfigError(ValueError):
    """Every problem found in a config file, one line each, each naming its field."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(f"{path}: " + "; ".join(problems))

    def report(self) -> str:
        lines = [f"{self.path} has {len(self.problems)} problem(s):"]
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)


_SECTIONS: dict[str, type[msgspec.Struct]] = {
    "telegram": TelegramConfig,
    "claude": ClaudeConfig,
    "supervisor": SupervisorConfig,
    "voice": VoiceConfig,
}
_TOP = {"state_dir": str, "runtime_dir": str, "personas_dir": str}


def _type_name(tp: Any) -> str:
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(
        tp, str(tp).replace("typing.", "")
    )


def _check_struct(section: str, kind: type[msgspec.Struct], raw: Any,
                  problems: list[str]) -> dict[str, Any]:
    if not isinstance(raw, dict):
        problems.append(f"[{section}] must be a table")
        return {}
    good: dict[str, Any] = {}
    fields = {f.name: f for f in msgspec.structs.fields(kind)}
    for key, value in raw.items():
        f = fields.get(key)
        if f is None:
            known = ", ".join(sorted(fields))
            problems.append(f"{section}.{key} is not a known field (known: {known})")
            continue
        try:
            good[key] = msgspec.convert(value, f.type, strict=False)
        except msgspec.ValidationError as exc:
            problems.append(f"{section}.{key} must be {_type_name(f.type)} ({exc})")
    return good


PROJECTS = "projects"
_PROJECT_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")


def _check_projects(raw: Any, problems: list[str]) -> dict[str, ProjectConfig]:
    """[projects.NAME] tables: each name like a session name, each table a ProjectConfig."""
    if not isinstance(raw, dict):
        problems.append("[projects] must hold one [projects.NAME] table per project")
        return {}
    out: dict[str, ProjectConfig] = {}
    for name, table in raw.items():
        where = f"{PROJECTS}.{name}"
        if not _PROJECT_NAME_RE.fullmatch(name):
            problems.append(f"[{where}]: a project name is 1-32 characters of a-z, 0-9, '-' and"
                            " '_', starting with a letter or digit")
            continue
        before = len(problems)
        project = ProjectConfig(**_check_struct(where, ProjectConfig, table, problems))
        if len(problems) > before:
            continue
        if not project.path.strip():
            problems.append(f"{where}.path is missing: set it to the project's directory")
            continue
        out[name] = project
    return out


def _semantic_checks(cfg: Config, problems: list[str]) -> None:
    t, c, s = cfg.telegram, cfg.claude, cfg.supervisor
    if not all(isinstance(u, int) and u > 0 for u in t.allowed_user_ids):
        problems.append("telegram.allowed_user_ids must be positive Telegram user ids")
    if not t.api_base_url.startswith(("http://", "https://")):
        problems.append("telegram.api_base_url must start with http:// or https://")
    if t.edit_interval_seconds < 0.1:
        problems.append("telegram.edit_interval_seconds must be at least 0.1")
    if t.draft_interval_seconds < 0.05:
        problems.append("telegram.draft_interval_seconds must be at least 0.05")
    if t.status_refresh_seconds < 0.2:
        problems.append("telegram.status_refresh_seconds must be at least 0.2")
    if t.file_threshold_chars < 1:
        problems.append("telegram.file_threshold_chars must be positive")
    if t.preview_over_chars < t.file_threshold_chars:
        problems.append(
            "telegram.preview_over_chars must be at least telegram.file_threshold_chars"
            " (the answers it cuts short must come as a file)")
    if not 0 <= t.poll_timeout_seconds <= 50:
        problems.append("telegram.poll_timeout_seconds must be between 0 and 50")
    if not 0.1 <= t.startup_retry_max_seconds <= 300:
        problems.append("telegram.startup_retry_max_seconds must be between 0.1 and 300")
    if t.delivery_retry_seconds <= 0:
        problems.append("telegram.delivery_retry_seconds must be positive")
    for name in ("idle_suspend_seconds", "permission_timeout_seconds", "hang_timeout_seconds",
                 "interrupt_timeout_seconds"):
        if getattr(c, name) <= 0:
            problems.append(f"claude.{name} must be positive")
    if c.max_usd_per_session < 0 or c.max_usd_per_day < 0:
        problems.append("claude.max_usd_per_session and claude.max_usd_per_day must be 0 (no"
                        " budget) or more")
    if c.recycle_rss_mb < 0 or c.recycle_turns < 0:
        problems.append("claude.recycle_rss_mb and claude.recycle_turns must be 0 or more")
    if s.startsecs < 0:
        problems.append("supervisor.startsecs must be 0 or more")
    if s.startretries < 0:
        problems.append("supervisor.startretries must be 0 or more")
    if s.backoff_initial_seconds <= 0 or s.backoff_max_seconds < s.backoff_initial_seconds:
        problems.append(
            "supervisor.backoff_initial_seconds must be positive and at most"
            " supervisor.backoff_max_seconds"
        )
    if not 0 < s.bot_max_backoff_seconds <= LIFELINE_MAX_SECONDS:
        problems.append(f"supervisor.bot_max_backoff_seconds must be positive and at most"
                        f" {LIFELINE_MAX_SECONDS:g} (the bot is the only way in)")
    for name in ("stopwaitsecs", "heartbeat_interval_seconds", "heartbeat_timeout_seconds",
                 "sweep_interval_seconds", "retry_window_seconds"):
        if getattr(s, name) <= 0:
            problems.append(f"supervisor.{name} must be positive")
    if s.heartbeat_timeout_seconds < s.heartbeat_interval_seconds:
        problems.append(
            "supervisor.heartbeat_timeout_seconds must be at least the heartbeat interval")
    if s.worker_rss_limit_mb < 0:
        problems.append("supervisor.worker_rss_limit_mb must be 0 (no limit) or more")
    if not 1 <= s.max_sessions <= MAX_SESSIONS_CEILING:
        problems.append(f"supervisor.max_sessions must be between 1 and {MAX_SESSIONS_CEILING}")
    v = cfg.voice
    if v.api_base_url and not v.api_base_url.startswith(("http://", "https://")):
        problems.append("voice.api_base_url must start with http:// or https:// (or be empty:"
                        " no transcription)")
    if not v.model.strip():
        problems.append("voice.model must name a transcription model, e.g. whisper-1")
    if v.timeout_seconds <= 0:
        problems.append("voice.timeout_seconds must be positive")
    if v.api_key_env and not ENV_NAME.fullmatch(v.api_key_env):
        problems.append("voice.api_key_env must be the name of an environment variable, e.g."
                        " OPENAI_API_KEY (the key itself goes in the env file or the"
                        " environment)")
    sock = Path(cfg.runtime_dir) / CONTROL
    if len(os.fsencode(str(sock))) > MAX_SOCKET_PATH:
        problems.append(
            f"runtime_dir is too long for a unix socket path ({len(str(sock))} > {MAX_SOCKET_PATH}"
            " bytes): choose a shorter directory"
        )


def parse(text: str, path: str = "<config>", *, base_dir: Path | None = None) -> Config:
    """Parse and validate config text; raise ConfigError listing every wrong field."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, [f"not valid TOML: {exc}"]) from None
    problems: list[str] = []
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _SECTIONS:
            values[key] = _SECTIONS[key](**_check_struct(key, _SECTIONS[key], value, problems))
        elif key == PROJECTS:
            values[key] = _check_projects(value, problems)
        elif key in _TOP:
            if isinstance(value, str) and value.strip():
                values[key] = value
            else:
                problems.append(f"{key} must be a non-empty path string")
        else:
            known = ", ".join(sorted([*_TOP, *_SECTIONS, PROJECTS]))
            problems.append(f"{key} is not a known field or section (known: {known})")
    cfg = Config(**values, path=path)
    base = base_dir or (Path(path).parent if path != "<config>" else Path.cwd())

    def resolve(p: str, default: Path) -> str:
        if not p:
            return str(default)
        q = Path(p).expanduser()
        return str(q if q.is_absolute() else (base / q).resolve())

    cfg.state_dir = resolve(cfg.state_dir, default_state_dir())
    cfg.runtime_dir = resolve(cfg.runtime_dir, default_runtime_dir())
    cfg.personas_dir = resolve(cfg.personas_dir, PROJECT_PERSONAS)
    if cfg.claude.binary and is_path(cfg.claude.binary):
        cfg.claude.binary = resolve(cfg.claude.binary, Path(cfg.claude.binary))
    for project in cfg.projects.values():
        project.path = resolve(project.path, Path(project.path))
    _semantic_checks(cfg, problems)
    if problems:
        raise ConfigError(path, problems)
    return cfg


def load(path: str | Path) -> Config:
    p = Path(path).expanduser()
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise ConfigError(
            str(p), ["no config file here: create one with `switchboard init` or pass -c PATH"]
        ) from None
    except OSError as exc:
        raise ConfigError(str(p), [f"cannot read it ({exc.strerror})"]) from None
    return parse(text, str(p), base_dir=p.parent.resolve())
