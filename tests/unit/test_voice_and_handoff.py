"""The pure parts of voice transcription and the terminal handoff, as tables of cases.

- wire.terminal: the printed command (quoting, the config dir only when it is not the default)
  and which command lines hold a Claude session id;
- bot.voice: a server's answer to a transcript or one reason, the upload's name;
- sandbox.transcription: the deterministic transcript and its faults;
- the [voice] config section, and how its key reaches the bot (never an environment);
- the psutil sweep's idea of a session CLI never covers a terminal's `claude --resume`.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot import voice
from sandbox.transcription import transcript
from supervisor import child_settings, config
from wire import settings as wire_settings
from wire.names import is_session_cli
from wire.terminal import config_dir, resume_command, resumes

pytestmark = pytest.mark.timeout(5)
HOME = "/home/ada"
SID = "0b0e5c43-5d0e-4a50-9c8b-2f6f0f0e9e11"


@pytest.mark.parametrize(("env", "expected"), [
    ({}, f"cd /w && claude --resume {SID}"),
    ({"HOME": HOME}, f"cd /w && claude --resume {SID}"),
    ({"CLAUDE_CONFIG_DIR": f"{HOME}/.claude/"}, f"cd /w && claude --resume {SID}"),
    ({"CLAUDE_CONFIG_DIR": "/srv/claude conf"},
     f"cd /w && CLAUDE_CONFIG_DIR='/srv/claude conf' claude --resume {SID}"),
    ({"HOME": "/tmp/h"}, f"cd /w && CLAUDE_CONFIG_DIR=/tmp/h/.claude claude --resume {SID}"),
])
def test_the_command_names_the_config_dir_only_when_it_is_not_the_default(
        env: dict[str, str], expected: str) -> None:
    assert resume_command("/w", SID, "claude", env, HOME) == expected


def test_the_command_quotes_the_directory_and_the_binary() -> None:
    cmd = resume_command("/a dir/it's", SID, "/opt/my claude", {}, HOME)
    assert cmd == f"""cd '/a dir/it'"'"'s' && '/opt/my claude' --resume {SID}"""
    assert config_dir({}, HOME) == f"{HOME}/.claude"


@pytest.mark.parametrize(("argv", "holds"), [
    (["node", "/x/cli.js", "--resume", SID], True),
    (["claude", f"--resume={SID}", "-p", "hi"], True),
    (["claude", "-r", SID], True),
    (["claude", f"-r{SID}"], True),
    (["claude", "--resume", "another-id"], False),
    (["claude", "-p", SID], False),  # the id as a prompt is not a resume
    (["bash", "-c", f"cd /w && claude --resume {SID}"], False),  # the shell, not the CLI
    (["claude", "--resume"], False),
    ([], False),
])
def test_which_command_lines_hold_the_id(argv: list[str], holds: bool) -> None:
    assert resumes(argv, SID) is holds
    assert resumes(argv, "") is False


def test_a_terminals_claude_is_never_taken_for_a_stale_session_cli() -> None:
    cmd = resume_command("/w", SID, "claude", {}, HOME).split(" && ")[1].split()
    assert not is_session_cli([*cmd, "-p", "hello"])
    assert not is_session_cli(["node", "/x/cli.js", "--resume", SID])


@pytest.mark.parametrize(("status", "body", "result"), [
    (200, b'{"text": " hello there "}', "hello there"),
    (200, b'{"text": ""}', ""),
    (200, b'{"words": "x"}', "the transcription server's answer has no text"),
    (200, b"not json", "the transcription server's answer has no text"),
    (500, b'{"error": {"message": "The server had an error."}}',
     "the transcription server answered 500: The server had an error."),
    (401, b'{"error": {"message": "Incorrect API key provided: sk-secret."}}',
     "the transcription server answered 401: Incorrect API key provided: ***."),
    (404, b"<html>nope</html>", "the transcription server answered 404"),
    (413, b'{"error": "too big"}', "the transcription server answered 413: too big"),
])
def test_a_servers_answer_is_a_transcript_or_one_reason(status: int, body: bytes,
                                                        result: str) -> None:
    if status == 200 and "transcription" not in result:
        assert voice.transcript_of(status, body) == result
        return
    with pytest.raises(voice.TranscriptionFailed) as why:
        voice.transcript_of(status, body, key="sk-secret")
    assert str(why.value) == result


@pytest.mark.parametrize(("kind", "original", "mime", "name"), [
    ("voice", None, "audio/ogg", "7-voice.ogg"),
    ("voice", None, None, "7-voice.ogg"),
    ("audio", None, "audio/mpeg", "7-audio.mp3"),
    ("audio", "memo.m4a", "audio/mp4", "7-memo.m4a"),
])
def test_the_upload_name(kind: str, original: str | None, mime: str | None, name: str) -> None:
    assert voice.file_name(7, kind, original, mime) == name


def test_the_sentences_name_the_problem_and_the_fix() -> None:
    assert "[voice] api_base_url" in voice.NOT_CONFIGURED
    said = voice.failed_sentence("the server answered 500", "uploads/7-voice.ogg", "api")
    assert "uploads/7-voice.ogg" in said and "answered 500" in said and said.count(".") <= 2
    assert voice.shown("hi") == "🎤 hi"


@pytest.mark.parametrize(("data", "text", "faults"), [
    (b"hello   world\n", "hello world", {}),
    (b"say it #stt:error=503", "say it", {"error": 503}),
    (b"#stt:slow=200 slowly #sb:text=ok", "slowly #sb:text=ok", {"slow": 200}),
    (b"\x00\xff\x10", "audio of 3 bytes, sha256 ", {}),
])
def test_the_sandbox_transcript_comes_from_the_bytes(data: bytes, text: str,
                                                     faults: dict[str, int]) -> None:
    got, found = transcript(data)
    assert got.startswith(text) and found == faults


@pytest.mark.parametrize(("text", "fragment"), [
    ('[voice]\napi_base_url = "ftp://x"', "voice.api_base_url must start with"),
    ('[voice]\nmodel = " "', "voice.model must name"),
    ("[voice]\ntimeout_seconds = 0", "voice.timeout_seconds must be positive"),
    ('[voice]\napi_key_env = "sk-123"', "voice.api_key_env must be the name"),
    ("[voice]\nkey = 1", "voice.key is not a known field"),
])
def test_each_voice_mistake_names_its_field(text: str, fragment: str) -> None:
    with pytest.raises(config.ConfigError) as err:
        config.parse(text, "sb.toml")
    assert fragment in err.value.report()


def test_the_voice_key_reaches_the_bot_by_pipe_and_no_environment(tmp_path: Path) -> None:
    p = tmp_path / "switchboard.toml"
    p.write_text('[voice]\napi_base_url = "http://127.0.0.1:9/v1"\n'
                 'api_key_env = "OPENAI_API_KEY"\n')
    (tmp_path / "env").write_text("OPENAI_API_KEY=sk-from-file\n")
    cfg = config.load(p)
    assert cfg.voice_key({}) == "sk-from-file"
    assert cfg.voice_key({"OPENAI_API_KEY": "sk-env"}) == "sk-env"
    assert config.parse("").voice_key({"OPENAI_API_KEY": "sk-env"}) is None  # none configured
    env = child_settings.child_env({"OPENAI_API_KEY": "sk-env", "COPY": "x sk-env", "PATH": "/b"},
                                   cfg, ("sk-env",))
    assert env == {"PATH": "/b"}
    bot = child_settings.bot_settings(cfg, 1, token_fd=5, voice_key_fd=6)
    assert bot.voice == wire_settings.VoiceTuning(api_base_url="http://127.0.0.1:9/v1")
    assert bot.voice_key_fd == 6 and "sk-" not in json.dumps(wire_settings.dump(bot))
    assert "voice.api_key_env" in config.RESTART_FIELDS


def test_doctor_says_where_voice_goes_and_misses_its_key(tmp_path: Path) -> None:
    from supervisor.doctor import OK, WARN, check_voice

    assert check_voice(config.parse("")) is None  # off: nothing to say
    p = tmp_path / "switchboard.toml"
    p.write_text('[voice]\napi_base_url = "http://127.0.0.1:9/v1"\napi_key_env = "SB_NO_KEY"\n')
    missing = check_voice(config.load(p))
    assert missing is not None and missing.status == WARN and "$SB_NO_KEY is not set" in \
        missing.detail
    (tmp_path / "env").write_text("SB_NO_KEY=sk-x\n")
    found = check_voice(config.load(p))
    assert found is not None and found.status == OK and "sk-x" not in found.detail

