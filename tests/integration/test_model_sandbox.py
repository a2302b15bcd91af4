"""The real Claude Code CLI against the sandbox Messages API (sandbox/model_api.py).

Each test starts the CLI as a subprocess with a marker variable in its environment, reads stdout
and stderr in threads (no line-length limit), waits on conditions with deadlines, and proves at
the end that the CLI and every process that inherited the marker are gone.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

import psutil
import pytest

from sandbox.model_api import ModelSandbox
from sandbox.model_scripts import MARKDOWN_ANSWER, newest_user_message, sized_text, user_text
from tests.support.waits import wait_until

pytestmark = pytest.mark.timeout(60)

MARKER = "SB_TEST_MARKER"
TURN_DEADLINE = 30.0


class Cli:
    """One CLI process; stdout lines parsed as JSON events, read concurrently with stderr."""

    def __init__(
        self,
        claude_bin: str,
        args: list[str],
        env: dict[str, str],
        cwd: Path,
        stdin_pipe: bool = False,
    ) -> None:
        self.marker = uuid.uuid4().hex
        self.proc = subprocess.Popen(
            [claude_bin, *args],
            stdin=subprocess.PIPE if stdin_pipe else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=dict(env, **{MARKER: self.marker}),
        )
        self.lines: list[bytes] = []  # raw stdout lines, without the newline
        self.events: list[dict[str, Any]] = []
        self.times: list[float] = []  # arrival time of each event
        self.stderr = bytearray()
        self._cond = threading.Condition()
        self._eof = False
        self._threads = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:  # readline: no length limit
            line = raw.rstrip(b"\n")
            event = json.loads(line) if line.strip() else None
            with self._cond:
                self.lines.append(line)
                if event is not None:
                    self.events.append(event)
                    self.times.append(time.monotonic())
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        fd = self.proc.stderr.fileno()
        while chunk := os.read(fd, 65536):
            self.stderr += chunk

    # --- driving -------------------------------------------------------------------------------

    def send_user(self, text: str) -> None:
        assert self.proc.stdin is not None
        line = {"type": "user", "message": {"role": "user", "content": text}}
        self.proc.stdin.write(json.dumps(line).encode() + b"\n")
        self.proc.stdin.flush()

    def close_stdin(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()

    def wait_for(
        self, pred: Callable[[dict[str, Any]], bool], timeout: float = TURN_DEADLINE, start: int = 0
    ) -> tuple[int, dict[str, Any]]:
        """The first event at index >= start that satisfies pred (TimeoutError at the deadline)."""
        deadline = time.monotonic() + timeout
        i = start
        with self._cond:
            while True:
                while i < len(self.events):
                    if pred(self.events[i]):
                        return i, self.events[i]
                    i += 1
                left = deadline - time.monotonic()
                if self._eof:
                    raise AssertionError(f"stdout ended without the event; {self.diagnostics()}")
                if left <= 0:
                    raise TimeoutError(f"no such event in {timeout} s; {self.diagnostics()}")
                self._cond.wait(left)

    def wait_result(
        self, start: int = 0, timeout: float = TURN_DEADLINE
    ) -> tuple[int, dict[str, Any]]:
        return self.wait_for(lambda e: e.get("type") == "result", timeout, start)

    def wait_exit(self, timeout: float = TURN_DEADLINE) -> int:
        rc = self.proc.wait(timeout)
        for t in self._threads:
            t.join(timeout)
        return rc

    def results(self) -> list[dict[str, Any]]:
        with self._cond:
            return [e for e in self.events if e.get("type") == "result"]

    def diagnostics(self) -> str:
        kinds = [(e.get("type"), e.get("subtype")) for e in self.events[-12:]]
        return f"rc={self.proc.poll()} last events={kinds} stderr={bytes(self.stderr[-1500:])!r}"

    # --- teardown ------------------------------------------------------------------------------

    def kill_and_prove_gone(self) -> None:
        self.close_stdin()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        for t in self._threads:
            t.join(10)
        assert self.proc.returncode is not None
        assert not psutil.pid_exists(self.proc.pid) or _is_other_process(self.proc.pid)
        survivors = _with_marker(self.marker)
        for p in survivors:  # a tool child that outlived the CLI: kill it, then fail
            p.kill()
        psutil.wait_procs(survivors, timeout=5)
        assert not survivors, f"processes outlived the CLI: {survivors}"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill_and_prove_gone()


def _is_other_process(pid: int) -> bool:
    """The pid was reused by an unrelated process (ours was reaped by wait())."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _with_marker(marker: str) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter():
        try:
            if p.environ().get(MARKER) == marker:
                found.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


# --- helpers -------------------------------------------------------------------------------------

ONE_SHOT = ["--output-format", "stream-json", "--verbose"]
WARM = ["-p", "--input-format", "stream-json", "--output-format", "stream-json", "--verbose"]


@pytest.fixture
def work(tmp_path: Path) -> Path:
    d = tmp_path / "work"
    d.mkdir()
    return d


def last_user_text(request: dict[str, Any]) -> str:
    return user_text(newest_user_message(request["messages"]))


def model_turns(sb: ModelSandbox) -> list[dict[str, Any]]:
    """Recorded requests that are model turns (they carry the tool list)."""
    return [r for r in sb.requests() if r.get("tools")]


def all_text(request: dict[str, Any]) -> str:
    return json.dumps(request["messages"])


def one_shot(
    claude_bin: str, prompt: str, env: dict[str, str], cwd: Path, *extra: str
) -> tuple[int, Cli]:
    with Cli(claude_bin, ["-p", prompt, *ONE_SHOT, *extra], env, cwd) as cli:
        rc = cli.wait_exit()
    return rc, cli


# --- tests ---------------------------------------------------------------------------------------


def test_echo_turn(claude_bin, model_api, cli_env, work):
    rc, cli = one_shot(claude_bin, "hello there", cli_env, work)
    assert rc == 0, cli.diagnostics()
    (result,) = cli.results()
    assert result["is_error"] is False
    assert "echo: hello there" in result["result"]
    assert result["total_cost_usd"] > 0  # plausible usage numbers give a cost
    turns = model_turns(model_api)
    assert turns and last_user_text(turns[-1]) == "hello there"
    assert turns[-1]["path"] == "/v1/messages"
    assert "x-api-key" not in turns[-1]["headers"]


def test_resume_carries_first_turn(claude_bin, model_api, cli_env, work):
    rc, first = one_shot(claude_bin, "first turn alpha", cli_env, work)
    assert rc == 0, first.diagnostics()
    session_id = first.results()[-1]["session_id"]
    model_api.reset()

    rc, second = one_shot(claude_bin, "second turn beta", cli_env, work, f"--resume={session_id}")
    assert rc == 0, second.diagnostics()
    assert "echo: second turn beta" in second.results()[-1]["result"]
    (turn,) = model_turns(model_api)
    assert last_user_text(turn) == "second turn beta"
    assert "first turn alpha" in all_text(turn)
    assert "echo: first turn alpha" in all_text(turn)


def test_bash_tool_use_really_runs(claude_bin, model_api, cli_env, work):
    prompt = "#sb:bash=echo marker-$((6*7)) > out.txt; cat out.txt"
    rc, cli = one_shot(claude_bin, prompt, cli_env, work, "--permission-mode", "bypassPermissions")
    assert rc == 0, cli.diagnostics()
    assert (work / "out.txt").read_text().strip() == "marker-42"
    tool_uses = [
        b
        for e in cli.events
        if e.get("type") == "assistant"
        for b in e["message"]["content"]
        if b.get("type") == "tool_use"
    ]
    assert tool_uses and tool_uses[0]["name"] == "Bash"
    assert tool_uses[0]["input"]["command"] == "echo marker-$((6*7)) > out.txt; cat out.txt"
    result = cli.results()[-1]
    assert result["result"].startswith("tool said: ")
    assert "marker-42" in result["result"]
    turns = model_turns(model_api)
    assert len(turns) == 2
    assert '"tool_result"' in all_text(turns[1])


def test_three_megabyte_answer_is_one_line(claude_bin, model_api, cli_env, work):
    # Warm mode, stdin closed only after the result: a one-shot `-p PROMPT` CLI can exit before
    # its stdout pipe is drained and cut such a line (seen with 2.1.197).
    n = 3_000_000
    with Cli(claude_bin, WARM, cli_env, work, stdin_pipe=True) as cli:
        cli.send_user(f"#sb:size={n}")
        i, result = cli.wait_result()
        cli.close_stdin()
        assert cli.wait_exit() == 0
    expected = sized_text(n)
    assert result["result"] == expected and result["result"].endswith("END")
    texts = [
        (idx, b["text"])
        for idx, e in enumerate(cli.events)
        if e.get("type") == "assistant"
        for b in e["message"]["content"]
        if b.get("type") == "text"
    ]
    ((a_idx, a_text),) = texts
    assert len(a_text) == n and a_text == expected
    assert len(cli.lines[a_idx]) > n
    assert len(cli.lines[i]) > n


@pytest.mark.parametrize("status", [401, 429, 500, 529])
def test_api_error_becomes_error_result(claude_bin, model_api, cli_env, work, status):
    env = dict(cli_env, CLAUDE_CODE_MAX_RETRIES="0")
    rc, cli = one_shot(claude_bin, f"#sb:error={status}", env, work)
    (result,) = cli.results()
    assert result["is_error"] is True
    assert result["api_error_status"] == status
    assert rc == 1
    assert len(model_turns(model_api)) == 1  # no retry


def test_slow_stream_partial_messages_in_order(claude_bin, model_api, cli_env, work):
    rc, cli = one_shot(
        claude_bin, "#sb:slow=60 #sb:words=6", cli_env, work, "--include-partial-messages"
    )
    assert rc == 0, cli.diagnostics()
    deltas = [
        (t, e["event"]["delta"]["text"])
        for t, e in zip(cli.times, cli.events, strict=True)
        if e.get("type") == "stream_event"
        and e["event"].get("type") == "content_block_delta"
        and e["event"]["delta"].get("type") == "text_delta"
    ]
    assert [d for _, d in deltas] == ["w1", " w2", " w3", " w4", " w5", " w6"]
    # streamed as it came: the deltas arrived spread over the server's 5 pauses
    assert deltas[-1][0] - deltas[0][0] >= 0.2
    assert cli.results()[-1]["result"] == "w1 w2 w3 w4 w5 w6"


def test_hang_gives_no_result_and_cli_is_killed(claude_bin, model_api, cli_env, work):
    cli = Cli(
        claude_bin, ["-p", "#sb:hang", *ONE_SHOT, "--include-partial-messages"], cli_env, work
    )
    try:
        cli.wait_for(
            lambda e: (
                e.get("type") == "stream_event" and e["event"].get("type") == "content_block_delta"
            )
        )
        with pytest.raises(TimeoutError):
            cli.wait_result(timeout=1.5)
        assert cli.proc.poll() is None
        assert not cli.results()
        assert model_api.state()["open_streams"] == 1
    finally:
        cli.kill_and_prove_gone()
    assert cli.proc.returncode == -signal.SIGKILL
    # the sandbox notices the vanished client and ends the hanging answer
    wait_until(lambda: model_api.state()["open_streams"] == 0, 5.0,
               "the sandbox to end the hanging answer")
    assert len(model_turns(model_api)) == 1


def test_script_override_applies_to_next_request_only(claude_bin, model_api, cli_env, work):
    model_api.script(size=100)
    with Cli(claude_bin, WARM, cli_env, work, stdin_pipe=True) as cli:
        cli.send_user("no directive here")
        i, first = cli.wait_result()
        cli.send_user("plain again")
        _, second = cli.wait_result(start=i + 1)
        cli.close_stdin()
        assert cli.wait_exit() == 0
    assert first["result"] == sized_text(100)
    assert second["result"] == "echo: plain again"


def test_warm_two_turns_second_carries_first(claude_bin, model_api, cli_env, work):
    with Cli(claude_bin, WARM, cli_env, work, stdin_pipe=True) as cli:
        cli.send_user("warm one")
        i, first = cli.wait_result()
        cli.send_user("warm two")
        _, second = cli.wait_result(start=i + 1)
        cli.close_stdin()
        assert cli.wait_exit() == 0
    assert first["result"] == "echo: warm one"
    assert second["result"] == "echo: warm two"
    assert first["session_id"] == second["session_id"]
    turns = model_turns(model_api)
    assert [last_user_text(t) for t in turns] == ["warm one", "warm two"]
    assert "echo: warm one" in all_text(turns[1])


def test_markdown_and_thinking(claude_bin, model_api, cli_env, work):
    with Cli(claude_bin, WARM, cli_env, work, stdin_pipe=True) as cli:
        cli.send_user("#sb:markdown")
        i, md = cli.wait_result()
        cli.send_user("ponder #sb:thinking")
        _, thought = cli.wait_result(start=i + 1)
        cli.close_stdin()
        assert cli.wait_exit() == 0
    assert md["result"] == MARKDOWN_ANSWER
    assert "```python" in md["result"] and "**bold" in md["result"]
    assert thought["result"] == "echo: ponder #sb:thinking"
    kinds = [
        b["type"]
        for e in cli.events[i + 1 :]
        if e.get("type") == "assistant"
        for b in e["message"]["content"]
    ]
    assert kinds == ["thinking", "text"]


# --- the server without the CLI ------------------------------------------------------------------


def _http(url: str, method: str = "GET", body: Any = None, headers: dict[str, str] | None = None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


KEY = {"x-api-key": "k", "content-type": "application/json"}
TURN = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 4096,
    "tools": [{"name": "Bash", "input_schema": {"type": "object"}}],
}


def test_protocol_edges(model_api):
    url = model_api.url
    assert _http(url + "/", "HEAD")[0] == 200
    assert _http(url + "/")[0] == 200

    status, _, body = _http(url + "/v1/messages", "POST", {"messages": []})
    assert status == 401
    assert json.loads(body)["error"]["type"] == "authentication_error"

    status, _, body = _http(url + "/v1/unknown", "POST", {}, KEY)
    assert status == 404 and json.loads(body) == {
        "type": "error",
        "error": {"type": "not_found_error", "message": "Not found: POST /v1/unknown"},
    }

    status, _, body = _http(
        url + "/v1/messages/count_tokens",
        "POST",
        {"messages": [{"role": "user", "content": "x" * 400}]},
        KEY,
    )
    assert status == 200 and json.loads(body)["input_tokens"] >= 100

    model_api.script(error=429)
    status, headers, body = _http(
        url + "/v1/messages", "POST", dict(TURN, messages=[{"role": "user", "content": "hi"}]), KEY
    )
    assert status == 429 and "retry-after" in {k.lower() for k in headers}
    assert json.loads(body)["error"]["type"] == "rate_limit_error"

    # not streamed: a plain Message; a tool_result answers "tool said"
    messages = [
        {"role": "user", "content": "run it"},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "t1", "name": "Bash", "input": {}}],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "y" * 300}],
        },
    ]
    status, _, body = _http(url + "/v1/messages", "POST", dict(TURN, messages=messages), KEY)
    msg = json.loads(body)
    assert status == 200 and msg["type"] == "message" and msg["stop_reason"] == "end_turn"
    assert msg["content"] == [{"type": "text", "text": "tool said: " + "y" * 200}]
    assert msg["usage"]["input_tokens"] > 0 and msg["usage"]["output_tokens"] > 0

    status, _, body = _http(url + "/_sandbox/script", "POST", {"nonsense": 1})
    assert status == 400
    recorded = model_api.requests()
    assert len(recorded) == 2 and all(r["path"] == "/v1/messages" for r in recorded)
    model_api.reset()
    assert model_api.requests() == []


def test_streamed_tool_use_events(model_api):
    body = dict(TURN, stream=True, messages=[{"role": "user", "content": "#sb:bash=ls -l"}])
    status, headers, raw = _http(model_api.url + "/v1/messages", "POST", body, KEY)
    assert status == 200 and headers["Content-Type"].startswith("text/event-stream")
    events = []
    for chunk in raw.decode().split("\n\n"):
        if chunk.strip():
            name, data = chunk.split("\n", 1)
            assert name.startswith("event: ") and data.startswith("data: ")
            events.append(json.loads(data[len("data: ") :]))
    kinds = [e["type"] for e in events]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    start = next(e for e in events if e["type"] == "content_block_start")["content_block"]
    assert start["type"] == "tool_use" and start["name"] == "Bash"
    partial = "".join(
        e["delta"]["partial_json"] for e in events if e["type"] == "content_block_delta"
    )
    assert json.loads(partial) == {"command": "ls -l", "description": "sandbox command"}
    assert events[-2]["delta"]["stop_reason"] == "tool_use"


def test_fifty_megabytes_stream_whole(model_api):
    n = 50_000_000
    body = dict(TURN, stream=True, messages=[{"role": "user", "content": f"#sb:size={n}"}])
    status, _, raw = _http(model_api.url + "/v1/messages", "POST", body, KEY)
    assert status == 200
    text = "".join(
        json.loads(line[len("data: ") :])["delta"].get("text", "")
        for line in raw.decode().split("\n")
        if line.startswith("data: ") and '"content_block_delta"' in line[:60]
    )
    assert len(text) == n and text.endswith("END")


def test_sandbox_process_lifecycle():
    with ModelSandbox() as sb:
        pid = sb.pid
        assert sb.url.startswith("http://127.0.0.1:")
        assert psutil.Process(pid).is_running()
    assert sb.returncode == 0  # SIGTERM: a clean exit
    assert not psutil.pid_exists(pid) or _is_other_process(pid)


def test_server_runs_standalone_and_stops_on_sigint():
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(root))
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox.model_api", "--port", "0"],
        cwd=root,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()  # bounded by the test timeout
        assert line.startswith("LISTENING http://127.0.0.1:")
        assert _http(line.split()[1] + "/")[0] == 200
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        if proc.stdout:
            proc.stdout.close()
