"""What every benchmark shares: the stack harness, statistics, the table, the run header.

The harnesses are the tests' own (tests/support/) so that the benchmarks start Switchboard
exactly the way the end-to-end tests do: `switchboard run -c CONFIG` as a subprocess, both
sandboxes, and a proof at the end that every process is gone.
"""
from __future__ import annotations

import datetime
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/bench_x.py` as well as `python -m bench`
    sys.path.insert(0, str(ROOT))

from tests.support import stack as harness  # noqa: E402

# Heartbeats as a user has them: a burst of 50 CLI starts on 2 cores must not look like a hang.
USER_SUPERVISOR = {
    "heartbeat_interval_seconds": 2.0,
    "heartbeat_timeout_seconds": 15.0,
    "sweep_interval_seconds": 2.0,
}


def close_cli(proc: subprocess.Popen[bytes]) -> None:
    """End a warm CLI the polite way (close stdin), then kill it if it lingers; never leave it."""
    assert proc.stdin is not None
    proc.stdin.close()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def claude_or_exit() -> str:
    path = harness.claude_bin()
    if path is None:
        raise SystemExit("the Claude Code CLI is not installed: run `make bench` (it installs it)")
    return path


def header(name: str, command: str, notes: list[str]) -> None:
    claude = harness.claude_bin()
    version = "?"
    if claude:
        out = subprocess.run([claude, "--version"], capture_output=True, text=True, timeout=60)
        version = out.stdout.strip()
    print(f"# {name}")
    print(f"# command: {command}")
    print(f"# when: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M UTC}; "
          f"machine: {os.cpu_count()} CPUs, {platform.machine()}, Linux {platform.release()}, "
          f"Python {platform.python_version()}; Claude Code {version}")
    for line in notes:
        print(f"# {line}")
    sys.stdout.flush()


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by linear interpolation."""
    s = sorted(values)
    if not s:
        return float("nan")
    k = (len(s) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms" if seconds < 10 else f"{seconds:,.1f} s"


def table(rows: list[list[str]], head: list[str]) -> None:
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    line = "  ".join(h.ljust(w) if i == 0 else h.rjust(w)
                     for i, (h, w) in enumerate(zip(head, widths, strict=True)))
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                        for i, (c, w) in enumerate(zip(r, widths, strict=True))))
    sys.stdout.flush()


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "median": statistics.median(values) if values else float("nan"),
        "p90": pct(values, 0.9),
        "min": min(values) if values else float("nan"),
        "max": max(values) if values else float("nan"),
    }
