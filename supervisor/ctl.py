"""`switchboardctl`: supervisorctl for Switchboard, over the control socket.

`status` prints exactly supervisorctl's layout and uses its exit codes (3: a listed program is
STOPPED, EXITED or FATAL; 4: an unknown name, or the supervisor is not running). `--json`
everywhere prints machine-readable results instead. `tail` reads the log files directly, so it
works with the supervisor down. Every command is one entry of `COMMANDS` (name, function, help,
arguments), which makes the argparse subparsers and `--help`. This module only talks to the
socket; it never touches programs.

A little over 400 lines: the command table and the commands it names are read together, and
splitting the table from its functions would put one idea in two files.
"""
from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import msgspec

from supervisor import config as config_mod
from supervisor import statelock
from supervisor.states import STOPPED_STATES
from wire import messages as m
from wire import names, rpc
from wire.endpoints import Endpoints
from wire.logs import log_path

EXIT_OK, EXIT_ERROR, EXIT_NOT_RUNNING, EXIT_UNKNOWN = 0, 1, 3, 4


# ---------------------------------------------------------------------- pure formatting


def status_lines(rows: list[m.ProgramStatus]) -> list[str]:
    """supervisorctl's `_show_statuses`: name in max(30, longest)+3, state in 10, description."""
    width = max([30, *(len(r.name) for r in rows)]) + 3
    return [f"{r.name:<{width}}{r.state:<10}{r.description}".rstrip() for r in rows]


def hms(seconds: float | None) -> str:
    return "-" if seconds is None else str(datetime.timedelta(seconds=int(seconds)))


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f}{unit}" if unit == "B" else f"{size:.1f}{unit}"
        size /= 1024
    return f"{n}B"


def detail_line(r: m.ProgramStatus) -> str:
    """The extra line of `status -l`."""
    if r.name == names.BOT_PROGRAM:
        cli = "-"
    elif r.claude_pid:
        cli = f"pid {r.claude_pid}"
    elif r.suspended:
        cli = "suspended"
    else:
        cli = "-"
    return (f"    persona={r.persona or '-'} claude={cli} rss={human_bytes(r.rss_bytes)}"
            f" cpu={r.cpu_percent:.1f}% cost=${r.cost_usd:.4f} queued={r.queued}"
            f" idle={hms(r.idle_seconds)}" + (" busy" if r.busy else "") + tools_part(r)
            + place_part(r) + meter_part(r))


def place_part(r: m.ProgramStatus) -> str:
    """A session's project (`-` for none) and the directory its CLI runs in."""
    if r.work_dir is None:
        return ""
    return f" project={r.project or '-'} dir={r.work_dir}"


def meter_part(r: m.ProgramStatus) -> str:
    """The model, the last turn's tokens, the context fill and the subscription's windows."""
    out = f" model={r.model}" if r.model else ""
    if r.tokens_in or r.tokens_out:
        out += f" tokens_in={r.tokens_in} tokens_out={r.tokens_out}"
    if r.context_percent is not None:
        out += f" context={r.context_percent:.0f}%"
    for w in r.rate_limits:
        if w.utilization is not None:
            out += f" limit_{w.window}={round(w.utilization * 100)}%"
    return out


def tools_part(r: m.ProgramStatus) -> str:
    """What the session's tools started (a `nohup` server): count, RSS, and each pid and name."""
    if not r.tools:
        return ""
    each = ",".join(f"{t.pid}:{t.name}" for t in r.tools[:5])
    more = f",+{len(r.tools) - 5}" if len(r.tools) > 5 else ""
    return f" tools={len(r.tools)} tools_rss={human_bytes(r.tools_rss_bytes)} [{each}{more}]"


def status_exit_code(rows: list[m.ProgramStatus], unknown: list[str]) -> int:
    """supervisorctl's do_status: 4 for an unknown name, then 3 if any listed one is stopped."""
    code = EXIT_UNKNOWN if unknown else EXIT_OK
    if any(r.state in STOPPED_STATES for r in rows):
        code = EXIT_NOT_RUNNING
    return code


def match(rows: list[m.ProgramStatus],
          wanted: list[str]) -> tuple[list[m.ProgramStatus], list[str]]:
    """Rows for the wanted names ('demo' or 'session:demo'), and the names that match nothing."""
    if not wanted or "all" in wanted:
        return rows, []
    by_name = {r.name: r for r in rows}
    found: list[m.ProgramStatus] = []
    unknown: list[str] = []
    for w in wanted:
        qualified = w == names.BOT_PROGRAM or w.startswith(names.SESSION_PREFIX)
        key = w if qualified else names.program_name(w)
        if key in by_name:
            found.append(by_name[key])
        else:
            unknown.append(w)
    return found, unknown


# ---------------------------------------------------------------------- plumbing


class Ctl:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.json: bool = args.json
        path = args.config or config_mod.default_config_path()
        if args.config is None and not Path(path).exists():
            self.cfg = config_mod.parse("", "<defaults>")
        else:
            self.cfg = config_mod.load(path)
        # The running supervisor of this state dir says where its sockets are (a system unit's
        # runtime dir is not the one this shell would derive).
        self.endpoint = Endpoints(statelock.running_runtime_dir(
            self.cfg.state_path, self.cfg.runtime_path)).control
        s = self.cfg.supervisor
        self.long_timeout = 2 * s.stopwaitsecs + s.startsecs + 20

    def request(self, msg: m.Msg, timeout: float = 5.0) -> m.Ok | m.Error:
        return rpc.request_sync(self.endpoint, msg, timeout=timeout)

    def out(self, data: Any) -> None:
        print(json.dumps(msgspec.to_builtins(data), indent=2))

    def fail(self, err: m.Error) -> int:
        if self.json:
            self.out({"error": err.code, "message": err.message})
        else:
            print(f"ERROR: {err.message}", file=sys.stderr)
        return EXIT_UNKNOWN if err.code == m.E_UNKNOWN_NAME else EXIT_ERROR

    def all_rows(self) -> list[m.ProgramStatus] | m.Error:
        reply = self.request(m.Status(id=m.new_id()))
        if isinstance(reply, m.Error):
            return reply
        assert isinstance(reply.result, m.StatusResult)
        return reply.result.programs


# ---------------------------------------------------------------------- commands


def cmd_status(ctl: Ctl) -> int:
    rows = ctl.all_rows()
    if isinstance(rows, m.Error):
        return ctl.fail(rows)
    found, unknown = match(rows, ctl.args.names)
    if ctl.json:
        data: list[Any] = [msgspec.to_builtins(r) for r in found]
        data += [{"name": u, "state": "UNKNOWN", "error": "no such process"} for u in unknown]
        print(json.dumps(data, indent=2))
    else:
        for u in unknown:
            print(f"{u}: ERROR (no such process)")
        for line, row in zip(status_lines(found), found, strict=True):
            print(line)
            if ctl.args.long:
                print(detail_line(row))
    return status_exit_code(found, unknown)


def _action(ctl: Ctl, kind: type[m.Start | m.Stop | m.Restart]) -> int:
    wanted: list[str] = ctl.args.names
    if not wanted:
        print(f"Error: {kind.__name__.lower()} requires a program name (or all)", file=sys.stderr)
        return EXIT_ERROR
    rows = ctl.all_rows()
    if isinstance(rows, m.Error):
        return ctl.fail(rows)
    found, unknown = match(rows, wanted)
    results: list[m.ProgramResult] = [
        m.ProgramResult(name=u, ok=False, message="ERROR (no such process)") for u in unknown]
    if found:
        targets = ["all"] if "all" in wanted else [r.name for r in found]
        reply = ctl.request(kind(id=m.new_id(), names=targets), timeout=ctl.long_timeout)
        if isinstance(reply, m.Error):
            return ctl.fail(reply)
        assert isinstance(reply.result, m.ActionResult)
        results += reply.result.results
    return print_results(ctl, results)


def print_results(ctl: Ctl, results: list[m.ProgramResult]) -> int:
    if ctl.json:
        ctl.out(results)
    else:
        for r in results:
            for line in r.message.splitlines() or [""]:
                print(f"{r.name}: {line}")
    return EXIT_OK if all(r.ok for r in results) else EXIT_ERROR


def _reply_results(ctl: Ctl, reply: m.Ok | m.Error) -> int:
    if isinstance(reply, m.Error):
        return ctl.fail(reply)
    assert isinstance(reply.result, m.ActionResult)
    return print_results(ctl, reply.result.results)


def cmd_new(ctl: Ctl) -> int:
    work_dir = str(Path(ctl.args.dir).expanduser().absolute()) if ctl.args.dir else None
    msg = m.NewSession(id=m.new_id(), name=ctl.args.name, persona=ctl.args.persona,
                       project=ctl.args.project, work_dir=work_dir)
    return _reply_results(ctl, ctl.request(msg, timeout=ctl.long_timeout))


def cmd_remove(ctl: Ctl) -> int:
    msg = m.RemoveSession(id=m.new_id(), name=ctl.args.name)
    return _reply_results(ctl, ctl.request(msg, timeout=ctl.long_timeout))


def cmd_persona(ctl: Ctl) -> int:
    msg = m.SetPersona(id=m.new_id(), name=ctl.args.name, persona=ctl.args.persona)
    return _reply_results(ctl, ctl.request(msg, timeout=ctl.long_timeout))


def cmd_personas(ctl: Ctl) -> int:
    reply = ctl.request(m.ListPersonas(id=m.new_id()))
    if isinstance(reply, m.Error):
        return ctl.fail(reply)
    assert isinstance(reply.result, m.PersonasResult)
    if ctl.json:
        ctl.out(reply.result.personas)
    else:
        for p in reply.result.personas:
            print(f"{p.name:<20}{p.description}".rstrip())
    return EXIT_OK


def cmd_projects(ctl: Ctl) -> int:
    reply = ctl.request(m.ListProjects(id=m.new_id()))
    if isinstance(reply, m.Error):
        return ctl.fail(reply)
    assert isinstance(reply.result, m.ProjectsResult)
    if ctl.json:
        ctl.out(reply.result.projects)
    else:
        for p in reply.result.projects:
            extra = (" worktrees" if p.worktrees else "") + (
                f" persona={p.persona}" if p.persona else "")
            print(f"{p.name:<20}{p.path}{extra} sessions={','.join(p.sessions) or '-'}")
    return EXIT_OK


def cmd_attach(ctl: Ctl) -> int:
    """Suspend the session's CLI; the command that continues it goes to stdout alone (so that
    `eval "$(switchboardctl attach NAME)"` works), what it means to stderr."""
    reply = ctl.request(m.Attach(id=m.new_id(), name=ctl.args.name), timeout=ctl.long_timeout)
    if isinstance(reply, m.Error):
        return ctl.fail(reply)
    assert isinstance(reply.result, m.HandoffResult)
    if ctl.json:
        ctl.out(reply.result)
        return EXIT_OK
    print(f"Session {ctl.args.name} is suspended. While the claude you start with this command"
          " runs, its messages wait; they are answered after it exits:", file=sys.stderr)
    print(reply.result.command)
    return EXIT_OK


def cmd_shutdown(ctl: Ctl) -> int:
    reply = ctl.request(m.Shutdown(id=m.new_id()))
    if isinstance(reply, m.Error):
        return ctl.fail(reply)
    if ctl.json:
        ctl.out({"shutdown": True})
    else:
        print("Shut down")
    return EXIT_OK


def cmd_version(ctl: Ctl) -> int:
    reply = ctl.request(m.Version(id=m.new_id()))
    if isinstance(reply, m.Error):
        return ctl.fail(reply)
    assert isinstance(reply.result, m.VersionResult)
    if ctl.json:
        ctl.out({"version": reply.result.version})
    else:
        print(reply.result.version)
    return EXIT_OK


def tail_file(ctl: Ctl) -> Path:
    name: str = ctl.args.name
    if name == "supervisor":
        program = "supervisor"
    else:
        kind, session = names.parse_program(name)
        program = names.BOT_PROGRAM if kind == "bot" else names.program_name(session or "")
    path = log_path(ctl.cfg.state_dir, program)
    return path.with_suffix(".stdio") if ctl.args.stdio else path


def cmd_tail(ctl: Ctl) -> int:
    """Last lines of a program's log; with -f, follow it (across rotation) until Ctrl-C."""
    try:
        path = tail_file(ctl)
    except names.InvalidName as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if not path.exists() and not ctl.args.follow:
        print(f"ERROR: no log at {path} yet: has '{ctl.args.name}' ever run?", file=sys.stderr)
        return EXIT_ERROR
    pos, ino = 0, None
    if path.exists():
        data = path.read_bytes()
        lines = data.splitlines(keepends=True)[-ctl.args.lines:] if ctl.args.lines else []
        emit(ctl, b"".join(lines))
        pos, ino = len(data), path.stat().st_ino
    if not ctl.args.follow:
        return EXIT_OK
    try:
        while True:
            try:
                st = path.stat()
            except FileNotFoundError:
                time.sleep(0.2)
                continue
            if st.st_ino != ino or st.st_size < pos:
                pos, ino = 0, st.st_ino  # rotated or truncated: start the new file from the top
            if st.st_size > pos:
                with path.open("rb") as f:
                    f.seek(pos)
                    chunk = f.read(st.st_size - pos)
                pos += len(chunk)
                emit(ctl, chunk)
            else:
                time.sleep(0.2)
    except KeyboardInterrupt:
        return EXIT_OK


def emit(ctl: Ctl, chunk: bytes) -> None:
    if not chunk:
        return
    if ctl.json:
        for line in chunk.decode(errors="replace").splitlines():
            print(json.dumps({"name": ctl.args.name, "line": line}))
    else:
        sys.stdout.write(chunk.decode(errors="replace"))
    sys.stdout.flush()


# ---------------------------------------------------------------------- the command table


Arg = tuple[tuple[str, ...], dict[str, Any]]


def arg(*flags: str, **options: Any) -> Arg:
    """One argument of a command, as add_argument(*flags, **options) takes it."""
    return flags, options


@dataclass(frozen=True)
class CtlCommand:
    """One switchboardctl command: its help is what `switchboardctl --help` and `NAME -h` say."""

    name: str
    run: Callable[[Ctl], int]
    help: str
    args: tuple[Arg, ...] = ()


NAMES = arg("names", nargs="*", metavar="NAME|all")

# Every switchboardctl command, in the order `--help` lists them. Adding one is one entry here
# plus its cmd_ function (and its line in README.md's Commands section, which a test checks).
COMMANDS: tuple[CtlCommand, ...] = (
    CtlCommand("status", cmd_status, "show programs in supervisorctl's layout (exit 3: one is"
               " not running, 4: unknown name)", (
                   arg("-l", "--long", action="store_true", help="add persona, CLI pid or"
                       " suspended, RSS, CPU%%, cost, queue, idle time, project, dir"),
                   arg("names", nargs="*", metavar="NAME"))),
    CtlCommand("start", partial(_action, kind=m.Start), "start programs (clears FATAL)",
               (NAMES,)),
    CtlCommand("stop", partial(_action, kind=m.Stop), "stop programs; they stay stopped"
               " across restarts", (NAMES,)),
    CtlCommand("restart", partial(_action, kind=m.Restart), "stop, then start programs",
               (NAMES,)),
    CtlCommand("new", cmd_new, "create a session and start it",
               (arg("name"), arg("--persona", default=None),
                arg("--project", default=None, help="work in this [projects.NAME] of the"
                    " config"),
                arg("--dir", default=None, help="work in this directory instead (it must"
                    " exist)"))),
    CtlCommand("remove", cmd_remove, "stop a session and delete its history and work folder",
               (arg("name"),)),
    CtlCommand("persona", cmd_persona, "give a session another persona (restarts it)",
               (arg("name"), arg("persona"))),
    CtlCommand("personas", cmd_personas, "list the personas"),
    CtlCommand("projects", cmd_projects, "list the configured projects and their sessions"),
    CtlCommand("tail", cmd_tail, "print the end of a program's log (bot, NAME or supervisor)", (
        arg("-f", "--follow", action="store_true", help="keep printing new lines"),
        arg("-n", "--lines", type=int, default=20, help="lines to show first (default 20)"),
        arg("--stdio", action="store_true", help="the program's raw stdout/stderr instead"),
        arg("name"))),
    CtlCommand("attach", cmd_attach, "suspend a session's CLI and print the command that"
               " continues its conversation at a terminal", (arg("name"),)),
    CtlCommand("shutdown", cmd_shutdown, "stop every program and the supervisor"),
    CtlCommand("version", cmd_version, "print the supervisor's version"),
)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-c", "--config", default=argparse.SUPPRESS,
                        help="path to switchboard.toml (default: $SWITCHBOARD_CONFIG or "
                             "~/.config/switchboard/switchboard.toml)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="print machine-readable JSON")
    parser = argparse.ArgumentParser(prog="switchboardctl", parents=[common],
                                     description="Control a running Switchboard supervisor.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for cmd in COMMANDS:
        p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help, parents=[common])
        p.set_defaults(_run=cmd.run)
        for flags, options in cmd.args:
            p.add_argument(*flags, **options)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.config = getattr(args, "config", None)
    args.json = getattr(args, "json", False)
    if not getattr(args, "_run", None):
        parser.print_help()
        return EXIT_ERROR
    try:
        ctl = Ctl(args)
    except config_mod.ConfigError as exc:
        print(exc.report(), file=sys.stderr)
        return EXIT_ERROR
    try:
        return int(args._run(ctl))
    except rpc.RpcTimeout as exc:
        if ctl.json:
            ctl.out({"error": m.E_UNAVAILABLE, "message": str(exc)})
        else:
            print(f"ERROR: {exc}", file=sys.stderr)
        return EXIT_UNKNOWN if args.command == "status" else EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())


