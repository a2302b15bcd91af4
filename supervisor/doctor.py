"""`switchboard doctor`: check an installation and say, for each problem, what to fix.

Each check is a small function returning a `Check` (ok / warn / FAIL, a short detail, and for a
problem one sentence naming the fix). Doctor only looks: it creates no directory, writes no file
and changes no mode. It must never print a secret: the bot token only ever travels inside a
request URL (supervisor.getme), and every message that could echo it goes through `_redact`.

One small function per row of the report, read top to bottom in the order the report prints
them; the rows about the Claude CLI itself (binary, version, login) are supervisor.doctor_claude.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import stat
import sys
from dataclasses import asdict
from pathlib import Path

from supervisor.bot_token import env_file_path
from supervisor.check import FAIL, OK, WARN, Check
from supervisor.cli import command, subcommand_main
from supervisor.config import Config, ConfigError, default_config_path, load
from supervisor.doctor_claude import check_cli, check_login, cli_environment, last_line, run_briefly
from supervisor.getme import check_token
from supervisor.getme import redact as _redact
from supervisor.personas import DEFAULT, PersonaError, load_for
from supervisor.projects import problems as project_problems
from wire import messages as m
from wire import sandbox
from wire.binaries import find_binary
from wire.endpoints import CONTROL, MAX_SOCKET_PATH, Endpoints
from wire.names import BOT_PROGRAM

STATUS_TIMEOUT = 2.0


# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------


def _private_dir_check(name: str, field: str, path: Path) -> Check:
    """A directory that must be 0700 and ours; a missing one is fine if it can be created."""
    try:
        st = path.stat()
    except FileNotFoundError:
        parent = path.parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if os.access(parent, os.W_OK | os.X_OK):
            return Check(name, OK, f"{path} (will be created 0700 at start)")
        return Check(
            name, FAIL, f"{path} does not exist and cannot be created",
            f"create it with `mkdir -p -m 700 {shlex.quote(str(path))}` or set {field} "
            "to a directory you can write",
        )
    except OSError as exc:
        return Check(name, FAIL, f"{path}: {exc.strerror}", f"set {field} to a directory you own")
    if not stat.S_ISDIR(st.st_mode):
        return Check(name, FAIL, f"{path} is not a directory",
                     f"remove it or set {field} to another path")
    if st.st_uid != os.getuid():
        return Check(
            name, FAIL, f"{path} belongs to uid {st.st_uid}, not to you (uid {os.getuid()})",
            f"set {field} to a directory you own",
        )
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        return Check(
            name, FAIL, f"{path} is open to other users (mode {mode:04o})",
            f"run `chmod 700 {shlex.quote(str(path))}`",
        )
    return Check(name, OK, f"{path} (0700)")


# ---------------------------------------------------------------------------------------------
# The checks
# ---------------------------------------------------------------------------------------------


def check_dirs(cfg: Config) -> list[Check]:
    checks = [
        _private_dir_check("state-dir", "state_dir", cfg.state_path),
        _private_dir_check("runtime-dir", "runtime_dir", cfg.runtime_path),
    ]
    sock = cfg.runtime_path / CONTROL
    n = len(os.fsencode(str(sock)))
    if n > MAX_SOCKET_PATH:
        checks.append(Check(
            "socket-path", FAIL, f"{sock} is {n} bytes, more than the {MAX_SOCKET_PATH} a unix "
            "socket path allows",
            f"set runtime_dir to a shorter path such as /tmp/sb-{os.getuid()}",
        ))
    else:
        checks.append(Check("socket-path", OK, f"{n} of {MAX_SOCKET_PATH} bytes"))
    return checks


def check_secret_file(name: str, path: Path) -> Check | None:
    """A file holding the token must not be readable by anyone else."""
    try:
        st = path.stat()
    except OSError:
        return None
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        return Check(name, FAIL, f"{path} holds the bot token and is open to other users "
                     f"(mode {mode:04o})", f"run `chmod 600 {shlex.quote(str(path))}`")
    return None


def check_telegram(cfg: Config, config_path: Path) -> list[Check]:
    t = cfg.telegram
    if not t.enabled:
        return [Check("telegram", OK, "the bot is disabled (telegram.enabled = false)")]
    checks: list[Check] = []
    found = cfg.token_source()
    if found is None:
        env_file = env_file_path(config_path)
        checks.append(Check(
            "token", FAIL, f"no bot token (telegram.token is unset and so is {t.token_env})",
            f"put {t.token_env}=<token from @BotFather> in {env_file} (mode 0600), "
            "or run `switchboard init`",
        ))
    else:
        token, source = found.value, found.source
        leak = check_secret_file("token-file", found.file) if found.file else None
        if leak:
            checks.append(leak)
        result = check_token(t.api_base_url, token)
        if result.username:
            checks.append(Check("token", OK, f"works: the bot is @{result.username} ({source})"))
        elif result.rejected:
            checks.append(Check("token", FAIL, f"rejected ({source})",
                                _redact(result.problem or "", token)))
        else:
            checks.append(Check("token", FAIL, "could not be checked",
                                _redact(result.problem or "", token)))
    if t.allowed_user_ids:
        n = len(t.allowed_user_ids)
        checks.append(Check("allowed-users", OK, f"{n} user{'s' if n > 1 else ''}"))
    else:
        checks.append(Check(
            "allowed-users", FAIL, "telegram.allowed_user_ids is empty",
            "nobody can use the bot: add your Telegram user id to telegram.allowed_user_ids "
            f"in {config_path} (message @userinfobot to learn it)",
        ))
    return checks


def check_running_bot(cfg: Config) -> Check | None:
    """With a supervisor running and the bot being retried, since when and why; else None.

    The bot is never given up: when it cannot start (Telegram unreachable, a refused token) the
    supervisor keeps retrying it and its status line says since when and why."""
    if not cfg.telegram.enabled:
        return None
    from supervisor.statelock import running_runtime_dir
    from wire import rpc

    where = running_runtime_dir(cfg.state_path, cfg.runtime_path)
    try:
        reply = rpc.request_sync(Endpoints(where).control,
                                 m.Status(id=m.new_id(), names=[BOT_PROGRAM]), STATUS_TIMEOUT)
    except rpc.RpcTimeout:
        return None
    if not isinstance(reply, m.Ok) or not isinstance(reply.result, m.StatusResult):
        return None
    row = next((p for p in reply.result.programs if p.name == BOT_PROGRAM), None)
    if row is None:
        return None
    at = row.description.find("retrying since")
    if at < 0:
        return None
    return Check("bot", WARN, f"{row.state}, {row.description[at:]}",
                 "the supervisor keeps retrying it by itself; `switchboardctl tail bot`"
                 " shows the detail")


def check_personas(cfg: Config) -> Check:
    """The personas as `run` loads them (supervisor.personas.load_for): what it refuses FAILs
    here with the same sentence; doctor also wants at least one file and the default in one."""
    d = cfg.personas_path
    if not d.is_dir():
        return Check("personas", FAIL, f"{d} does not exist",
                     "set personas_dir to a directory of persona *.json files")
    files = sorted(d.glob("*.json"))
    if not files:
        return Check("personas", FAIL, f"no *.json persona in {d}",
                     f"add a persona file to {d} or set personas_dir to one that has them")
    try:
        personas = load_for(cfg)
    except PersonaError as exc:
        return Check("personas", FAIL, str(exc),
                     "correct the field named in that persona file (`switchboard run` refuses "
                     "to start until it is right)")
    except ConfigError as exc:
        return Check("personas", FAIL, "; ".join(exc.problems),
                     f"add {cfg.claude.default_persona}.json to {d} or set "
                     "claude.default_persona to one of the personas there")
    if personas[cfg.claude.default_persona] is DEFAULT:
        return Check("personas", WARN, f"{len(files)} in {d}, but not the default "
                     f"'{cfg.claude.default_persona}'",
                     f"add {cfg.claude.default_persona}.json or set claude.default_persona")
    return Check("personas", OK, f"{len(files)} in {d}")


def check_sandbox(cfg: Config, env: dict[str, str]) -> Check:
    """Whether sessions' tools get Claude Code's OS sandbox here (wire.sandbox decides it the
    same way for the worker), with a trial run of bubblewrap: it needs user namespaces."""
    missing = sandbox.missing_programs(env.get("PATH"))
    try:
        asking = sorted(p.name for p in load_for(cfg).values() if p.sandbox)
    except (PersonaError, ConfigError):
        asking = []  # check_personas reports it
    if missing:
        what = " and ".join(missing)
        if asking:
            return Check("sandbox", FAIL, f"{what} not installed, but persona(s)"
                         f" {', '.join(asking)} set \"sandbox\": true",
                         f"run `{sandbox.INSTALL}` (or set \"sandbox\": false in them)")
        return Check("sandbox", WARN, f"{what} not installed: sessions' tools run without"
                     " Claude Code's sandbox and can reach Switchboard's config, state and"
                     " sockets", f"run `{sandbox.INSTALL}`")
    bwrap = find_binary("bwrap", env.get("PATH")) or "bwrap"
    trial = run_briefly([bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--unshare-pid",
                  "--proc", "/proc", "true"], env)
    if trial.returncode != 0:
        return Check("sandbox", WARN, f"bubblewrap cannot start a sandbox here:"
                     f" {last_line(trial.stderr or trial.stdout)}",
                     "allow unprivileged user namespaces (kernel.unprivileged_userns_clone=1,"
                     " or an AppArmor profile for bwrap), or run sessions with \"sandbox\":"
                     " false in their persona")
    return Check("sandbox", OK, "bubblewrap and socat: sessions' tools run in Claude Code's"
                 " sandbox")


def check_projects(cfg: Config) -> Check | None:
    """The configured projects, checked by the same function `run` refuses them with
    (supervisor.projects.problems); no row when there are none."""
    if not cfg.projects:
        return None
    try:
        personas = load_for(cfg)
    except (PersonaError, ConfigError):
        # check_personas reports it; a project's persona is not judged against a broken set
        personas = {p.persona: DEFAULT for p in cfg.projects.values() if p.persona}
    found = project_problems(cfg, personas)
    if found:
        return Check("projects", FAIL, "; ".join(found),
                     "correct each field named (`switchboard run` refuses the config until"
                     " then)")
    return Check("projects", OK, ", ".join(
        f"{n} ({p.path}{', worktrees' if p.worktrees else ''})"
        for n, p in sorted(cfg.projects.items())))


def check_voice(cfg: Config) -> Check | None:
    """Voice transcription, when configured: where it goes, and whether its key is there."""
    v = cfg.voice
    if not v.api_base_url:
        return None
    where = f"{v.api_base_url} ({v.model})"
    if v.api_key_env and not cfg.voice_key():
        return Check("voice", WARN, f"{where}, but ${v.api_key_env} is not set",
                     f"put {v.api_key_env}=... in the env file next to the config (0600), or"
                     " clear voice.api_key_env for a server that needs no key")
    return Check("voice", OK, where + (f", key from ${v.api_key_env}" if v.api_key_env
                                       else ", no key"))


def run_checks(config_path: Path) -> list[Check]:
    try:
        cfg = load(config_path)
    except ConfigError as exc:
        if not config_path.expanduser().exists():
            return [Check("config", FAIL, f"{config_path} does not exist",
                          "create it with `switchboard init`, or pass -c with its path")]
        return [Check("config", FAIL, exc.report(),
                      f"correct each problem listed for {exc.path} "
                      "(switchboard.example.toml describes every field)")]
    checks = [Check("config", OK, str(config_path))]
    env = cli_environment(cfg, config_path)
    cli_checks, cli_path = check_cli(cfg, env)
    checks += cli_checks
    checks.append(check_login(cfg, config_path, env, cli_path))
    checks += check_dirs(cfg)
    checks += check_telegram(cfg, config_path)
    running = check_running_bot(cfg)
    if running is not None:
        checks.append(running)
    checks.append(check_personas(cfg))
    checks.append(check_sandbox(cfg, env))
    if (projects := check_projects(cfg)) is not None:
        checks.append(projects)
    voice = check_voice(cfg)
    if voice is not None:
        checks.append(voice)
    return checks


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = "Check the installation and say what to fix for each problem."
    parser.add_argument("-c", "--config", type=Path, default=None,
                        help="config file (default: $SWITCHBOARD_CONFIG, else "
                        "~/.config/switchboard/switchboard.toml)")
    parser.add_argument("--json", action="store_true", help="print the checks as JSON")


def render(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    lines: list[str] = []
    for c in checks:
        first, *rest = c.detail.splitlines() or [""]
        lines.append(f"{c.status:<4}  {c.name:<{width}}  {first}".rstrip())
        lines += [f"{'':<{width + 6}}{ln}" for ln in rest]
        if c.fix and c.status != OK:
            lines.append(f"{'':<{width + 6}}fix: {c.fix}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    config_path = Path(args.config).expanduser() if args.config else default_config_path()
    checks = run_checks(config_path)
    failed = any(c.status == FAIL for c in checks)
    if args.json:
        print(json.dumps({"ok": not failed, "config": str(config_path),
                          "checks": [asdict(c) for c in checks]}, indent=2))
    else:
        print(render(checks))
        fails = sum(c.status == FAIL for c in checks)
        warns = sum(c.status == WARN for c in checks)
        print(f"\n{fails} problem(s), {warns} warning(s)." if fails or warns
              else "\nEverything looks right.")
    return 1 if failed else 0


command("doctor", "check the installation and say what to fix for each problem",
        add_arguments)(run)


main = subcommand_main("doctor")


if __name__ == "__main__":
    sys.exit(main(None))
