"""A warm echo turn through the session worker, against the bare CLI's warm turn and a cold
`claude -p --resume` spawn per message, all in one run against the sandbox model API.

    python bench/bench_worker_turn.py [--turns 30] [--cold-turns 8]

Prints one small table (median and p90 in ms, and each median as a ratio of the bare warm CLI's).
Uses the pinned CLI from .cli/ (or SWITCHBOARD_CLAUDE_BIN) and never reaches the network.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import msgspec
import zmq

from sandbox.model_api import ModelSandbox, cli_environment, find_claude
from wire import auth, codec
from wire import messages as m
from wire.endpoints import Endpoints
from wire.settings import WORKER_SETTINGS_ENV, WorkerSettings

WARMUP = 3


def claude_bin() -> str:
    found = find_claude()
    if not found:
        sys.exit("the Claude CLI is not installed: run `make setup` first.")
    return found


def user_line(text: str) -> bytes:
    return (
        json.dumps({"type": "user", "message": {"role": "user", "content": text}}).encode() + b"\n"
    )


def bare_warm(binary: str, env: dict[str, str], cwd: Path, turns: int) -> tuple[list[float], str]:
    argv = [
        binary,
        "-p",
        "--input-format",
        "stream-json",
        "--output-format",
        "stream-json",
        "--verbose",
        "--include-partial-messages",
    ]
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=cwd,
    )
    assert proc.stdin is not None and proc.stdout is not None
    times: list[float] = []
    sid = ""
    try:
        for i in range(WARMUP + turns):
            t0 = time.perf_counter()
            proc.stdin.write(user_line(f"bare {i}"))
            proc.stdin.flush()
            while True:
                line = proc.stdout.readline()
                if not line:
                    raise RuntimeError("the CLI exited during the benchmark")
                ev = json.loads(line)
                if ev.get("type") == "result":
                    sid = ev.get("session_id", sid)
                    break
            if i >= WARMUP:
                times.append(time.perf_counter() - t0)
    finally:
        proc.stdin.close()
        proc.wait(10)
    return times, sid


def cold_resume(binary: str, env: dict[str, str], cwd: Path, sid: str, turns: int) -> list[float]:
    times = []
    for i in range(turns):
        t0 = time.perf_counter()
        out = subprocess.run(
            [binary, "-p", f"cold {i}", "--output-format", "json", f"--resume={sid}"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            env=env,
            cwd=cwd,
            timeout=60,
            check=False,
        )
        times.append(time.perf_counter() - t0)
        if out.returncode != 0:
            raise RuntimeError(f"cold resume failed: {out.stderr[-300:]!r}")
        sid = json.loads(out.stdout).get("session_id", sid)
    return times


def through_worker(binary: str, env: dict[str, str], state: Path, turns: int) -> list[float]:
    runtime = Path(tempfile.mkdtemp(prefix="sb-", dir="/tmp"))
    ctx = zmq.Context()
    name = "bench"
    # The worker's keys, made and piped to it the way the supervisor does (wire.auth).
    chat_root = os.urandom(32)
    keys = auth.ChildKeys(
        control=auth.ClientKeys(auth.new_keypair().public, auth.new_keypair()),
        chat=auth.ClientKeys(auth.chat_server_keys(chat_root).public,
                             auth.worker_chat_keys(chat_root, name)))
    router = ctx.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    auth.as_server(router, auth.chat_server_keys(chat_root), auth.CHAT_DOMAIN)
    router.bind(Endpoints(runtime).chat)
    route = [b""]  # the worker's routing id, from its first frame
    settings = WorkerSettings(
        session=name,
        state_dir=str(state),
        runtime_dir=str(runtime),
        persona=m.Persona(name="default"),
        claude_binary=binary,
        claude_env=env,
    )
    wenv = dict(os.environ)
    wenv[WORKER_SETTINGS_ENV] = msgspec.json.encode(settings).decode()
    wenv["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), wenv.get("PYTHONPATH", "")) if p)
    keys_fd = auth.keys_pipe(keys)
    wenv[auth.KEYS_FD_ENV] = str(keys_fd)
    proc = subprocess.Popen(
        [sys.executable, "-m", "session_worker"],
        env=wenv,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        pass_fds=(keys_fd,),
    )
    os.close(keys_fd)

    def recv(deadline: float) -> m.Msg:
        left = deadline - time.monotonic()
        if left <= 0 or not router.poll(int(left * 1000)):
            raise TimeoutError("the worker did not answer in time")
        frames = router.recv_multipart()
        route[0] = frames[0]
        msg = codec.to_bot.decode(frames[-1])
        assert not isinstance(msg, codec.DecodeError), msg.reason
        return msg

    times = []
    try:
        deadline = time.monotonic() + 20
        while not isinstance(recv(deadline), m.Hello):
            pass
        for i in range(WARMUP + turns):
            key = f"k{i}"
            t0 = time.perf_counter()
            router.send_multipart(
                [
                    route[0],
                    codec.encode(m.UserTurn(id=m.new_id(), key=key, chat_id=1, text=f"worker {i}")),
                ]
            )
            deadline = time.monotonic() + 30
            while True:
                msg = recv(deadline)
                if (
                    isinstance(msg, m.Event)
                    and isinstance(msg.body, m.TurnResult)
                    and msg.key == key
                ):
                    break
            if i >= WARMUP:
                times.append(time.perf_counter() - t0)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
        router.close(linger=0)
        ctx.term()
        shutil.rmtree(runtime, ignore_errors=True)
    return times


def p90(xs: list[float]) -> float:
    return sorted(xs)[max(0, int(len(xs) * 0.9) - 1)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--turns", type=int, default=30)
    ap.add_argument("--cold-turns", type=int, default=8)
    args = ap.parse_args()
    binary = claude_bin()
    with tempfile.TemporaryDirectory(prefix="sb-bench-") as tmp, ModelSandbox() as sb:
        base = Path(tmp)
        env = cli_environment(sb.url, base / "home")
        cwd = base / "bare"
        cwd.mkdir()
        bare, sid = bare_warm(binary, env, cwd, args.turns)
        worker = through_worker(binary, env, base / "state", args.turns)
        cold = cold_resume(binary, env, cwd, sid, args.cold_turns)
    ref = statistics.median(bare)
    rows = [
        ("warm turn, bare CLI (stream-json)", bare),
        ("warm turn, through the worker", worker),
        ("cold `claude -p --resume` per message", cold),
    ]
    version = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    print(f"CLI {version.stdout.strip()}, sandbox model (echo), {os.cpu_count()} CPUs")
    print(f"{'case':<40} {'n':>3} {'median ms':>10} {'p90 ms':>8} {'x bare':>7}")
    for label, xs in rows:
        med = statistics.median(xs)
        print(
            f"{label:<40} {len(xs):>3} {med * 1000:>10.1f} {p90(xs) * 1000:>8.1f} {med / ref:>7.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
