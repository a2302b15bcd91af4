"""`switchboard init` end to end against the sandbox Telegram Bot API.

Every run is a real subprocess with HOME and the XDG dirs in a temp dir, so nothing touches the
real home; the tests assert what a user sees (the files, their modes, the printed commands, the
one-sentence errors) and that the token never appears in the output.
"""
from __future__ import annotations

import errno
import os
import pty
import re
import select
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from sandbox.telegram_api import TelegramSandbox
from supervisor.config import load

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]
RUN_TIMEOUT = 45.0
SWITCHBOARD = Path(sys.executable).parent / "switchboard"
DROP_PREFIXES = ("ANTHROPIC_", "CLAUDE_", "TELEGRAM_", "SWITCHBOARD_", "XDG_")
PROXIES = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}


def init_argv(*args: str) -> list[str]:
    return [str(SWITCHBOARD), "init", *args]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "home"
    h.mkdir()
    return h


@pytest.fixture
def env(home: Path) -> dict[str, str]:
    """A private environment: temp HOME and XDG dirs, no proxies, no inherited secrets."""
    e = {
        k: v for k, v in os.environ.items()
        if not k.upper().startswith(DROP_PREFIXES) and k.lower() not in PROXIES
    }
    e.update({
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "PYTHONPATH": str(ROOT),
    })
    return e


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound (so nobody else takes it), not listening."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    try:
        yield s.getsockname()[1]
    finally:
        s.close()


def run_init(env: dict[str, str], *args: str,
             stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """`switchboard init ARGS`, with `stdin` piped in (the token's way in without a terminal)."""
    return subprocess.run(
        init_argv(*args), env=env, cwd=ROOT, capture_output=True, text=True,
        timeout=RUN_TIMEOUT, check=False,
        **({"input": stdin} if stdin is not None else {"stdin": subprocess.DEVNULL}),
    )


def config_dir(home: Path) -> Path:
    return home / ".config" / "switchboard"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def assert_one_sentence(stderr: str) -> str:
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got {stderr!r}"
    assert lines[0].startswith("switchboard init: ") and lines[0].endswith("."), lines[0]
    return lines[0]


def assert_nothing_written(home: Path) -> None:
    assert not config_dir(home).exists()
    assert not (home / ".local" / "state" / "switchboard").exists()


def test_init_end_to_end(telegram_api: TelegramSandbox, env: dict[str, str], home: Path,
                         claude_bin: str) -> None:
    token = telegram_api.token
    r = run_init(env, "--non-interactive", "--allowed-user-id", "4242",
                 "--allowed-user-id", "77,88", "--api-base-url", telegram_api.url,
                 "--claude-binary", claude_bin, stdin=token + "\n")
    assert r.returncode == 0, r.stderr
    assert token not in r.stdout + r.stderr
    assert "@sandbox_bot" in r.stdout

    cdir = config_dir(home)
    cfg_path, env_file, unit = cdir / "switchboard.toml", cdir / "env", cdir / "switchboard.service"
    assert mode(cfg_path) == 0o600 and mode(env_file) == 0o600
    assert token not in cfg_path.read_text()
    assert f"TELEGRAM_BOT_TOKEN={token}" in env_file.read_text().splitlines()
    assert not list(cdir.glob(".*.tmp")), "a temp file was left behind"

    cfg = load(cfg_path)
    assert cfg.telegram.allowed_user_ids == [4242, 77, 88]
    assert cfg.telegram.api_base_url == telegram_api.url
    assert cfg.token({"TELEGRAM_BOT_TOKEN": token}) == token
    assert cfg.claude.binary == os.path.abspath(claude_bin)
    state = home / ".local" / "state" / "switchboard"
    assert cfg.state_path == state and mode(state) == 0o700

    # The unit points at the real `switchboard` executable, this config and this env file.
    text = unit.read_text()
    exec_start = re.search(r"^ExecStart=(\S+) run -c (\S+)$", text, re.MULTILINE)
    assert exec_start, text
    exe = Path(exec_start.group(1))
    assert exe == SWITCHBOARD and exe.is_file() and os.access(exe, os.X_OK)
    assert exec_start.group(2) == str(cfg_path)
    # The supervisor reads the env file itself: systemd must not put the token in its environ.
    assert not re.search(r"^\s*EnvironmentFile=", text, re.MULTILINE), text
    assert "Type=notify" in text and "%h" not in text

    # The printed commands install and start exactly that unit.
    out = r.stdout
    assert f"install -Dm644 {unit} ~/.config/systemd/user/switchboard.service" in out
    for cmd in ("systemctl --user daemon-reload", "systemctl --user enable --now switchboard",
                "loginctl enable-linger"):
        assert cmd in out
    assert [c["status"] for c in telegram_api.calls("getMe")] == [200]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is not installed")
def test_written_unit_passes_systemd_analyze(telegram_api: TelegramSandbox,
                                             env: dict[str, str], home: Path) -> None:
    r = run_init(env, "--non-interactive", "--allowed-user-id", "1",
                 "--api-base-url", telegram_api.url, stdin=telegram_api.token + "\n")
    assert r.returncode == 0, r.stderr
    unit = config_dir(home) / "switchboard.service"
    proc = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                          text=True, timeout=30, check=False)
    problems = [ln for ln in proc.stderr.splitlines() if unit.name in ln or "Unknown" in ln]
    assert proc.returncode == 0 and not problems, proc.stderr


def test_token_from_named_variable_into_config(telegram_api: TelegramSandbox,
                                               env: dict[str, str], home: Path) -> None:
    """--token-env names the variable (read at init, referenced by the config);
    --token-in-config puts the token into the 0600 toml instead of the env file."""
    env["MY_BOT_TOKEN"] = telegram_api.token
    r = run_init(env, "--non-interactive", "--token-env", "MY_BOT_TOKEN", "--token-in-config",
                 "--allowed-user-id", "5", "--api-base-url", telegram_api.url,
                 "--state-dir", str(home / "sb-state"), "--claude-binary", "claude")
    assert r.returncode == 0, r.stderr
    assert telegram_api.token not in r.stdout + r.stderr
    cfg_path = config_dir(home) / "switchboard.toml"
    assert mode(cfg_path) == 0o600
    assert not (config_dir(home) / "env").exists()
    cfg = load(cfg_path)
    assert cfg.telegram.token == telegram_api.token
    assert cfg.telegram.token_env == "MY_BOT_TOKEN"
    assert mode(home / "sb-state") == 0o700


def test_rejected_token_writes_nothing(telegram_api: TelegramSandbox, env: dict[str, str],
                                       home: Path) -> None:
    wrong = "999999:WRONG-token-from-a-typo"
    r = run_init(env, "--non-interactive", "--allowed-user-id", "1",
                 "--api-base-url", telegram_api.url, stdin=wrong + "\n")
    assert r.returncode == 1
    line = assert_one_sentence(r.stderr)
    assert "the token was rejected by Telegram (401): copy it again from @BotFather" in line
    assert wrong not in r.stdout + r.stderr
    assert_nothing_written(home)
    assert [c["status"] for c in telegram_api.calls("getMe")] == [401]


def test_unreachable_api_writes_nothing(env: dict[str, str], home: Path,
                                        closed_port: int) -> None:
    r = run_init(env, "--non-interactive", "--allowed-user-id", "1",
                 "--api-base-url", f"http://127.0.0.1:{closed_port}", stdin="123:abc\n")
    assert r.returncode == 1
    line = assert_one_sentence(r.stderr)
    assert f"cannot reach the Telegram Bot API at http://127.0.0.1:{closed_port}" in line
    assert "123:abc" not in line
    assert_nothing_written(home)


def test_refuses_to_overwrite_without_force(telegram_api: TelegramSandbox,
                                            env: dict[str, str], home: Path) -> None:
    cfg_path = config_dir(home) / "switchboard.toml"
    cfg_path.parent.mkdir(parents=True)
    cfg_path.write_text("# mine\n")
    args = ["--non-interactive", "--allowed-user-id", "1", "--api-base-url", telegram_api.url]
    r = run_init(env, *args, stdin=telegram_api.token + "\n")
    assert r.returncode == 1
    assert "already exists: pass --force to overwrite it" in assert_one_sentence(r.stderr)
    assert cfg_path.read_text() == "# mine\n"
    assert telegram_api.calls("getMe") == [], "refusing must not need the network"

    env_file = cfg_path.parent / "env"
    env_file.write_text("ANTHROPIC_API_KEY=sk-keep-me\nTELEGRAM_BOT_TOKEN=1:old\n")
    r = run_init(env, *args, "--force", stdin=telegram_api.token + "\n")
    assert r.returncode == 0, r.stderr
    assert load(cfg_path).telegram.allowed_user_ids == [1]
    assert mode(cfg_path) == 0o600 and mode(env_file) == 0o600
    # The env file keeps the user's other variables; only the token line is replaced.
    assert env_file.read_text().splitlines() == [
        "ANTHROPIC_API_KEY=sk-keep-me", f"TELEGRAM_BOT_TOKEN={telegram_api.token}"]


@pytest.mark.parametrize("bad", ["abc", "-5", "0", "12x"])
def test_bad_user_id_is_one_sentence(telegram_api: TelegramSandbox, env: dict[str, str],
                                     home: Path, bad: str) -> None:
    r = run_init(env, "--non-interactive", f"--allowed-user-id={bad}",
                 "--api-base-url", telegram_api.url, stdin=telegram_api.token + "\n")
    assert r.returncode == 1
    line = assert_one_sentence(r.stderr)
    assert "is not a Telegram user id" in line and "@userinfobot" in line
    assert_nothing_written(home)
    assert telegram_api.calls("getMe") == []


def test_a_token_on_the_command_line_is_refused(telegram_api: TelegramSandbox,
                                                env: dict[str, str], home: Path) -> None:
    r = run_init(env, "--non-interactive", "--token", telegram_api.token, "--allowed-user-id", "1",
                 "--api-base-url", telegram_api.url)
    assert r.returncode == 1
    line = assert_one_sentence(r.stderr)
    assert "--token puts the token on the command line" in line and "standard input" in line
    assert telegram_api.token not in r.stdout + r.stderr
    assert_nothing_written(home)
    assert telegram_api.calls("getMe") == [], "refusing must not need the network"


def test_missing_values_without_a_terminal(telegram_api: TelegramSandbox,
                                           env: dict[str, str], home: Path) -> None:
    r = run_init(env, "--allowed-user-id", "1", "--api-base-url", telegram_api.url)
    assert r.returncode == 1
    assert ("no bot token: pipe it on standard input or set TELEGRAM_BOT_TOKEN"
            in assert_one_sentence(r.stderr))
    r = run_init(env, "--api-base-url", telegram_api.url, stdin=telegram_api.token + "\n")
    assert r.returncode == 1
    assert "no allowed user id: pass --allowed-user-id" in assert_one_sentence(r.stderr)
    assert_nothing_written(home)


# ------------------------------------------------------------------------------------------
# The prompt path, through a pseudo-terminal
# ------------------------------------------------------------------------------------------


class Terminal:
    """A child process on a pty that is its controlling terminal (so getpass really hides)."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(
            argv, env=env, cwd=ROOT, stdin=slave, stdout=slave, stderr=slave,
            start_new_session=True, preexec_fn=_take_controlling_tty,  # noqa: PLW1509
        )
        os.close(slave)
        self.output = ""
        self.seen = 0

    def expect(self, text: str, timeout: float = 20.0) -> None:
        """Wait for `text` after the previous match (a repeated prompt must really be new)."""
        deadline = time.monotonic() + timeout
        while (at := self.output.find(text, self.seen)) < 0:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {text!r} on the terminal within {timeout} s:\n"
                                     f"{self.output}")
            if not select.select([self.master], [], [], left)[0]:
                continue
            if not self._read():
                raise AssertionError(f"the terminal closed before {text!r}:\n{self.output}")
        self.seen = at + len(text)

    def send(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\r")

    def _read(self) -> bool:
        try:
            chunk = os.read(self.master, 4096)
        except OSError as exc:  # EIO: the child closed its side
            if exc.errno == errno.EIO:
                return False
            raise
        self.output += chunk.decode(errors="replace")
        return bool(chunk)

    def wait(self, timeout: float = 30.0) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            if select.select([self.master], [], [], 0.1)[0]:
                self._read()
        rc = self.proc.wait(max(deadline - time.monotonic(), 0.1))
        while select.select([self.master], [], [], 0)[0] and self._read():
            pass
        return rc

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        os.close(self.master)
        assert not psutil.pid_exists(self.proc.pid), "init is still running"


def _take_controlling_tty() -> None:
    import fcntl
    import termios

    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def test_interactive_prompts(telegram_api: TelegramSandbox, env: dict[str, str],
                             home: Path) -> None:
    token = telegram_api.token
    term = Terminal(init_argv("--api-base-url", telegram_api.url, "--claude-binary", "claude"),
                    env)
    try:
        term.expect("Your Telegram user id")
        term.send("not-a-number")
        term.expect("is not a Telegram user id")
        term.expect("Your Telegram user id", timeout=10)
        term.send("31337, 42")
        term.expect("State directory [")
        term.send(str(home / "my-state"))
        term.expect("Bot token from @BotFather (input hidden): ")
        term.send("777:rejected-token")
        term.expect("the token was rejected by Telegram (401): copy it again from @BotFather")
        term.expect("Bot token from @BotFather", timeout=10)
        term.send(token)
        assert term.wait() == 0, term.output
    finally:
        term.close()
    assert token not in term.output, "the token was echoed or printed"
    assert "777:rejected-token" not in term.output
    assert "systemctl --user enable --now switchboard" in term.output
    cfg = load(config_dir(home) / "switchboard.toml")
    assert cfg.telegram.allowed_user_ids == [31337, 42]
    assert cfg.state_path == home / "my-state" and mode(home / "my-state") == 0o700
    assert (config_dir(home) / "env").read_text().splitlines()[-1] == f"TELEGRAM_BOT_TOKEN={token}"
