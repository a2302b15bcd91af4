"""`switchboard init`: a first run that works — token checked, config written, unit ready.

It asks for what it needs when stdin is a terminal (or takes it as flags), checks the token with
getMe before writing anything, and writes:
  <config dir>/switchboard.toml   0600, validated with supervisor.config.load
  <config dir>/env                0600, TELEGRAM_BOT_TOKEN=... (read by the supervisor itself)
  <config dir>/switchboard.service  the user unit with this machine's paths
then creates the state dir 0700 and prints the commands that install and start the unit.
It never prints the token and never takes it on the command line (every process can read an
argv): a hidden prompt, the first line of a piped stdin, or the --token-env variable. It refuses
to overwrite an existing config without --force.

A little over 400 lines: the pure renderers and the prompts are one conversation, read top to
bottom; the token and binary lookups, the getMe call and the config checks are borrowed
(supervisor.bot_token, wire.binaries, supervisor.getme, supervisor.config).
"""
from __future__ import annotations

import argparse
import getpass
import json
import os
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from supervisor.bot_token import DEFAULT_TOKEN_ENV, env_file_path, find_token
from supervisor.cli import command, subcommand_main
from supervisor.config import ConfigError, default_config_path, default_state_dir, load, parse
from supervisor.getme import check_token
from wire.binaries import DEFAULT_CLAUDE_BINARY, find_binary, is_path
from wire.files import atomic_write
from wire.settings import DEFAULT_API_BASE

PROJECT_ROOT = Path(__file__).resolve().parent.parent
UNIT_TEMPLATE = PROJECT_ROOT / "systemd" / "switchboard.service"
UNIT_NAME = "switchboard.service"
TOKEN_RE = re.compile(r"^[0-9]+:[A-Za-z0-9_-]+$")
PROMPT_TRIES = 3


class InitError(Exception):
    """One sentence for the user: what is wrong and how to fix it."""


class BadAnswer(InitError):
    """A wrong answer the user can correct at a prompt (asked again when interactive)."""


@dataclass
class Answers:
    token: str
    token_env: str
    allowed_user_ids: list[int]
    state_dir: Path
    api_base_url: str
    claude_binary: str
    token_in_config: bool
    bot_username: str


# ---------------------------------------------------------------------------------------------
# Pure parts: parsing answers and rendering files
# ---------------------------------------------------------------------------------------------


def parse_user_ids(values: list[str]) -> list[int]:
    """"123", "123,456" or "123 456" → [123, 456]; anything else is one sentence."""
    ids: list[int] = []
    for value in values:
        for part in re.split(r"[,\s]+", value.strip()):
            if not part:
                continue
            if not part.isdigit() or int(part) <= 0:
                raise BadAnswer(
                    f"'{part}' is not a Telegram user id: a user id is a positive number "
                    "(message @userinfobot on Telegram to learn yours)."
                )
            if int(part) not in ids:
                ids.append(int(part))
    return ids


def check_token_format(token: str) -> None:
    if not TOKEN_RE.match(token):
        raise BadAnswer(
            "that does not look like a bot token (digits, a colon, then letters): "
            "copy it again from @BotFather."
        )


def toml_str(value: str) -> str:
    # A JSON string is a valid TOML basic string (same escapes, \\uXXXX included).
    return json.dumps(value, ensure_ascii=False)


def render_config(a: Answers, env_file: Path) -> str:
    ids = ", ".join(str(i) for i in a.allowed_user_ids)
    lines = [
        "# Written by `switchboard init`. Every field, with its default and what it does:",
        "# switchboard.example.toml. Check this file with `switchboard doctor -c FILE`.",
        "",
        "# Sessions, logs and the bot's journal (private: 0700).",
        f"state_dir = {toml_str(str(a.state_dir))}",
        "",
        "[telegram]",
    ]
    if a.token_in_config:
        lines.append(f"token = {toml_str(a.token)}  # keep this file 0600")
    else:
        lines.append(f"# The token is read from this variable; it is set in {env_file} (0600).")
    lines += [
        f"token_env = {toml_str(a.token_env)}",
        "# Only these Telegram user ids can use the bot.",
        f"allowed_user_ids = [{ids}]",
        f"api_base_url = {toml_str(a.api_base_url)}",
        "",
        "[claude]",
        "# The Claude Code CLI, as a full path: a systemd unit does not see your shell's PATH.",
        f"binary = {toml_str(a.claude_binary)}",
        "# Extra environment for the CLI, e.g. ANTHROPIC_API_KEY if you do not use `claude login`.",
        "env = {}",
        "",
    ]
    return "\n".join(lines)


def render_env_file(existing: str, var: str, token: str) -> str:
    """The env file with `var` set to the token; every other line kept as it was."""
    kept = [ln for ln in existing.splitlines() if ln.split("=", 1)[0].strip() != var]
    header = [] if kept else ["# Read by `switchboard run` (never loaded into an environment)."
                              " Keep it 0600."]
    return "\n".join([*header, *kept, f"{var}={token}"]) + "\n"


def _systemd_path(path: Path) -> str:
    """A path as a single ExecStart= word (specifiers and spaces escaped)."""
    text = str(path).replace("%", "%%")
    if any(c.isspace() for c in text) or '"' in text or "\\" in text:
        text = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


def render_unit(template: str, exe: Path, config_path: Path) -> str:
    """The template unit with ExecStart= pointing at this machine's files. No EnvironmentFile=:
    `run` reads the env file next to the config itself, so the token is in no environment."""
    out: list[str] = []
    for line in template.splitlines():
        if line.startswith("ExecStart="):
            line = f"ExecStart={_systemd_path(exe)} run -c {_systemd_path(config_path)}"
        out.append(line)
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------


def switchboard_executable() -> Path | None:
    """The real path of the `switchboard` command that is running (or the one beside Python)."""
    argv0 = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if argv0 is not None and argv0.name == "switchboard" and argv0.is_file():
        return Path(os.path.abspath(argv0))
    beside = Path(os.path.abspath(sys.executable)).parent / "switchboard"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = find_binary("switchboard")
    return Path(found) if found else None


def resolve_claude_binary(value: str | None) -> tuple[str, str | None]:
    """A full path for the config (systemd does not see the shell's PATH), or a warning."""
    name = value or DEFAULT_CLAUDE_BINARY
    found = find_binary(name)
    if found:
        return found, None
    if is_path(name):
        p = Path(name).expanduser()
        return str(p.absolute()), f"{p} is not an executable file"
    return name, f"'{name}' is not on PATH"


# ---------------------------------------------------------------------------------------------
# Gathering answers (flags, then environment, then prompts)
# ---------------------------------------------------------------------------------------------


def _interactive(args: argparse.Namespace) -> bool:
    return not args.non_interactive and sys.stdin.isatty()


def _ask(prompt: str) -> str:
    try:
        return input(prompt).strip()
    except EOFError:
        raise InitError("no answer on standard input: pass the values as flags instead.") from None


def _ask_token(api_base_url: str) -> tuple[str, str]:
    for attempt in range(PROMPT_TRIES):
        try:
            token = getpass.getpass("Bot token from @BotFather (input hidden): ").strip()
        except EOFError:
            raise InitError("no token given: type it at the prompt, pipe it on standard input,"
                            " or set TELEGRAM_BOT_TOKEN.") from None
        try:
            check_token_format(token)
            return token, _verify_token(api_base_url, token)
        except BadAnswer as exc:
            if attempt == PROMPT_TRIES - 1:
                raise
            print(exc, file=sys.stderr)
    raise AssertionError("unreachable")


def _verify_token(api_base_url: str, token: str) -> str:
    result = check_token(api_base_url, token)
    if result.username is None:
        kind = BadAnswer if result.rejected else InitError
        raise kind((result.problem or "the token could not be checked") + ".")
    return result.username


def gather(args: argparse.Namespace) -> Answers:
    interactive = _interactive(args)
    token_env = args.token_env or DEFAULT_TOKEN_ENV
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", token_env):
        raise InitError(f"'{token_env}' is not a valid environment variable name for --token-env.")
    api_base_url = args.api_base_url.rstrip("/")
    if not api_base_url.startswith(("http://", "https://")):
        raise InitError("--api-base-url must start with http:// or https://.")

    # The user ids first: a typo there should not cost a network round trip.
    ids = parse_user_ids(args.allowed_user_id or [])
    if not ids:
        if not interactive:
            raise InitError(
                "no allowed user id: pass --allowed-user-id with your Telegram user id "
                "(message @userinfobot on Telegram to learn it)."
            )
        for attempt in range(PROMPT_TRIES):
            answer = _ask("Your Telegram user id "
                          "(@userinfobot tells you; several: comma-separated): ")
            try:
                ids = parse_user_ids([answer])
            except BadAnswer as exc:
                if attempt == PROMPT_TRIES - 1:
                    raise
                print(exc, file=sys.stderr)
                continue
            if ids:
                break
            print("At least one user id is needed, or nobody can use the bot.", file=sys.stderr)
        if not ids:
            raise InitError("no allowed user id given: nobody could use the bot.")

    if args.state_dir:
        state_dir = Path(args.state_dir).expanduser()
    elif interactive:
        default = default_state_dir()
        answer = _ask(f"State directory [{default}]: ")
        state_dir = Path(answer).expanduser() if answer else default
    else:
        state_dir = default_state_dir()
    state_dir = Path(os.path.abspath(state_dir))

    # No config file yet, so no env file beside it: the environment, else a prompt or stdin.
    found = find_token(None, token_env, None)
    token = found.value.strip() if found else None
    if token is None and not interactive and not sys.stdin.isatty():
        token = sys.stdin.readline().strip() or None  # `... | switchboard init`
    if token:
        check_token_format(token)
        username = _verify_token(api_base_url, token)
    elif interactive:
        token, username = _ask_token(api_base_url)
    else:
        raise InitError(
            f"no bot token: pipe it on standard input or set {token_env} in the environment "
            "(@BotFather gives you one)."
        )

    claude_binary, _ = resolve_claude_binary(args.claude_binary)
    return Answers(
        token=token, token_env=token_env, allowed_user_ids=ids, state_dir=state_dir,
        api_base_url=api_base_url, claude_binary=claude_binary,
        token_in_config=args.token_in_config, bot_username=username,
    )


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Write a config for this machine: check the bot token, write switchboard.toml (0600) "
        "and the token's env file, create the state dir, and print how to start the service. "
        "The token is asked for (hidden), or read from the first line of standard input."
    )
    parser.add_argument("-c", "--config", type=Path, default=None,
                        help="where to write the config (default: $SWITCHBOARD_CONFIG, else "
                        "~/.config/switchboard/switchboard.toml)")
    # Kept only to refuse it with a sentence: a token in argv is readable by every process.
    parser.add_argument("--token", help=argparse.SUPPRESS)
    parser.add_argument("--token-env", default=None, metavar="NAME",
                        help=f"the variable that holds the token (default: {DEFAULT_TOKEN_ENV})")
    parser.add_argument("--token-in-config", action="store_true",
                        help="write the token into switchboard.toml instead of the env file")
    parser.add_argument("--allowed-user-id", action="append", metavar="ID",
                        help="a Telegram user id allowed to use the bot (repeatable)")
    parser.add_argument("--state-dir", default=None,
                        help="sessions, logs and journals (default: ~/.local/state/switchboard)")
    parser.add_argument("--api-base-url", default=DEFAULT_API_BASE,
                        help="the Telegram Bot API (default: %(default)s)")
    parser.add_argument("--claude-binary", default=None,
                        help="the Claude Code CLI (default: `claude` found on PATH)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing config")
    parser.add_argument("--non-interactive", action="store_true",
                        help="never prompt; fail when a value is missing")


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except InitError as exc:
        print(f"switchboard init: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nswitchboard init: interrupted; nothing was written.", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace) -> int:
    if args.token is not None:
        raise InitError("--token puts the token on the command line, where every process can read"
                        " it: pipe it on standard input instead (or let init ask for it).")
    config_path = Path(os.path.abspath(
        Path(args.config).expanduser() if args.config else default_config_path()))
    if config_path.exists() and not args.force:
        raise InitError(
            f"{config_path} already exists: pass --force to overwrite it, "
            "or -c to write another file."
        )
    if config_path.is_dir():
        raise InitError(f"{config_path} is a directory: pass -c with a file name.")
    answers = gather(args)
    print(f"Token ok: the bot is @{answers.bot_username}.")

    config_dir = config_path.parent
    env_file = env_file_path(config_path)
    text = render_config(answers, env_file)
    try:  # validate before anything touches the disk
        parse(text, str(config_path), base_dir=config_dir)
    except ConfigError as exc:
        raise InitError(f"the config would be invalid: {'; '.join(exc.problems)}.") from None

    try:
        config_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not answers.token_in_config:
            existing = env_file.read_text() if env_file.exists() else ""
            atomic_write(env_file, render_env_file(existing, answers.token_env, answers.token),
                         0o600)
        atomic_write(config_path, text, 0o600)
        load(config_path)
        answers.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if answers.state_dir.stat().st_uid == os.getuid():
            os.chmod(answers.state_dir, 0o700)
    except ConfigError as exc:
        raise InitError(f"the written config does not load: {'; '.join(exc.problems)}.") from None
    except OSError as exc:
        raise InitError(f"cannot write {exc.filename or config_dir}: {exc.strerror}.") from None

    print(f"Wrote {config_path} (0600).")
    if not answers.token_in_config:
        print(f"Wrote the token to {env_file} (0600) as {answers.token_env}.")
    print(f"State directory: {answers.state_dir} (0700).")
    _, claude_warning = resolve_claude_binary(answers.claude_binary)
    if claude_warning:
        print(f"Warning: the Claude CLI {claude_warning}: install it (npm install -g "
              "@anthropic-ai/claude-code) or set claude.binary to its full path.", file=sys.stderr)
    _print_unit_steps(config_path, env_file)
    return 0


def _print_unit_steps(config_path: Path, env_file: Path) -> None:
    exe = switchboard_executable()
    q = shlex.quote
    if exe is None or not UNIT_TEMPLATE.is_file():
        missing = "the switchboard command" if exe is None else str(UNIT_TEMPLATE)
        print(f"\nNo unit file written ({missing} was not found). Start it by hand:\n"
              f"  switchboard run -c {q(str(config_path))}")
        return
    unit_path = config_path.parent / UNIT_NAME
    try:
        atomic_write(unit_path, render_unit(UNIT_TEMPLATE.read_text(), exe, config_path),
                     0o644)
    except OSError as exc:
        raise InitError(f"cannot write {unit_path}: {exc.strerror}.") from None
    print(f"Wrote the user unit {unit_path} (ExecStart={exe} run -c {config_path}).")
    print("\nCheck everything, then install and start the service:\n"
          f"  {q(str(exe))} doctor -c {q(str(config_path))}\n"
          f"  install -Dm644 {q(str(unit_path))} ~/.config/systemd/user/{UNIT_NAME}\n"
          "  systemctl --user daemon-reload\n"
          "  systemctl --user enable --now switchboard\n"
          '  loginctl enable-linger "$USER"    # keep it running while you are logged out')
    run_cmd = f"{q(str(exe))} run -c {q(str(config_path))}"
    if env_file.exists():
        run_cmd = f"(set -a; . {q(str(env_file))}; exec {run_cmd})"
    print(f"Or try it in the foreground first:\n  {run_cmd}")


command("init", "write a config for this machine: check the bot token, write switchboard.toml, "
        "print how to start the unit", add_arguments)(run)


main = subcommand_main("init")


if __name__ == "__main__":
    sys.exit(main(None))
