"""Scale: 50 sessions on one small machine. Memory per suspended and per warm session, and the
latency of one message to each of the 50 sessions sent at once (cold: every CLI starts; then
warm: every CLI is up).

Memory is measured with psutil: RSS, and USS (memory only that process holds; what it really
costs). A suspended session is its worker alone; a warm one is the worker plus its CLI tree.
Sessions: SWITCHBOARD_BENCH_SESSIONS (default 50).
"""
from __future__ import annotations

import os
import secrets
import shutil
import statistics
import tempfile
import threading
import time
from typing import Any

import psutil

from bench.common import (
    USER_SUPERVISOR,
    claude_or_exit,
    close_cli,
    env_int,
    harness,
    header,
    ms,
    pct,
    table,
)
from tests.support import chat

SESSIONS = env_int("SWITCHBOARD_BENCH_SESSIONS", 50)
USERS = [7001 + i for i in range(SESSIONS)]
MB = 1024 * 1024


def tree_memory(pid: int) -> tuple[int, int]:
    """(RSS, USS) of a process and all its descendants."""
    rss = uss = 0
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0, 0
    for p in procs:
        try:
            info = p.memory_full_info()
            rss += info.rss
            uss += info.uss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return rss, uss


def worker_pids(stack: harness.Stack) -> dict[str, int]:
    return {r["name"]: int(r["pid"]) for r in stack.status()
            if r["name"].startswith("session:") and r["state"] == "RUNNING"}


def burst(tg: Any, label: str) -> tuple[list[float], float]:
    """One message to every session at once; (latency to each answer's first message, time
    until every answer is complete)."""
    texts = {u: f"{label} to {u} tok-{secrets.token_hex(4)}" for u in USERS}
    after = {u: chat.last_id(tg, u) for u in USERS}
    sent_at: dict[int, float] = {}

    def send(u: int) -> None:
        sent_at[u] = time.perf_counter()
        tg.send(u, texts[u])
    threads = [threading.Thread(target=send, args=(u,)) for u in USERS]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    first: dict[int, float] = {}
    done: set[int] = set()
    deadline = t0 + 600
    while len(done) < len(USERS):
        if time.perf_counter() > deadline:
            raise AssertionError(f"{label}: {len(USERS) - len(done)} sessions never answered")
        for u in USERS:
            if u in done:
                continue
            mine = [m for m in tg.chat(u, content=False)
                    if m.get("from_bot") and m["message_id"] > after[u]]
            now = time.perf_counter()
            if mine and u not in first:
                first[u] = now - sent_at[u]
            if any(f"echo: {texts[u]}" in chat.message_text(m) for m in mine):
                done.add(u)
        time.sleep(0.01)
    return list(first.values()), time.perf_counter() - t0


def bare_idle_cli(claude: str, model: Any, tmp: Any) -> tuple[int, int]:
    """Memory of one bare warm CLI after one turn, for comparison."""
    import json
    import subprocess

    from sandbox.model_api import cli_environment

    env = cli_environment(model.url, tmp / "bare-home")
    work = tmp / "bare-work"
    work.mkdir(exist_ok=True)
    proc = subprocess.Popen([claude, "-p", "--input-format", "stream-json", "--output-format",
                             "stream-json", "--verbose"], cwd=work, env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(json.dumps({"type": "user", "message": {"role": "user",
                                                                 "content": "hi"}}).encode()
                         + b"\n")
        proc.stdin.flush()
        while b'"type":"result"' not in proc.stdout.readline():  # newer CLIs reorder keys
            pass
        time.sleep(2)
        return tree_memory(proc.pid)
    finally:
        close_cli(proc)


def main() -> None:
    from pathlib import Path

    from sandbox.model_api import ModelSandbox
    from sandbox.telegram_api import TelegramSandbox

    claude = claude_or_exit()
    header(f"bench_scale: {SESSIONS} sessions on {os.cpu_count()} CPUs",
           "make bench (or: .venv/bin/python -m bench scale), "
           f"SWITCHBOARD_BENCH_SESSIONS={SESSIONS}",
           ["one Telegram user (private chat) per session; echo answers from the sandbox model "
            "API; user-default heartbeats (2 s / 15 s).",
            "burst = one message to every session, all sent at once (one thread each); "
            "latency = that message's update -> the first message of its answer."])
    with ModelSandbox() as model, TelegramSandbox() as tg:
        stack = harness.Stack(tg, model, claude, users=USERS, prefix="sb-bench-",
                                supervisor=USER_SUPERVISOR,
                                claude_cfg={"idle_suspend_seconds": 3600})
        try:
            stack.start()
            t0 = time.perf_counter()
            for u in USERS:
                chat.new_session(tg, u, f"s{u}-{secrets.token_hex(2)}", timeout=120)
            create = time.perf_counter() - t0
            time.sleep(3)
            workers = worker_pids(stack)
            assert len(workers) == SESSIONS, f"{len(workers)} workers RUNNING"
            suspended = [tree_memory(pid) for pid in workers.values()]
            bot = next(r for r in stack.status() if r["name"] == "bot")
            bot_mem = tree_memory(int(bot["pid"]))

            cold_lat, cold_all = burst(tg, "cold")
            time.sleep(3)
            workers = worker_pids(stack)
            warm_mem = [tree_memory(pid) for pid in workers.values()]
            clis = len(stack.cli_roots())
            warm_lat, warm_all = burst(tg, "warm")
            assert stack.proc is not None
            sup = psutil.Process(stack.proc.pid).memory_full_info()
            sup_rss, sup_uss = sup.rss, sup.uss
            stack.stop()
        finally:
            stack.close()
        bare_dir = Path(tempfile.mkdtemp(prefix="sb-bench-"))
        try:
            bare = bare_idle_cli(claude, model, bare_dir)
        finally:
            shutil.rmtree(bare_dir, ignore_errors=True)

    def med(values: list[int]) -> str:
        return f"{statistics.median(values) / MB:,.1f} MiB"

    print(f"\ncreated {SESSIONS} sessions with /new in {create:.1f} s "
          f"({create / SESSIONS * 1000:.0f} ms each)")
    print("\nmemory per session (median over sessions)")
    s_rss, s_uss = [r for r, _ in suspended], [u for _, u in suspended]
    w_rss, w_uss = [r for r, _ in warm_mem], [u for _, u in warm_mem]
    table([
        ["suspended (worker only)", med(s_rss), med(s_uss), "1.0x",
         f"{sum(s_uss) / MB:,.0f} MiB"],
        ["warm (worker + CLI)", med(w_rss), med(w_uss),
         f"{statistics.median(w_uss) / statistics.median(s_uss):.1f}x",
         f"{sum(w_uss) / MB:,.0f} MiB"],
        ["bare CLI alone, idle after one turn", f"{bare[0] / MB:,.1f} MiB",
         f"{bare[1] / MB:,.1f} MiB", f"{bare[1] / statistics.median(s_uss):.1f}x", "-"],
        ["supervisor (once)", f"{sup_rss / MB:,.1f} MiB", f"{sup_uss / MB:,.1f} MiB", "-", "-"],
        ["bot (once)", f"{bot_mem[0] / MB:,.1f} MiB", f"{bot_mem[1] / MB:,.1f} MiB", "-", "-"],
    ], ["", "RSS", "USS", "USS vs suspended", f"USS x {SESSIONS}"])
    print(f"\n({clis} warm CLIs were up during the warm burst)")
    print(f"\none message to each of {SESSIONS} sessions at once")
    rows = []
    for name, lat, total in [("cold (every CLI starts)", cold_lat, cold_all),
                             ("warm (every CLI up)", warm_lat, warm_all)]:
        rows.append([name, str(len(lat)), ms(statistics.median(lat)), ms(pct(lat, 0.9)),
                     ms(max(lat)), ms(total)])
    table(rows, ["burst", "n", "median", "p90", "max", "all answered"])


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
