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

from bench.bench_e2e import PAUSE, bare_warm
from bench.common import USER_SUPERVISOR, claude_or_exit, env_int, harness, header, summary, table
from tests.support.chat import new_session

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


def _last_call(tg: Any) -> int:
    """The number of the newest Bot API call so far (polling after it stays cheap)."""
    return max((c["n"] for c in tg.calls()), default=0)


def _wait_answer(tg: Any, needle: str, after: int, timeout: float = 60) -> list[dict[str, Any]]:
    """The Bot API calls after `after` until one shows the whole answer (its ✓ footer). Only
    the new calls are fetched, so the polling costs the Telegram sandbox next to nothing."""
    deadline = time.monotonic() + timeout
    calls: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        calls += tg.calls(after=calls[-1]["n"] if calls else after)
        if any(c["status"] == 200 and needle in _text(c) and "✓ " in _text(c) for c in calls):
            return calls
        time.sleep(0.01)
    raise AssertionError(f"no answer with {needle!r} in {timeout} s")


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
            after, reqs = _last_call(tg), len(model.requests())
            created = tg.send(user, f"turn {i} {token}")["created"]
            calls = _wait_answer(tg, token, after)
            shown = next(c for c in calls if c["method"] in SHOWS
                         and c["status"] == 200 and _text(c).startswith("echo"))
            if i >= WARMUP:
                out["model"].append(shown["time"] - _model_time(model, token, reqs))
                out["update"].append(shown["time"] - created)
            time.sleep(PAUSE)  # the footer edit of this turn is not the next one's call
        token = f"tok-{secrets.token_hex(4)}"
        after = _last_call(tg)
        tg.send(user, f"long {token} #sb:slow=20 #sb:words={WORDS}")
        streamed = [c for c in _wait_answer(tg, f"w{WORDS}", after, timeout=120)
                    if c["method"] in SHOWS and _text(c).startswith("w1") and "✓" not in _text(c)]
        ok = [c for c in streamed if c["status"] == 200]
        span = (ok[-1]["time"] - ok[0]["time"]) if len(ok) > 1 else float("nan")
        out["changes"], out["span"] = len(ok), span
        out["per_second"] = (len(ok) - 1) / span if len(ok) > 1 else 0.0
        out["flood"] = sum(1 for c in streamed if c["status"] == 429)
        stack.stop()
    finally:
        stack.close()
    return out


def bare_session_flags(claude: str, model: Any, tmp: Path) -> list[float]:
    """The bare warm CLI with the session's own flags (partial messages, permission prompts over
    stdio, Switchboard's MCP server, the sandbox settings), as the worker starts it but without
    the worker: writing the user line to the first text delta, control requests answered here.
    What the CLI itself spends on what a session asks of it, apart from the stack."""
    import asyncio

    from bench.bench_e2e import cli_env
    from session_worker import stream_json
    from session_worker.claude_process import build_argv
    from session_worker.fence import Fence
    from session_worker.mcp_tools import McpServer
    from wire import sandbox
    from wire.messages import Persona

    work, state, run = tmp / "flags-work", tmp / "flags-state", tmp / "flags-run"
    for d in (work, state, run):
        d.mkdir()
    # The sandbox settings as a default persona gets them: where bubblewrap and socat exist.
    fence = None if sandbox.missing_programs() else Fence(str(state), str(run), str(work))
    argv = build_argv(claude, Persona(name="default"), [], None, fence=fence)

    async def turns() -> list[float]:
        proc = await asyncio.create_subprocess_exec(
            *argv, cwd=work, env=cli_env(model, tmp / "flags-home"),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL, limit=2**24)
        assert proc.stdin is not None and proc.stdout is not None
        mcp = McpServer(lambda path, caption: asyncio.sleep(0, "not in this benchmark"))
        times: list[float] = []
        try:
            for i in range(WARMUP + TURNS):
                line = stream_json.user_line(f"flags turn {i}")
                t0 = time.perf_counter()
                proc.stdin.write(line)
                first = None
                while True:
                    raw = await proc.stdout.readline()
                    if not raw:
                        raise AssertionError(f"the CLI ended (rc={proc.returncode})")
                    obj = json.loads(raw)
                    if first is None and obj.get("type") == "stream_event" and obj["event"].get(
                            "delta", {}).get("type") == "text_delta":
                        first = time.perf_counter() - t0
                    elif obj.get("type") == "control_request":
                        req = obj["request"]
                        if req.get("subtype") == "mcp_message":
                            answer = await mcp.handle(req.get("message"))
                            proc.stdin.write(stream_json.mcp_response_line(obj["request_id"],
                                                                           answer))
                        else:
                            proc.stdin.write(stream_json.control_error_line(
                                obj["request_id"], "not in this benchmark"))
                    elif obj.get("type") == "result":
                        break
                if i >= WARMUP and first is not None:
                    times.append(first)
                await asyncio.sleep(PAUSE)  # the same idle gap as the stack's turns
        finally:
            proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        return times

    return asyncio.run(turns())


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
            "draft_interval_seconds 0.3 (default).",
            f"every turn, the stack's and the bare CLI's alike, follows {PAUSE} s of idle."])
    tmp = Path(tempfile.mkdtemp(prefix="sb-bench-"))
    with ModelSandbox() as model, TelegramSandbox() as tg:
        drafts = side(claude, model, tg, drafts=True)
        edits = side(claude, model, tg, drafts=False)
        warm = bare_warm(claude, model, tmp, PAUSE)
        flagged = bare_session_flags(claude, model, tmp)
    shutil.rmtree(tmp, ignore_errors=True)
    bare = summary(warm)["median"]
    bare_flags = summary(flagged)["median"]
    base = summary(drafts["update"])["median"]
    rows = []
    for name, values in [("drafts: model -> first visible text", drafts["model"]),
                         ("edits:  model -> first visible text", edits["model"]),
                         ("drafts: update -> first visible text", drafts["update"]),
                         ("edits:  update -> first visible text", edits["update"]),
                         ("bare CLI warm (stream-json stdin -> result)", warm),
                         ("bare CLI warm, a session's flags (stdin -> first delta)", flagged)]:
        s = summary(values)
        rows.append([name, str(s["n"]), ms1(s["median"]), ms1(s["p90"]), ms1(s["min"]),
                     ms1(s["max"]), f"{s['median'] / base:.2f}x"])
    print()
    table(rows, ["turn", "n", "median", "p90", "min", "max", "vs drafts"])
    print()
    table([[name, str(r["changes"]), f"{r['span']:.1f} s", f"{r['per_second']:.2f}",
            str(r["flood"])] for name, r in (("drafts", drafts), ("edits", edits))],
          ["long answer", "changes shown", "over", "per second", "429s"])
    edits_median = summary(edits["update"])["median"]
    print(f"\nthe stack adds {ms1(base - bare)} (drafts) and {ms1(edits_median - bare)} (edits)"
          " to the bare warm CLI's turn; to the bare CLI with a session's flags, "
          f"{ms1(base - bare_flags)} and {ms1(edits_median - bare_flags)}; drafts show "
          f"{drafts['per_second'] / max(edits['per_second'], 1e-9):.1f}x as many changes per"
          " second as edits.")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
