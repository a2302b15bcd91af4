"""What each child is handed: every config field reaches it, and the defaults are stated once."""
from __future__ import annotations

import msgspec
import pytest

from supervisor import child_settings, config
from wire import settings
from wire.messages import Persona

PERSONA = Persona(name="planner")


def worker(text: str = "") -> settings.WorkerSettings:
    return child_settings.worker_settings(config.parse(text), "api", PERSONA, 4242)


def bot(text: str = "") -> settings.BotSettings:
    return child_settings.bot_settings(config.parse(text), 4242)


def test_an_untouched_config_gives_the_settings_own_defaults() -> None:
    """A child started by hand (tests, benchmarks) and one started from an empty config
    behave alike: there is one set of defaults."""
    w = worker()
    plain = settings.WorkerSettings(session="api", state_dir=w.state_dir,
                                    runtime_dir=w.runtime_dir, persona=PERSONA)
    stop = {"stop_close_wait_seconds", "stop_term_wait_seconds", "stop_kill_wait_seconds",
            "supervisor_pid"}
    for f in settings.WorkerSettings.__struct_fields__:
        if f not in stop:
            assert getattr(w, f) == getattr(plain, f), f
    b = bot()
    plain_bot = settings.BotSettings(state_dir=b.state_dir, runtime_dir=b.runtime_dir)
    for f in settings.BotSettings.__struct_fields__:
        if f != "supervisor_pid":
            assert getattr(b, f) == getattr(plain_bot, f), f


@pytest.mark.parametrize("text, field, value", [
    ('[claude]\nbinary = "/opt/claude"', "claude_binary", "/opt/claude"),
    ('[claude]\nenv = {A = "1"}', "claude_env", {"A": "1"}),
    ('[claude]\nextra_args = ["--x"]', "extra_args", ["--x"]),
    ("[claude]\nidle_suspend_seconds = 5", "idle_suspend_seconds", 5.0),
    ("[claude]\npermission_timeout_seconds = 7", "permission_timeout_seconds", 7.0),
    ("[claude]\nrecycle_rss_mb = 2", "recycle_rss_bytes", 2 * 1024 * 1024),
    ("[claude]\nrecycle_turns = 9", "recycle_turns", 9),
    ("[claude]\nhang_timeout_seconds = 11", "hang_timeout_seconds", 11.0),
    ("[claude]\ninterrupt_timeout_seconds = 3", "interrupt_timeout_seconds", 3.0),
    ("[supervisor]\nstopwaitsecs = 4", "stop_term_wait_seconds", 1.0),
    ("[supervisor]\nstopwaitsecs = 40", "stop_kill_wait_seconds", 3.0),
])
def test_each_claude_field_reaches_the_worker(text: str, field: str, value: object) -> None:
    w = worker(text)
    assert getattr(w, field) == value
    assert (w.session, w.persona, w.supervisor_pid) == ("api", PERSONA, 4242)


@pytest.mark.parametrize("text, field, value", [
    ('[telegram]\napi_base_url = "http://127.0.0.1:1"', "api_base_url", "http://127.0.0.1:1"),
    ("[telegram]\nallowed_user_ids = [7, 8]", "allowed_user_ids", [7, 8]),
    ("[telegram]\nedit_interval_seconds = 0.5", "edit_interval_seconds", 0.5),
    ("[telegram]\nfile_threshold_chars = 10", "file_threshold_chars", 10),
    ("[telegram]\npreview_over_chars = 20000", "preview_over_chars", 20000),
    ("[telegram]\npoll_timeout_seconds = 3", "poll_timeout_seconds", 3),
    ('[claude]\ndefault_persona = "planner"', "default_persona", "planner"),
])
def test_each_telegram_field_reaches_the_bot(text: str, field: str, value: object) -> None:
    assert getattr(bot(text), field) == value


def test_no_secret_in_any_settings() -> None:
    text = '[telegram]\ntoken = "123:secret"'
    for s in (worker(text), bot(text)):
        assert "123:secret" not in msgspec.json.encode(s).decode()


def test_a_childs_lists_are_its_own() -> None:
    cfg = config.parse('[claude]\nextra_args = ["--x"]\n[telegram]\nallowed_user_ids = [1]')
    child_settings.worker_settings(cfg, "api", PERSONA, 1).extra_args.append("--y")
    child_settings.bot_settings(cfg, 1).allowed_user_ids.append(2)
    assert (cfg.claude.extra_args, cfg.telegram.allowed_user_ids) == (["--x"], [1])


def test_the_child_environment_carries_no_token() -> None:
    cfg = config.parse('[telegram]\ntoken_env = "MY_TOKEN"')
    env = child_settings.child_env({"MY_TOKEN": "1:a", "TELEGRAM_X": "y", "PATH": "/bin",
                                    "SWITCHBOARD_TELEGRAM_TOKEN": "1:a", "OTHER": "x1:secretx"},
                                   cfg, ("1:secret",))
    assert env == {"PATH": "/bin"}


def test_the_bot_settings_carry_the_token_fd_and_never_the_token() -> None:
    cfg = config.parse('[telegram]\ntoken = "123456:abcdefabcdefabcdefabcdef"')
    dumped = settings.dump(child_settings.bot_settings(cfg, 1, token_fd=7))
    assert "abcdefabcdef" not in dumped
    assert settings.load(settings.BotSettings, "X", {"X": dumped}).token_fd == 7
