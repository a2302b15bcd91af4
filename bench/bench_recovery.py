"""Kill-to-recovered: SIGKILL a process of a session mid-stream of a slow answer, under load.

For each kind of kill (the session's worker, its CLI, the bot) and for no kill at all, side by
side: the time from the kill until a new worker pid exists, until `switchboardctl status` shows
it RUNNING again, and until the interrupted message's complete answer is in the chat. "Under
load": three other sessions stream slow answers at the same time.

The answer streams 40 words at 25 ms each (about 1 s); the kill comes once the first words are
in the chat. Rounds per kind: SWITCHBOARD_BENCH_ROUNDS (default 8).
"""
from __future__ import annotations

import os
import re
import secrets
import signal
import threading
import time
from typing import Any

import psutil

from bench.common import (
    USER_SUPERVISOR,
    claude_or_exit,
    env_int,
    harness,
    header,
    ms,
    summary,
    table,
)
from tests.support import chat, procs, waits

ROUNDS = env_int("SWITCHBOARD_BENCH_ROUNDS", 8)
VICTIM = 8001
LOAD_USERS = [8002, 8003, 8004]
WORDS = 40
SLOW = f"#sb:slow=25 #sb:words={WORDS}"


def worker_pid(stack: harness.Stack, session: str) -> int | None:
    """The session's worker found as the run process's child (cheaper than a ctl call)."""
    assert stack.proc is not None
    try:
        for c in psutil.Process(stack.proc.pid).children():
            env = procs.proc_env(c)
            if f'"session":"{session}"' in env.get("SWITCHBOARD_WORKER_SETTINGS", "") \
                    and c.status() != psutil.STATUS_ZOMBIE:
                return c.pid
    except psutil.NoSuchProcess:
        pass
    return None


def bot_pid(stack: harness.Stack) -> int | None:
    assert stack.proc is not None
    try:
        for c in psutil.Process(stack.proc.pid).children():
            if "bot" in c.cmdline() and c.status() != psutil.STATUS_ZOMBIE:
                return c.pid
    except psutil.NoSuchProcess:
        pass
    return None


def complete(tg: Any, user: int, after: int) -> bool:
    """The slow answer ("w1 w2 ... wN") is in the chat in full, in a message newer than `after`."""
    last = re.compile(rf"\bw{WORDS}\b")
    return any(m.get("from_bot") and m["message_id"] > after and
               last.search(chat.message_text(m)) for m in tg.chat(user, content=False))


class Load(threading.Thread):
    """Keeps three other sessions streaming slow answers."""

    def __init__(self, tg: Any) -> None:
        super().__init__(daemon=True)
        self.tg = tg
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            for u in LOAD_USERS:
                self.tg.send(u, f"load #sb:slow=50 #sb:words=40 tok-{secrets.token_hex(4)}")
            self.stop.wait(2.5)


def one_round(stack: harness.Stack, tg: Any, session: str, kind: str) -> dict[str, float]:
    after = chat.last_id(tg, VICTIM)
    token = f"tok-{secrets.token_hex(4)}"
    old_worker = worker_pid(stack, session)
    tg.send(VICTIM, f"recover {token} {SLOW}")
    # Mid-stream: the first words are in the chat.
    waits.wait_until(
        lambda: any(m.get("from_bot") and m["message_id"] > after and
                    "w1 " in chat.message_text(m) for m in tg.chat(VICTIM, content=False)),
        30, "the stream to start", step=0.005)
    result: dict[str, float] = {}
    if kind == "none":
        t0 = time.perf_counter()
    else:
        if kind == "worker":
            pid = old_worker
        elif kind == "cli":
            roots = stack.clis(session)
            pid = min(roots, key=lambda p: p.create_time()).pid if roots else None
        else:
            bot = next(r for r in stack.status() if r["name"] == "bot")
            pid = int(bot["pid"])
        assert pid, f"no {kind} to kill"
        t0 = time.perf_counter()
        os.kill(pid, signal.SIGKILL)
        if kind == "worker":
            waits.wait_until(lambda: (worker_pid(stack, session) or old_worker) != old_worker,
                                 30, "a new worker pid", step=0.002)
            result["new_pid"] = time.perf_counter() - t0
            program = f"session:{session}"
        else:
            program = "bot" if kind == "bot" else f"session:{session}"
        if kind == "bot":
            waits.wait_until(lambda: bot_pid(stack) not in (None, pid),
                                 30, "a new bot pid", step=0.002)
            result["new_pid"] = time.perf_counter() - t0
        if kind != "cli":
            waits.wait_until(
                lambda: (lambda r: r and r["state"] == "RUNNING" and r["pid"] != pid)(
                    stack.row(program)), 60, f"{program} RUNNING", step=0.01)
            result["running"] = time.perf_counter() - t0
    waits.wait_until(lambda: complete(tg, VICTIM, after), 120,
                         "the interrupted answer, complete", step=0.005)
    result["answer"] = time.perf_counter() - t0
    time.sleep(0.5)
    return result


def main() -> None:
    from sandbox.model_api import ModelSandbox
    from sandbox.telegram_api import TelegramSandbox

    claude = claude_or_exit()
    header("bench_recovery: kill-to-recovered latency under load",
           "make bench (or: .venv/bin/python -m bench recovery), "
           f"SWITCHBOARD_BENCH_ROUNDS={ROUNDS}",
           [f"the victim's answer streams {WORDS} words at 25 ms each; 3 other sessions stream "
            "slow answers meanwhile; SIGKILL once the first words are in the chat.",
            "times are from the kill ('none': from the same moment without a kill); "
            "user-default heartbeats; supervisor backoff_initial_seconds 0.5 (the default)."])
    kinds = ["none", "worker", "cli", "bot"]
    results: dict[str, list[dict[str, float]]] = {k: [] for k in kinds}
    with ModelSandbox() as model, TelegramSandbox() as tg:
        stack = harness.Stack(
            tg, model, claude, users=[VICTIM, *LOAD_USERS], prefix="sb-bench-",
            supervisor={**USER_SUPERVISOR, "startsecs": 1.0, "backoff_initial_seconds": 0.5,
                        "startretries": 1000},
            telegram={"edit_interval_seconds": 0.3, "drafts": False})  # words in the chat
        load = Load(tg)
        try:
            stack.start()
            session = f"victim-{secrets.token_hex(2)}"
            chat.new_session(tg, VICTIM, session)
            for u in LOAD_USERS:
                chat.new_session(tg, u, f"load{u}-{secrets.token_hex(2)}")
            chat.ask(tg, VICTIM, "warm up tok-00000000")
            load.start()
            for _ in range(ROUNDS):
                for kind in kinds:
                    results[kind].append(one_round(stack, tg, session, kind))
            load.stop.set()
            load.join(10)
            stack.stop()
        finally:
            load.stop.set()
            stack.close()

    def col(kind: str, key: str) -> str:
        values = [r[key] for r in results[kind] if key in r]
        return ms(summary(values)["median"]) if values else "-"
    base = summary([r["answer"] for r in results["none"]])["median"]
    rows = []
    for kind in kinds:
        answers = [r["answer"] for r in results[kind]]
        s = summary(answers)
        rows.append([{"none": "no kill", "worker": "SIGKILL worker", "cli": "SIGKILL CLI",
                      "bot": "SIGKILL bot"}[kind], str(s["n"]), col(kind, "new_pid"),
                     col(kind, "running"), ms(s["median"]), ms(s["p90"]), ms(s["max"]),
                     f"{s['median'] / base:.2f}x"])
    print()
    table(rows, ["kill", "n", "new pid", "RUNNING", "answer (median)", "answer p90",
                 "answer max", "vs no kill"])
    print("\nmedians; 'new pid' and 'RUNNING' are of the killed program (a CLI is restarted by "
          "its worker, which stays RUNNING).")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
