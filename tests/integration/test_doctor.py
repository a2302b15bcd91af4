"""`switchboard doctor` against the sandbox Telegram Bot API and the real Claude CLI.

One all-green installation, then one test per failure doctor reports, each breaking exactly one
thing and asserting that exactly that check FAILs with a sentence saying what to fix. HOME and
the XDG dirs are temp dirs; every CLI doctor starts carries a marker, and each test proves no
process with that marker survives.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from sandbox.telegram_api import TelegramSandbox
from tests.support.config import render_config
from wire.sandbox import missing_programs

pytestmark = pytest.mark.timeout(90)

ROOT = Path(__file__).resolve().parents[2]
POLL_STEP = 0.05  # the step of a deadline loop, never a wait on its own
RUN_TIMEOUT = 60.0
SWITCHBOARD = Path(sys.executable).parent / "switchboard"
MARKER = "SB_DOCTOR_TEST_MARKER"
DROP_PREFIXES = ("ANTHROPIC_", "CLAUDE_", "TELEGRAM_", "SWITCHBOARD_", "XDG_")
PROXIES = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}
LINE = re.compile(r"^(ok|warn|FAIL)\s+(\S+)\s*(.*)$")
API_KEY = "sk-ant-sandbox-doctor-key"
# Keep the real CLI offline and quiet (the sandbox is the only thing it could reach).
QUIET_CLI = {"DISABLE_AUTOUPDATER": "1", "DISABLE_TELEMETRY": "1",
             "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_ERROR_REPORTING": "1"}


@dataclass
class Install:
    """A complete installation in temp dirs; tests change one thing and call write()."""

    root: Path
    run_dir: Path
    api_base_url: str
    token: str
    claude_bin: str
    top: dict[str, object] = field(default_factory=dict)
    telegram: dict[str, object] = field(default_factory=dict)
    claude: dict[str, object] = field(default_factory=dict)
    marker: str = field(default_factory=lambda: uuid.uuid4().hex)

    def __post_init__(self) -> None:
        self.home = self.root / "home"
        self.config = self.home / ".config" / "switchboard" / "switchboard.toml"
        self.env_file = self.config.parent / "env"
        self.state = self.root / "state"
        self.personas = self.root / "personas"
        for d in (self.home, self.config.parent, self.personas):
            d.mkdir(parents=True, exist_ok=True)
        self.state.mkdir(mode=0o700)
        (self.personas / "default.json").write_text('{"name": "default"}\n')
        self.top = {"state_dir": str(self.state), "runtime_dir": str(self.run_dir),
                    "personas_dir": str(self.personas)}
        self.telegram = {"allowed_user_ids": [4242], "api_base_url": self.api_base_url}
        self.claude = {"binary": self.claude_bin, "env": {"ANTHROPIC_API_KEY": API_KEY,
                                                          **QUIET_CLI}}
        self.write()

    def write(self) -> None:
        self.config.write_text(render_config(self.top, {"telegram": self.telegram,
                                                         "claude": self.claude}))
        self.config.chmod(0o600)
        self.env_file.write_text(f"TELEGRAM_BOT_TOKEN={self.token}\n")
        self.env_file.chmod(0o600)

    def environ(self) -> dict[str, str]:
        e = {k: v for k, v in os.environ.items()
             if not k.upper().startswith(DROP_PREFIXES) and k.lower() not in PROXIES}
        e.update({"HOME": str(self.home), "XDG_CONFIG_HOME": str(self.home / ".config"),
                  "XDG_STATE_HOME": str(self.home / ".local" / "state"),
                  "PYTHONPATH": str(ROOT), MARKER: self.marker})
        return e


@dataclass
class Result:
    code: int
    out: str
    err: str
    checks: dict[str, tuple[str, str]]  # name -> (status, the rest of its lines)

    def failed(self) -> list[str]:
        return [n for n, (s, _) in self.checks.items() if s == "FAIL"]


def parse(out: str) -> dict[str, tuple[str, str]]:
    checks: dict[str, tuple[str, str]] = {}
    current = None
    for line in out.splitlines():
        m = LINE.match(line)
        if m:
            current = m.group(2)
            checks[current] = (m.group(1), m.group(3))
        elif current and line.startswith(" "):
            status, text = checks[current]
            checks[current] = (status, f"{text}\n{line.strip()}")
        else:
            current = None
    return checks


def doctor(inst: Install, *args: str) -> Result:
    proc = subprocess.run(
        [str(SWITCHBOARD), "doctor", "-c", str(inst.config), *args],
        env=inst.environ(), cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=RUN_TIMEOUT, check=False,
    )
    assert_marker_gone(inst.marker)
    assert not inst.token or inst.token not in proc.stdout + proc.stderr, "doctor printed the token"
    assert API_KEY not in proc.stdout + proc.stderr, "doctor printed the API key"
    return Result(proc.returncode, proc.stdout, proc.stderr, parse(proc.stdout))


def assert_marker_gone(marker: str, deadline_s: float = 10.0) -> None:
    """No process doctor started (the CLI and anything it spawned) is left behind."""
    deadline = time.monotonic() + deadline_s
    while True:
        alive = []
        for p in psutil.process_iter():
            try:
                if p.environ().get(MARKER) == marker and p.status() != psutil.STATUS_ZOMBIE:
                    alive.append(p.pid)
            except (psutil.Error, OSError):
                continue
        if not alive:
            return
        assert time.monotonic() < deadline, f"processes left behind: {alive}"
        time.sleep(POLL_STEP)


def assert_only_failure(r: Result, name: str, *fix_words: str) -> str:
    assert r.code == 1, r.out
    assert r.failed() == [name], r.out
    text = r.checks[name][1]
    assert "fix: " in text, f"{name} FAILs without saying what to fix:\n{r.out}"
    for word in fix_words:
        assert word in text, f"{word!r} not in:\n{text}"
    return text


@pytest.fixture
def run_dir() -> Iterator[Path]:
    """A short runtime dir (pytest's tmp_path can be too deep for a socket path)."""
    d = Path(tempfile.mkdtemp(prefix="sbdoc-", dir="/tmp"))
    try:
        yield d / "run"
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def inst(tmp_path: Path, run_dir: Path, telegram_api: TelegramSandbox, claude_bin: str
         ) -> Install:
    return Install(tmp_path, run_dir, telegram_api.url, telegram_api.token, claude_bin)


def test_all_green(inst: Install, telegram_api: TelegramSandbox) -> None:
    r = doctor(inst)
    assert r.code == 0, r.out + r.err
    expected = ["config", "claude-cli", "claude-version", "claude-login", "state-dir",
                "runtime-dir", "socket-path", "token", "allowed-users", "personas", "sandbox"]
    assert list(r.checks) == expected, r.out
    # The sandbox is a warning (never a failure) on a machine without bubblewrap and socat.
    sandbox_ok = "warn" if missing_programs() else "ok"
    assert all(s == (sandbox_ok if n == "sandbox" else "ok") for n, (s, _) in r.checks.items()
               ), r.out
    assert re.search(r"version \d+\.\d+\.\d+", r.checks["claude-cli"][1])
    assert "ANTHROPIC_API_KEY in [claude].env" in r.checks["claude-login"][1]
    assert "@sandbox_bot" in r.checks["token"][1]
    assert [c["status"] for c in telegram_api.calls("getMe")] == [200]
    assert not inst.run_dir.exists(), "doctor must only look, never create"

    j = doctor(inst, "--json")
    data = json.loads(j.out)
    assert j.code == 0 and data["ok"] is True
    assert [c["name"] for c in data["checks"]] == expected
    assert {c["status"] for c in data["checks"] if c["name"] != "sandbox"} == {"ok"}


def test_no_bubblewrap_or_socat_warns_with_the_install_command(inst: Install) -> None:
    """On PATH: the CLI (given as a path) but neither bwrap nor socat."""
    inst.claude["env"] = {"ANTHROPIC_API_KEY": API_KEY, **QUIET_CLI,
                          "PATH": str(inst.root / "empty-bin")}
    inst.write()
    r = doctor(inst)
    assert r.code == 0, r.out
    status, text = r.checks["sandbox"]
    assert status == "warn" and "bwrap and socat not installed" in text, r.out
    assert "apt-get install bubblewrap socat" in text, r.out

    persona = inst.personas / "fenced.json"
    persona.write_text('{"name": "fenced", "sandbox": true}')
    r = doctor(inst)
    status, text = r.checks["sandbox"]
    assert status == "FAIL" and "fenced" in text and "apt-get install" in text, r.out


def test_missing_cli_binary(inst: Install) -> None:
    inst.claude["binary"] = str(inst.root / "nowhere" / "claude")
    inst.write()
    text = assert_only_failure(doctor(inst), "claude-cli",
                               "npm install -g @anthropic-ai/claude-code", "claude.binary")
    assert "was not found" in text


def test_no_api_key_and_no_login(inst: Install) -> None:
    inst.claude["env"] = dict(QUIET_CLI)
    inst.write()
    assert_only_failure(doctor(inst), "claude-login", "`claude login`",
                        "ANTHROPIC_API_KEY in the [claude].env")


def test_world_readable_state_dir(inst: Install) -> None:
    inst.state.chmod(0o755)
    text = assert_only_failure(doctor(inst), "state-dir", "0755")
    fix = re.search(r"fix: run `(chmod 700 [^`]+)`", text)
    assert fix and shlex.split(fix.group(1))[-1] == str(inst.state), text
    # Following the advice fixes it.
    subprocess.run(shlex.split(fix.group(1)), check=True, timeout=10)
    assert stat.S_IMODE(inst.state.stat().st_mode) == 0o700
    assert doctor(inst).code == 0


def test_runtime_dir_too_long_for_a_socket(inst: Install) -> None:
    inst.top["runtime_dir"] = "/tmp/" + "r" * 110
    inst.write()
    text = assert_only_failure(doctor(inst), "config", "runtime_dir is too long for a unix socket")
    assert "choose a shorter directory" in text


def test_rejected_token(inst: Install, telegram_api: TelegramSandbox) -> None:
    inst.token = "999999:WRONG-token-from-a-typo"
    inst.write()
    assert_only_failure(doctor(inst), "token",
                        "the token was rejected by Telegram (401): copy it again from @BotFather")
    assert [c["status"] for c in telegram_api.calls("getMe")] == [401]


def test_unreachable_api(inst: Install) -> None:
    with socket.socket() as s:  # bound, not listening: connections are refused
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
        inst.telegram["api_base_url"] = url
        inst.write()
        r = doctor(inst)
    assert_only_failure(r, "token", f"cannot reach the Telegram Bot API at {url}",
                        "telegram.api_base_url")


def test_missing_token(inst: Install) -> None:
    inst.token = ""
    inst.write()
    inst.env_file.write_text("# emptied\n")
    assert_only_failure(doctor(inst), "token", "TELEGRAM_BOT_TOKEN=", str(inst.env_file))


def test_token_file_open_to_others(inst: Install) -> None:
    inst.env_file.chmod(0o644)
    assert_only_failure(doctor(inst), "token-file", f"chmod 600 {inst.env_file}")


def test_empty_allow_list(inst: Install) -> None:
    inst.telegram["allowed_user_ids"] = []
    inst.write()
    assert_only_failure(doctor(inst), "allowed-users", "nobody can use the bot",
                        "telegram.allowed_user_ids")


def test_no_personas(inst: Install) -> None:
    (inst.personas / "default.json").unlink()
    assert_only_failure(doctor(inst), "personas", "*.json", "personas_dir")


def check_config(inst: Install) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SWITCHBOARD), "check-config", "-c", str(inst.config)],
        env=inst.environ(), cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=RUN_TIMEOUT, check=False,
    )


@pytest.mark.parametrize("files, default, field", [
    ({"bad.json": '{"name": "bad", "permission_mode": "yolo"}'}, None, "permission_mode"),
    ({"a.json": '{"name": "twin"}', "b.json": '{"name": "twin"}'}, None, "repeats 'twin'"),
    ({"x.json": '{"name": "not-json"'}, None, "not valid JSON"),
    ({}, "nope", "claude.default_persona"),
    ({"planner.json": '{"name": "reviewer"}'}, "planner", "claude.default_persona"),
])
def test_a_persona_run_refuses_fails_doctor_too(inst: Install, files: dict[str, str],
                                                default: str | None, field: str) -> None:
    for name, text in files.items():
        (inst.personas / name).write_text(text)
    if default is not None:
        inst.claude["default_persona"] = default
    inst.write()
    refused = check_config(inst)
    assert refused.returncode == 2 and field in refused.stderr, refused.stdout + refused.stderr
    assert_only_failure(doctor(inst), "personas", field)


def test_broken_config(inst: Install) -> None:
    inst.telegram["allowed_user_ids"] = "me"
    inst.telegram["tokn"] = "x"
    inst.write()
    r = doctor(inst)
    text = assert_only_failure(r, "config", "has 2 problem(s)")
    assert "telegram.allowed_user_ids must be" in text
    assert "telegram.tokn is not a known field" in text
    assert list(r.checks) == ["config"], "nothing else can be checked without a config"

    j = doctor(inst, "--json")
    data = json.loads(j.out)
    assert j.code == 1 and data["ok"] is False
    assert data["checks"][0]["status"] == "FAIL" and data["checks"][0]["fix"]


def test_no_config_file(inst: Install) -> None:
    inst.config.unlink()
    r = doctor(inst)
    assert_only_failure(r, "config", "does not exist", "`switchboard init`")
