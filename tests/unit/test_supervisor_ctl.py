"""switchboardctl's pure parts: supervisorctl's status layout and exit codes, name matching."""
from __future__ import annotations

import datetime

import pytest

from supervisor.commands import describe
from supervisor.ctl import detail_line, match, status_exit_code, status_lines
from supervisor.program import Program, ProgramConfig
from wire.messages import ProgramStatus


def row(name: str, state: str, desc: str = "", **kw) -> ProgramStatus:
    return ProgramStatus(name=name, state=state, description=desc, **kw)


def test_layout_is_supervisorctls():
    rows = [row("bot", "RUNNING", "pid 12, uptime 0:01:02"),
            row("session:demo", "STOPPED", "Not started")]
    assert status_lines(rows) == [
        "bot                              RUNNING   pid 12, uptime 0:01:02",
        "session:demo                     STOPPED   Not started",
    ]


def test_long_names_widen_the_column_to_longest_plus_three():
    long = "session:" + "x" * 32
    lines = status_lines([row(long, "FATAL", "gave up"),
                          row("bot", "RUNNING", "pid 1, uptime 0:00:01")])
    assert lines[0] == long + "   FATAL     gave up"
    assert lines[1].index("RUNNING") == len(long) + 3


@pytest.mark.parametrize("states,unknown,code", [
    (["RUNNING"], [], 0), (["RUNNING", "STARTING", "BACKOFF", "STOPPING"], [], 0),
    (["RUNNING", "STOPPED"], [], 3), (["EXITED"], [], 3), (["FATAL"], [], 3),
    (["RUNNING"], ["nope"], 4), ([], ["nope"], 4),
    (["STOPPED"], ["nope"], 3),  # supervisorctl checks stopped after unknown: 3 wins
])
def test_exit_codes_are_supervisorctls(states, unknown, code):
    assert status_exit_code([row(f"p{i}", s) for i, s in enumerate(states)], unknown) == code


def test_match_accepts_bare_session_names_and_reports_unknown():
    rows = [row("bot", "RUNNING"), row("session:demo", "RUNNING")]
    found, unknown = match(rows, ["demo", "session:demo", "bot", "ghost"])
    assert [r.name for r in found] == ["session:demo", "session:demo", "bot"]
    assert unknown == ["ghost"]
    assert match(rows, ["all"]) == (rows, [])


def test_detail_line_says_suspended_or_cli_pid():
    r = row("session:a", "RUNNING", persona="planner", suspended=True, rss_bytes=50 * 1024 * 1024,
            cpu_percent=1.5, cost_usd=0.25, queued=2, idle_seconds=3725)
    assert detail_line(r) == ("    persona=planner claude=suspended rss=50.0MiB cpu=1.5%"
                              " cost=$0.2500 queued=2 idle=1:02:05")
    r.suspended, r.claude_pid = False, 4242
    assert "claude=pid 4242" in detail_line(r)


def test_detail_line_lists_the_processes_the_sessions_tools_started():
    from wire.messages import ToolProcess

    r = row("session:a", "RUNNING", persona="tools", claude_pid=7, idle_seconds=0,
            tools=[ToolProcess(pid=900 + i, name="python3", rss_bytes=1 << 20) for i in range(6)],
            tools_rss_bytes=6 << 20)
    assert detail_line(r).endswith(" tools=6 tools_rss=6.0MiB [900:python3,901:python3,"
                                   "902:python3,903:python3,904:python3,+1]")
    r.tools, r.tools_rss_bytes = [ToolProcess(pid=5, name="sleep")], 0
    assert detail_line(r).endswith(" tools=1 tools_rss=0B [5:sleep]")
    r.tools = []
    assert "tools=" not in detail_line(r)


class _Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def monotonic(self) -> float:
        return self.t

    def wall(self) -> float:
        return 1_700_000_000.0 + self.t

    def call_later(self, delay, cb):
        class T:
            def cancel(self) -> None: ...
        return T()


class _Child:
    pid = 321

    def signal(self, sig: int) -> None: ...


def test_descriptions_match_supervisords_wording():
    clock = _Clock()
    p = Program("session:a", ProgramConfig(startsecs=0), clock, lambda prog: _Child())
    assert describe(p, clock.wall()) == "Not started"
    p.start()
    clock.t += 90061  # 1 day, 1:01:01
    assert describe(p, clock.wall()) == "pid 321, uptime 1 day, 1:01:01"
    p.stop()
    p.child_exited(0)
    stop = datetime.datetime.fromtimestamp(p.stop_wall).strftime("%b %d %I:%M %p")
    assert describe(p, clock.wall()) == stop
