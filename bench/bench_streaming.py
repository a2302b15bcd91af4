"""Streaming: native drafts against edits in place, and what the stack adds to a warm turn.

One run, side by side, against the same sandboxes (echo answers, Telegram's sandbox Bot API):
- drafts: a stack whose private chat streams into sendMessageDraft (the default);
- edits: the same stack with `[telegram] drafts = false` (a group's way: a message edited in
  place every edit_interval_seconds, 1.5 s by default);
- bare CLI warm: one stream-json CLI, from writing the user line to the `result` line.

Per warm turn (times are the sandboxes' own clocks, so polling adds nothing):
- model -> visible: the model API received the turn's request (it answers at once, so its first
  delta leaves then) until Telegram got the first call that shows answer text (a draft with text,
  or the answer's first message);
- update -> visible: the user's update existing in Telegram until that same call; the stack's
  overhead is its median minus the bare CLI's warm turn.
Then one long streamed answer per side (SWITCHBOARD_BENCH_WORDS words, 20 ms apart): how many
changes of the answer reached the user per second while it streamed, and how many were refused
with 429. Turns: SWITCHBOARD_BENCH_TURNS (default 20).
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.bench_e2e import bare_warm
from bench.common import USER_SUPERVISOR, claude_or_exit, env_int, harness, header, summary, table
from tests.support.chat import message_text, new_session

TURNS = env_int("SWITCHBOARD_BENCH_TURNS", 20)
WORDS = env_int("SWITCHBOARD_BENCH_WORDS", 300)
WARMUP = 3
SHOWS = ("sendMessageDraft", "sendMessage", "editMessageText")


def _text(call: dict[str, Any]) -> str:
    return str(call["params"].get("text") or "")


def _model_time(model: Any, token: str, since: int) -> float:
    """When the model API received the turn's request (the one that carries `token`)."""
    for r in model.requests()[since:]:
        if token in json.dumps(r.get("messages", "")):
            return float(r["received"])
    raise AssertionError(f"the model never saw {token}")


def _wait_answer(tg: Any, user: int, needle: str, after: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(m.get("from_bot") and m["message_id"] > after and needle in message_text(m)
               and "✓ " in message_text(m) for m in tg.chat(user, content=False)):
            return
        time.sleep(0.01)
    raise AssertionError(f"no answer with {needle!r} in {timeout} s")


def _last_id(tg: Any, user: int) -> int:
    return max((m["message_id"] for m in tg.chat(user, content=False)), default=0)


def side(claude: str, model: Any, tg: Any, drafts: bool) -> dict[str, Any]:
    tg.reset()
    stack = harness.Stack(tg, model, claude, supervisor=USER_SUPERVISOR, prefix="sb-bench-",
                          telegram={"drafts": drafts, "edit_interval_seconds": 1.5})
    out: dict[str, Any] = {"model": [], "update": []}
    try:
        stack.start()
        user = harness.OWNER
        new_session(tg, user, f"bench-{secrets.token_hex(2)}")
        for i in range(WARMUP + TURNS):
            token = f"tok-{secrets.token_hex(4)}"
            calls, reqs, after = len(tg.calls()), len(model.requests()), _last_id(tg, user)
            t0 = time.time()
            tg.send(user, f"turn {i} {token}")
            _wait_answer(tg, user, token, after)
            shown = next(c for c in tg.calls()[calls:] if c["method"] in SHOWS
                         and c["status"] == 200 and _text(c).startswith("echo"))
            if i >= WARMUP:
                out["model"].append(shown["time"] - _model_time(model, token, reqs))
                out["update"].append(shown["time"] - t0)
            time.sleep(0.3)  # the footer edit of this turn is not the next one's call
        token = f"tok-{secrets.token_hex(4)}"
        calls, after = len(tg.calls()), _last_id(tg, user)
        tg.send(user, f"long {token} #sb:slow=20 #sb:words={WORDS}")
        _wait_answer(tg, user, f"w{WORDS}", after, timeout=120)
        streamed = [c for c in tg.calls()[calls:] if c["method"] in SHOWS
                    and _text(c).startswith("w1") and "✓" not in _text(c)]
        ok = [c for c in streamed if c["status"] == 200]
        span = (ok[-1]["time"] - ok[0]["time"]) if len(ok) > 1 else float("nan")
        out["changes"], out["span"] = len(ok), span
        out["per_second"] = (len(ok) - 1) / span if len(ok) > 1 else 0.0
        out["flood"] = sum(1 for c in streamed if c["status"] == 429)
        stack.stop()
    finally:
        stack.close()
    return out


def ms1(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


def main() -> None:
    from sandbox.model_api import ModelSandbox
    from sandbox.telegram_api import TelegramSandbox

    claude = claude_or_exit()
    header("bench_streaming: drafts vs edits, and the stack's overhead on a warm turn",
           "make bench (or: .venv/bin/python -m bench streaming), "
           f"SWITCHBOARD_BENCH_TURNS={TURNS} SWITCHBOARD_BENCH_WORDS={WORDS}",
           [f"{TURNS} measured turns per side after {WARMUP} warm-up turns; echo answers from "
            "the sandbox model API; Telegram is the sandbox Bot API (PTB long poll, real HTTP).",
            "times from the sandboxes' own records: the model's request arriving, the update "
            "created, the first Bot API call that shows answer text.",
            f"long answer: {WORDS} words 20 ms apart; edit_interval_seconds 1.5 (default), "
            "draft_interval_seconds 0.3 (default)."])
    tmp = Path(tempfile.mkdtemp(prefix="sb-bench-"))
    with ModelSandbox() as model, TelegramSandbox() as tg:
        drafts = side(claude, model, tg, drafts=True)
        edits = side(claude, model, tg, drafts=False)
        warm = bare_warm(claude, model, tmp)
    shutil.rmtree(tmp, ignore_errors=True)
    bare = summary(warm)["median"]
    base = summary(drafts["update"])["median"]
    rows = []
    for name, values in [("drafts: model -> first visible text", drafts["model"]),
                         ("edits:  model -> first visible text", edits["model"]),
                         ("drafts: update -> first visible text", drafts["update"]),
                         ("edits:  update -> first visible text", edits["update"]),
                         ("bare CLI warm (stream-json stdin -> result)", warm)]:
        s = summary(values)
        rows.append([name, str(s["n"]), ms1(s["median"]), ms1(s["p90"]), ms1(s["min"]),
                     ms1(s["max"]), f"{s['median'] / base:.2f}x"])
    print()
    table(rows, ["turn", "n", "median", "p90", "min", "max", "vs drafts"])
    print()
    table([[name, str(r["changes"]), f"{r['span']:.1f} s", f"{r['per_second']:.2f}",
            str(r["flood"])] for name, r in (("drafts", drafts), ("edits", edits))],
          ["long answer", "changes shown", "over", "per second", "429s"])
    print(f"\nthe stack adds {ms1(base - bare)} (drafts) and "
          f"{ms1(summary(edits['update'])['median'] - bare)} (edits) to the bare warm CLI's "
          f"turn; drafts show {drafts['per_second'] / max(edits['per_second'], 1e-9):.1f}x as "
          "many changes per second as edits.")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
