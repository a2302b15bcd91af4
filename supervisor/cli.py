"""`switchboard`: the command that runs the supervisor.

Subcommands are entries in COMMANDS (name -> Command); add one by writing a function that fills
its argparse parser and one that runs it, then registering it with `command(...)`. `run` and
`check-config` live here; others (`demo`, `init`, `doctor`) register themselves the same way
from their own modules, listed in PLUGINS.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from supervisor import config as config_mod
from supervisor import preflight
from wire.messages import Persona

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


COMMANDS: dict[str, Command] = {}
# Modules that register more subcommands when imported (missing ones are skipped).
PLUGINS: list[str] = ["supervisor.init_cmd", "supervisor.doctor"]


Handler = Callable[[argparse.Namespace], int]


def command(name: str, help: str, configure: Callable[[argparse.ArgumentParser], None]
            ) -> Callable[[Handler], Handler]:
    def register(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        COMMANDS[name] = Command(name, help, configure, fn)
        return fn
    return register


def add_config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", default=None,
                   help="path to switchboard.toml (default: $SWITCHBOARD_CONFIG or "
                        "~/.config/switchboard/switchboard.toml)")


def config_path(args: argparse.Namespace) -> Path:
    return Path(args.config) if args.config else config_mod.default_config_path()


def load_checked(args: argparse.Namespace, *, to_run: bool
                 ) -> tuple[config_mod.Config, dict[str, Persona]] | None:
    """The config and its personas as supervisor.preflight accepts them, or None after
    printing every problem (each names a field)."""
    try:
        return preflight.load(config_path(args), to_run=to_run)
    except preflight.Refused as exc:
        print(exc.report(), file=sys.stderr)
        return None


@command("run", "run the supervisor in the foreground (sessions, the bot, the control socket)",
         add_config_arg)
def cmd_run(args: argparse.Namespace) -> int:
    from supervisor import bot_token, service, statelock
    from wire import logs
    from wire.endpoints import RuntimeDirError

    loaded = load_checked(args, to_run=True)
    if loaded is None:
        return 2
    cfg, personas = loaded
    # no child may inherit them: the bot token and the transcription key
    bot_token.take_from_environ([cfg.telegram.token_env, cfg.voice.api_key_env])
    token = cfg.token()
    if token:
        logs.add_secret(token)
    voice_key = cfg.voice_key()
    if voice_key:
        logs.add_secret(voice_key)
    logs.redact_stdio()
    tightened = service.prepare_state_dir(cfg.state_path)
    try:
        # Before the log: a refused second supervisor must not write into the first one's.
        statelock.acquire(cfg.state_path, cfg.runtime_path)
    except statelock.AlreadyRunning as exc:
        print(str(exc), file=sys.stderr)
        return 1
    logs.setup("supervisor", cfg.state_dir)
    for path in tightened:
        log.warning("event=state_dir_tightened path=%s mode=0700", path)
    try:
        return service.main_async(cfg, personas)
    except (statelock.AlreadyRunning, RuntimeDirError) as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


@command("check-config", "validate the config file and the personas; name every wrong field",
         add_config_arg)
def cmd_check_config(args: argparse.Namespace) -> int:
    loaded = load_checked(args, to_run=False)
    if loaded is None:
        return 2
    cfg, personas = loaded
    print(f"{cfg.path}: ok ({len(personas)} personas)")
    print(config_mod.reload_note())
    return 0


def _demo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--interactive", dest="interactive", action="store_true", default=None,
                   help="type as the Telegram user after the script"
                   " (default: when stdin is a terminal)")
    p.add_argument("--no-interactive", dest="interactive", action="store_false")
    p.add_argument("--keep", action="store_true", help="keep the demo's temporary state and logs")


@command("demo", "the whole stack against local sandboxes (no token, no internet): a scripted "
         "conversation, then you type as the Telegram user", _demo_args)
def cmd_demo(args: argparse.Namespace) -> int:
    import importlib.util
    import subprocess

    # The demo drives the sandboxes' test-side APIs, so it runs as its own process: the
    # supervisor never imports sandbox/.
    if (importlib.util.find_spec("sandbox.demo") is None
            or importlib.util.find_spec("aiohttp") is None):
        print("the demo needs the sandbox servers: run `make demo` in a source checkout, or install"
              " the extra with `pip install 'claude-switchboard[sandbox]'`.", file=sys.stderr)
        return 1
    argv = [sys.executable, "-m", "sandbox.demo"]
    if args.interactive is not None:
        argv.append("--interactive" if args.interactive else "--no-interactive")
    if args.keep:
        argv.append("--keep")
    try:
        return subprocess.call(argv)
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    for mod in PLUGINS:
        try:
            importlib.import_module(mod)
        except ImportError:
            pass
    parser = argparse.ArgumentParser(
        prog="switchboard",
        description="Run many Claude Code sessions from one Telegram chat, supervised.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for cmd in COMMANDS.values():
        p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help)
        cmd.configure(p)
        p.set_defaults(_run=cmd.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    return int(args._run(args))


def subcommand_main(name: str) -> Callable[[list[str] | None], int]:
    """`main` for a module that registers one subcommand (`python -m supervisor.doctor`): the
    same parser and the same run as `switchboard NAME`."""
    def run_one(argv: list[str] | None = None) -> int:
        return main([name, *(sys.argv[1:] if argv is None else argv)])
    return run_one


if __name__ == "__main__":
    sys.exit(main())
