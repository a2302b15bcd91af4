"""End-to-end warm turn: Switchboard against the bare CLI, warm and cold, side by side.

- switchboard: a user's message appears in the sandbox Telegram server (an update) until the
  first message of the answer is in the chat, polled tightly; the session is warm.
- bare CLI, warm: one `claude -p --input-format stream-json ...` process; from writing the user
  line to reading the `result` line.
- bare CLI, cold: `claude -p --resume=<id> TEXT` per message, what most Telegram bots for Claude
  do; from spawn to the `result` line.

All three run against the same sandbox model API (echo answers), one after another, in one run.
Turns: SWITCHBOARD_BENCH_TURNS (default 20).
"""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import (
    USER_SUPERVISOR,
    claude_or_exit,
    close_cli,
    env_int,
    harness,
    header,
    ms,
    summary,
    table,
)
from tests.support.chat import last_id, message_text, new_session

TURNS = env_int("SWITCHBOARD_BENCH_TURNS", 20)
WARMUP = 3
PAUSE = 0.3  # between turns, the stack's and the bare CLI's alike


def switchboard_turns(claude: str, model: Any, tg: Any) -> tuple[list[float], list[float]]:
    """(to the first message of the answer, to the complete answer), seconds per turn."""
    stack = harness.Stack(tg, model, claude, supervisor=USER_SUPERVISOR, prefix="sb-bench-")
    first, full = [], []
    try:
        stack.start()
        user = harness.OWNER
        new_session(tg, user, f"bench-{secrets.token_hex(2)}")
        for i in range(WARMUP + TURNS):
            text = f"turn {i} tok-{secrets.token_hex(4)}"
            after = last_id(tg, user)
            t0 = time.perf_counter()
            tg.send(user, text)
            t_first = None
            while True:
                chat = tg.chat(user, content=False)
                mine = [m for m in chat if m.get("from_bot") and m["message_id"] > after]
                now = time.perf_counter()
                if mine and t_first is None:
                    t_first = now
                if any(f"echo: {text}" in message_text(m) for m in mine):
                    break
                if now - t0 > 60:
                    raise AssertionError(f"no answer to {text!r} in 60 s")
                time.sleep(0.002)
            if i >= WARMUP:
                first.append(t_first - t0)
                full.append(now - t0)
            time.sleep(PAUSE)  # let the bot finish the turn's footer edit before the next one
        stack.stop()
    finally:
        stack.close()
    return first, full


def cli_env(model: Any, home: Path) -> dict[str, str]:
    from sandbox.model_api import cli_environment

    return cli_environment(model.url, home)


def read_result(proc: subprocess.Popen[bytes]) -> dict[str, Any]:
    assert proc.stdout is not None
    while True:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"the CLI ended without a result (rc={proc.poll()})")
        if b'"type":"result"' in line:  # newer CLIs put other keys first
            obj = json.loads(line)
            if obj.get("type") == "result":
                return obj  # type: ignore[no-any-return]


def bare_warm(claude: str, model: Any, tmp: Path, pause: float = 0.0) -> list[float]:
    """The bare CLI's warm turns, `pause` seconds apart: a turn that follows an idle gap is
    about twice as slow as one right after the last (on this machine 31 vs 16 ms at 0.3 s), so a
    baseline for the stack's turns, which come `PAUSE` apart, waits as long between its own."""
    env = cli_env(model, tmp / "warm-home")
    work = tmp / "warm-work"
    work.mkdir()
    proc = subprocess.Popen(
        [claude, "-p", "--input-format", "stream-json", "--output-format", "stream-json",
         "--verbose"], cwd=work, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL)
    assert proc.stdin is not None
    times = []
    try:
        for i in range(WARMUP + TURNS):
            line = json.dumps({"type": "user", "message": {"role": "user",
                                                           "content": f"warm turn {i}"}})
            t0 = time.perf_counter()
            proc.stdin.write(line.encode() + b"\n")
            proc.stdin.flush()
            read_result(proc)
            if i >= WARMUP:
                times.append(time.perf_counter() - t0)
            time.sleep(pause)
    finally:
        close_cli(proc)
    return times


def bare_cold(claude: str, model: Any, tmp: Path) -> list[float]:
    env = cli_env(model, tmp / "cold-home")
    work = tmp / "cold-work"
    work.mkdir()
    session_id = None
    times = []
    for i in range(1 + TURNS):
        argv = [claude, "-p", f"cold turn {i}", "--output-format", "stream-json", "--verbose"]
        if session_id:
            argv.append(f"--resume={session_id}")
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=work, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            result = read_result(proc)
            elapsed = time.perf_counter() - t0
        finally:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        session_id = result["session_id"]
        if i >= 1:
            times.append(elapsed)
    return times


def main() -> None:
    from sandbox.model_api import ModelSandbox
    from sandbox.telegram_api import TelegramSandbox

    claude = claude_or_exit()
    header("bench_e2e: one warm turn, end to end",
           "make bench (or: .venv/bin/python -m bench e2e), "
           f"SWITCHBOARD_BENCH_TURNS={TURNS}",
           [f"{TURNS} measured turns each after {WARMUP} warm-up turns; echo answers from the "
            "sandbox model API; Telegram is the sandbox Bot API (PTB long poll, real HTTP).",
            "switchboard: update in the sandbox -> first bot message of the answer in the chat "
            "(polled in a tight loop); 'complete' = the message with the whole echo."])
    tmp = Path(tempfile.mkdtemp(prefix="sb-bench-"))
    with ModelSandbox() as model, TelegramSandbox() as tg:
        sb_first, sb_full = switchboard_turns(claude, model, tg)
        warm = bare_warm(claude, model, tmp, PAUSE)
        cold = bare_cold(claude, model, tmp)
    base = summary(sb_first)["median"]
    rows = []
    for name, values in [("switchboard: update -> first answer message", sb_first),
                         ("switchboard: update -> complete answer", sb_full),
                         ("bare CLI warm (stream-json stdin -> result)", warm),
                         ("bare CLI cold (claude -p --resume per message)", cold)]:
        s = summary(values)
        rows.append([name, str(s["n"]), ms(s["median"]), ms(s["p90"]), ms(s["min"]),
                     ms(s["max"]), f"{s['median'] / base:.2f}x"])
    print()
    table(rows, ["turn", "n", "median", "p90", "min", "max", "vs switchboard"])
    cold_m, sb_m = summary(cold)["median"], base
    print(f"\ncold `claude -p --resume` per message is {cold_m / sb_m:.1f}x slower than a "
          f"Switchboard turn end to end; Switchboard adds {ms(sb_m - summary(warm)['median'])} "
          "to the bare warm CLI (bot, worker, two sockets, Telegram HTTP).")
    import shutil
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
