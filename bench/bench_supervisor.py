"""Supervisor benchmark: kill-to-RUNNING latency, `switchboardctl status` wall time with 100
sessions, and the supervisor's CPU while idle with 100 sessions.

    .venv/bin/python bench/bench_supervisor.py [--kills 40] [--sessions 100]

Kill latency uses the real session worker (one session, no turns, so no CLI is started); it is
read from the supervisor's own StateChange events (their `time`), so no polling skews it:
"new pid" is SIGKILL -> STARTING with a new pid, "RUNNING" adds `startsecs` (1 s, supervisord's
default). The retry window is shortened so each kill counts as a first crash (otherwise the
crash-loop backoff would, correctly, slow the restarts down).

The 100-session figures use the stand-in worker of tests/support/standin (a ~25 MB Python
process that registers and answers heartbeats): 100 real workers do not fit two cores and
would measure the workers, not the supervisor. Heartbeat and sweep run at their defaults (2 s).
"""
from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the tests' harnesses (tests/support/)

from supervisor.registry import Registry, SessionRecord
from tests.support.supervisor import SupervisorHarness
from tests.support.waits import wait_until
from wire import messages as m


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def bench_kills(base: Path, kills: int) -> dict[str, float]:
    sup = SupervisorHarness(base, standin=False, supervisor={
        "startsecs": 1.0, "startretries": 3, "retry_window_seconds": 0.5,
        "heartbeat_interval_seconds": 2.0, "heartbeat_timeout_seconds": 15.0,
        "sweep_interval_seconds": 2.0})
    to_pid: list[float] = []
    to_running: list[float] = []
    try:
        sup.start()
        sup.subscribe()
        assert sup.ok(m.NewSession(id=m.new_id(), name="kb"), timeout=30).results[0].ok
        for _ in range(kills):
            pid = sup.wait_state("session:kb", "RUNNING").pid
            n = len(sup.drain_events())
            t0 = time.time()
            os.kill(pid, signal.SIGKILL)
            running = wait_until(lambda n=n: next(
                (e for e in sup.drain_events()[n:] if e.to_state == "RUNNING"), None),
                10, "RUNNING")
            started = next(e for e in sup.events[n:] if e.to_state == "STARTING")
            assert started.pid != pid and running.pid == started.pid
            to_pid.append(started.time - t0)
            to_running.append(running.time - t0)
            time.sleep(0.6)  # past the retry window: the next kill is a first crash again
    finally:
        sup.close()
    return {"pid_med": statistics.median(to_pid), "pid_p99": pct(to_pid, 0.99),
            "run_med": statistics.median(to_running), "run_p99": pct(to_running, 0.99)}


def bench_crash_loop(base: Path, rounds: int = 3) -> float:
    """Seconds from starting an always-crashing program to FATAL, with the default policy
    (startsecs 1, startretries 3, backoff from 0.5 s); supervisord's defaults take ~6 s."""
    sup = SupervisorHarness(base, standin=True, supervisor={
        "startsecs": 1.0, "startretries": 3, "retry_window_seconds": 60.0,
        "backoff_initial_seconds": 0.5, "backoff_max_seconds": 30.0,
        "heartbeat_interval_seconds": 2.0, "heartbeat_timeout_seconds": 15.0})
    took = []
    try:
        sup.start()
        sup.subscribe()
        for i in range(rounds):
            name = f"crash-{i}"
            t0 = time.time()
            sup.request(m.NewSession(id=m.new_id(), name=name), timeout=30)
            fatal = sup.wait_event(lambda e, p=f"session:{name}": e.program == p
                                   and e.to_state == "FATAL", timeout=60, what="FATAL")
            took.append(fatal.time - t0)
    finally:
        sup.close()
    return statistics.median(took)


def bench_hundred(base: Path, sessions: int) -> dict[str, float]:
    sup = SupervisorHarness(base, standin=True, supervisor={
        "startsecs": 1.0, "heartbeat_interval_seconds": 2.0, "heartbeat_timeout_seconds": 15.0,
        "sweep_interval_seconds": 2.0, "stopwaitsecs": 10.0})
    reg = Registry(sup.state_dir)
    for i in range(sessions):
        reg.sessions[f"s{i:03d}"] = SessionRecord(name=f"s{i:03d}", persona="default")
    reg.save()
    out: dict[str, float] = {}
    try:
        t0 = time.monotonic()
        sup.start()
        wait_until(lambda: sum(r.state == "RUNNING" for r in sup.status().values()) == sessions,
                   120, "all sessions RUNNING", step=0.2)
        out["boot_s"] = time.monotonic() - t0
        time.sleep(3)  # let the boot settle: measure a steady state, not the spawn storm
        walls = []
        for _ in range(10):
            t = time.monotonic()
            r = sup.ctl("status")
            walls.append(time.monotonic() - t)
            assert r.returncode == 0 and len(r.stdout.splitlines()) == sessions, r
        out["status_med"] = statistics.median(walls)
        reqs = []
        for _ in range(50):
            t = time.monotonic()
            sup.status()
            reqs.append(time.monotonic() - t)
        out["status_rpc_med"] = statistics.median(reqs)
        proc = psutil.Process(sup.proc.pid)
        c0, t0 = proc.cpu_times(), time.monotonic()
        time.sleep(20)
        c1, t1 = proc.cpu_times(), time.monotonic()
        out["idle_cpu_pct"] = 100 * ((c1.user + c1.system) - (c0.user + c0.system)) / (t1 - t0)
        out["sup_rss_mb"] = proc.memory_info().rss / 2**20
        t = time.monotonic()
        sup.stop(60)
        out["stop_all_s"] = time.monotonic() - t
    finally:
        sup.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=40)
    ap.add_argument("--sessions", type=int, default=100)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="sbbench-") as d:
        (Path(d) / "k").mkdir()
        (Path(d) / "h").mkdir()
        (Path(d) / "c").mkdir()
        k = bench_kills(Path(d) / "k", args.kills)
        fatal_s = bench_crash_loop(Path(d) / "c")
        h = bench_hundred(Path(d) / "h", args.sessions)
    ms = 1000
    rows = [
        (f"SIGKILL -> new pid, median ({args.kills} kills, real worker)",
         f"{k['pid_med'] * ms:.1f} ms"),
        ("SIGKILL -> new pid, p99", f"{k['pid_p99'] * ms:.1f} ms"),
        ("SIGKILL -> RUNNING, median (startsecs = 1 s)", f"{k['run_med'] * ms:.0f} ms"),
        ("SIGKILL -> RUNNING, p99", f"{k['run_p99'] * ms:.0f} ms"),
        ("always-crashing program -> FATAL, default policy, median of 3", f"{fatal_s:.1f} s"),
        (f"boot to {args.sessions} sessions RUNNING (stand-in workers)", f"{h['boot_s']:.1f} s"),
        (f"`switchboardctl status` wall, {args.sessions} sessions, median of 10",
         f"{h['status_med'] * ms:.0f} ms"),
        (f"Status request round trip, {args.sessions} sessions, median of 50",
         f"{h['status_rpc_med'] * ms:.1f} ms"),
        (f"supervisor CPU while idle, {args.sessions} sessions (20 s)",
         f"{h['idle_cpu_pct']:.1f} % of one core"),
        (f"supervisor RSS, {args.sessions} sessions", f"{h['sup_rss_mb']:.0f} MB"),
        (f"SIGTERM -> all {args.sessions} stopped and supervisor exited",
         f"{h['stop_all_s']:.1f} s"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"| {'measure':<{width}} | result |")
    print(f"|{'-' * (width + 2)}|--------|")
    for name, value in rows:
        print(f"| {name:<{width}} | {value} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
