"""Doctor's rows about the Claude CLI: the binary runs, its version against the one Switchboard
pins, and a login or API key as the CLI itself sees it. Like all of doctor it only looks, and
never prints a key: it names where a key was found, never the key.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from supervisor.bot_token import env_file_path, read_env_file
from supervisor.check import FAIL, OK, WARN, Check
from supervisor.config import Config
from wire.binaries import find_binary

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CLI_TIMEOUT = 30.0
CLI_PACKAGE = "@anthropic-ai/claude-code"


def pinned_cli_version(makefile: Path = PROJECT_ROOT / "Makefile") -> str | None:
    """CLAUDE_CODE_VERSION from the project's Makefile, when this is a source checkout."""
    try:
        text = makefile.read_text()
    except OSError:
        return None
    m = re.search(r"^CLAUDE_CODE_VERSION\s*[:?]?=\s*(\S+)", text, re.MULTILINE)
    return m.group(1) if m else None


def cli_environment(cfg: Config, config_path: Path) -> dict[str, str]:
    """The environment the Claude CLI will see: ours, plus the env file (the unit loads it),
    plus [claude].env, without the bot token."""
    env = dict(os.environ)
    env.update(read_env_file(env_file_path(config_path)))
    env.update(cfg.claude.env)
    env.pop(cfg.telegram.token_env, None)
    return env


def run_briefly(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=CLI_TIMEOUT, check=False,
    )


def last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:200] if lines else ""


def check_cli(cfg: Config, env: dict[str, str]) -> tuple[list[Check], str | None]:
    """The binary is there and runs; its version against the pinned one. Returns the path."""
    binary = cfg.claude.binary
    path = find_binary(binary, env.get("PATH", os.defpath))
    if path is None:
        return [Check(
            "claude-cli", FAIL, f"'{binary}' was not found",
            f"install the Claude CLI (`npm install -g {CLI_PACKAGE}`) or set claude.binary "
            "to its full path",
        )], None
    try:
        proc = run_briefly([path, "--version"], env)
    except subprocess.TimeoutExpired:
        return [Check("claude-cli", FAIL, f"`{path} --version` did not answer in "
                      f"{CLI_TIMEOUT:.0f} s", "reinstall the Claude CLI")], None
    except OSError as exc:
        return [Check("claude-cli", FAIL, f"{path} cannot be run ({exc.strerror})",
                      "reinstall the Claude CLI or fix claude.binary")], None
    if proc.returncode != 0:
        why = last_line(proc.stderr) or last_line(proc.stdout)
        return [Check("claude-cli", FAIL, f"`{path} --version` failed (exit {proc.returncode}"
                      + (f": {why})" if why else ")"),
                      "reinstall the Claude CLI or fix claude.binary")], None
    out = proc.stdout.strip()
    m = re.search(r"\d+\.\d+\.\d+\S*", out)
    version = m.group(0) if m else None
    checks = [Check("claude-cli", OK, f"{path}, version {version or out[:60]}")]
    pinned = pinned_cli_version()
    if pinned and version:
        if version == pinned:
            checks.append(Check("claude-version", OK, f"{version} is the version Switchboard pins"))
        else:
            checks.append(Check(
                "claude-version", WARN, f"{version}; Switchboard is tested with {pinned}",
                f"install the tested one with `npm install -g {CLI_PACKAGE}@{pinned}` "
                "if something misbehaves",
            ))
    return checks, path


_KEY_VARS = ("ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_AUTH_TOKEN")
_LOGIN_FIX = ("run `claude login` as this user, or set ANTHROPIC_API_KEY in the [claude].env "
              "table of the config")


def _key_source(cfg: Config, env: dict[str, str], config_path: Path) -> str | None:
    env_file = env_file_path(config_path)
    for var in _KEY_VARS:
        if env.get(var):
            if var in cfg.claude.env:
                return f"{var} in [claude].env"
            if var in read_env_file(env_file):
                return f"{var} in {env_file}"
            return f"{var} in the environment"
    return None


def _files_login(env: dict[str, str]) -> str | None:
    """What the CLI reads when no key is in the environment (for CLIs without `auth status`)."""
    home = Path(env.get("HOME") or Path.home())
    custom = env.get("CLAUDE_CONFIG_DIR")
    config_dir = Path(custom) if custom else home / ".claude"
    creds = config_dir / ".credentials.json"
    if creds.is_file():
        return f"logged in ({creds})"
    global_cfg = (config_dir if custom else home) / ".claude.json"
    try:
        data = json.loads(global_cfg.read_text())
    except (OSError, ValueError):
        return None
    if isinstance(data, dict) and (data.get("primaryApiKey") or data.get("oauthAccount")):
        return f"logged in ({global_cfg})"
    return None


def check_login(cfg: Config, config_path: Path, env: dict[str, str], cli_path: str | None
                ) -> Check:
    """Logged in or an API key, as the CLI itself sees it (`claude auth status`) when it can."""
    if cli_path is not None:
        try:
            proc = run_briefly([cli_path, "auth", "status"], env)
            status = json.loads(proc.stdout)
        except (OSError, subprocess.TimeoutExpired, ValueError):
            status = None
        if isinstance(status, dict) and "loggedIn" in status:
            if status.get("loggedIn"):
                source = status.get("apiKeySource")
                if source in _KEY_VARS:
                    detail = _key_source(cfg, env, config_path) or str(source)
                elif source:
                    detail = f"API key ({source})"
                else:
                    detail = f"logged in ({status.get('authMethod') or 'unknown method'})"
                return Check("claude-login", OK, detail)
            return Check("claude-login", FAIL, "the Claude CLI is not logged in and has no API key",
                         _LOGIN_FIX)
    found = _key_source(cfg, env, config_path) or _files_login(env)
    if found:
        return Check("claude-login", OK, found)
    return Check("claude-login", FAIL, "no API key and no login found for the Claude CLI",
                 _LOGIN_FIX)
