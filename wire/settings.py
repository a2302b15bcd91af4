"""What the supervisor hands each child at spawn, so children never re-read the config file.

The settings travel as JSON in one environment variable. Secrets never travel in the
environment (`/proc/<pid>/environ` keeps the exec-time block for a process's whole life): the bot
token comes through an inherited pipe whose fd number is `BotSettings.token_fd`, read once at
start by `read_secret` and closed, so nothing the bot starts can inherit it either.

The fields a child takes straight from the config (CliTuning, BotTuning) and their defaults are
defined here and only here: supervisor.config builds its sections on them, because wire/ must
not import a role. Nothing here reads the config file.
"""
from __future__ import annotations

import os
from typing import TypeVar

import msgspec

from wire.binaries import DEFAULT_CLAUDE_BINARY
from wire.messages import Persona

WORKER_SETTINGS_ENV = "SWITCHBOARD_WORKER_SETTINGS"
BOT_SETTINGS_ENV = "SWITCHBOARD_BOT_SETTINGS"
MAX_SECRET_BYTES = 4096

MB = 1024 * 1024
DEFAULT_API_BASE = "https://api.telegram.org"
DEFAULT_PERSONA = "default"
DEFAULT_RECYCLE_RSS_MB = 600

S = TypeVar("S", bound=msgspec.Struct)


class CliTuning(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """How a worker runs its CLI: the `[claude]` fields that reach the worker as they are.

    The config's ClaudeConfig and WorkerSettings both extend this, so each field and its default
    is written here once; the supervisor copies them across by name (supervisor.child_settings).
    """

    extra_args: list[str] = []
    idle_suspend_seconds: float = 600.0
    permission_timeout_seconds: float = 300.0
    recycle_turns: int = 200
    hang_timeout_seconds: float = 600.0  # no CLI output for this long during a turn = hung
    interrupt_timeout_seconds: float = 10.0
    # Budgets in USD (0 = none): a turn that would start past one waits in the queue.
    max_usd_per_session: float = 0.0
    max_usd_per_day: float = 0.0  # the sum over every session for the local day


class BotTuning(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """How the bot talks to Telegram: the `[telegram]` fields that reach the bot as they are.

    The config's TelegramConfig and BotSettings both extend this (see CliTuning).
    """

    api_base_url: str = DEFAULT_API_BASE
    allowed_user_ids: list[int] = []
    edit_interval_seconds: float = 1.5
    file_threshold_chars: int = 12000
    preview_over_chars: int = 120000
    poll_timeout_seconds: int = 25
    # How long one message to Telegram is retried through network errors before the chat is
    # told it was not delivered and the session's line moves on.
    delivery_retry_seconds: float = 120.0
    # false: the bot answers one sentence in any group it is in or added to, and leaves.
    groups: bool = True
    # Private chats stream answers into native drafts (sendMessageDraft) with Telegram's Stop;
    # false: by edits of a message, as in groups. A draft changes at most this often.
    drafts: bool = True
    draft_interval_seconds: float = 0.3
    # The pinned live status (/status) is brought up to date at least this often.
    status_refresh_seconds: float = 30.0
    # The bot's first calls to Telegram (getMe...) are retried with a backoff capped at this:
    # once Telegram is back, the bot is through within about this long.
    startup_retry_max_seconds: float = 10.0


class VoiceTuning(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """How the bot transcribes voice notes and audio: the `[voice]` fields that reach the bot
    as they are (the key travels like the token, through a pipe: `BotSettings.voice_key_fd`).
    An empty `api_base_url` turns transcription off."""

    api_base_url: str = ""  # an OpenAI-compatible API: POST {api_base_url}/audio/transcriptions
    model: str = "whisper-1"
    timeout_seconds: float = 60.0


class WorkerSettings(CliTuning, kw_only=True, forbid_unknown_fields=True):
    session: str
    state_dir: str
    runtime_dir: str
    persona: Persona
    work_dir: str | None = None  # default <state_dir>/sessions/<name>/work
    # More directories the fence lets its tools write: a worktree's shared .git dir (commits).
    writable_dirs: list[str] = []
    claude_binary: str = DEFAULT_CLAUDE_BINARY
    claude_env: dict[str, str] = {}
    recycle_rss_bytes: int = DEFAULT_RECYCLE_RSS_MB * MB
    stop_close_wait_seconds: float = 3.0
    stop_term_wait_seconds: float = 3.0
    stop_kill_wait_seconds: float = 3.0
    supervisor_pid: int | None = None  # exit when this parent is gone
    # Fenced off from the session's tools by the sandbox (absolute; None: there is none).
    config_file: str | None = None
    env_file: str | None = None


class BotSettings(BotTuning, kw_only=True, forbid_unknown_fields=True):
    state_dir: str
    runtime_dir: str
    default_persona: str = DEFAULT_PERSONA
    typing_interval_seconds: float = 4.0
    worker_timeout_seconds: float = 10.0
    supervisor_pid: int | None = None
    token_fd: int | None = None  # the inherited pipe that holds the bot token
    voice: VoiceTuning = msgspec.field(default_factory=VoiceTuning)
    voice_key_fd: int | None = None  # the inherited pipe that holds the transcription key


def dump(settings: msgspec.Struct) -> str:
    return msgspec.json.encode(settings).decode()


def load(kind: type[S], env_var: str, environ: dict[str, str] | None = None) -> S:
    """Read settings from the environment; a missing or bad value: SystemExit with a sentence."""
    env = os.environ if environ is None else environ
    raw = env.get(env_var)
    if not raw:
        raise SystemExit(
            f"{env_var} is not set: this program is started by `switchboard run`, not by hand."
        )
    try:
        return msgspec.json.decode(raw, type=kind)
    except msgspec.DecodeError as exc:
        raise SystemExit(
            f"{env_var} is not valid ({exc}): restart it through `switchboard run`."
        ) from None


def read_secret(fd: int | None) -> str | None:
    """The secret in the inherited pipe `fd`, read to EOF; the fd is closed whatever happens.
    None when there is no fd or it holds nothing."""
    if fd is None:
        return None
    chunks: list[bytes] = []
    try:
        while sum(map(len, chunks)) <= MAX_SECRET_BYTES:
            chunk = os.read(fd, MAX_SECRET_BYTES)
            if not chunk:
                break
            chunks.append(chunk)
    except OSError:
        return None
    finally:
        try:
            os.close(fd)
        except OSError:
            pass
    return b"".join(chunks).decode(errors="replace").strip() or None
