"""`switchboard demo`: the whole stack against both sandboxes, with no token and no internet.

It starts the sandbox Telegram and Anthropic servers, writes a throw-away config, starts
`switchboard run` exactly as a user would, plays a short scripted conversation (two sessions with
different personas, a tool use, a crash of one worker and its recovery, `switchboardctl status`
before and after, a session in a project's own git worktree), and then lets the person type as
the Telegram user, showing the bot's messages as they would appear in the chat. Everything it
started is stopped when it ends.

This lives in sandbox/ because it drives the sandboxes' test-side APIs; the supervisor only runs
it as a subprocess, so production code never imports sandbox/.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from sandbox.model_api import ModelSandbox, cli_environment, find_claude
from sandbox.telegram_api import TelegramSandbox

PROJECT_ROOT = Path(__file__).resolve().parent.parent
USER_ID = 4242
VOICE_PREFIX = "/voice"
BOLD, DIM, CYAN, GREEN, RESET = "\033[1m", "\033[2m", "\033[36m", "\033[32m", "\033[0m"


class ChatView:
    """Prints the chat as the user sees it: each bot message once it has settled, then its edits."""

    def __init__(self, tg: TelegramSandbox, chat_id: int, color: bool) -> None:
        self.tg, self.chat_id, self.color = tg, chat_id, color
        self.shown: dict[int, str] = {}
        self.changed_at: dict[int, tuple[str, float]] = {}
        self.lock = threading.Lock()

    def _c(self, code: str, text: str) -> str:
        return f"{code}{text}{RESET}" if self.color else text

    def render(self, msg: dict[str, Any]) -> str:
        text = msg.get("text") or msg.get("caption") or ""
        if msg.get("document"):
            doc = msg["document"]
            text = f"[file {doc.get('file_name')} · {doc.get('size', 0)} bytes] {text}".strip()
        rows = (msg.get("reply_markup") or {}).get("inline_keyboard") or []
        buttons = "  ".join(f"[ {b.get('text')} ]" for row in rows for b in row)
        body = text + (f"\n{buttons}" if buttons else "")
        return body

    def poll(self, settle: float = 1.2) -> None:
        """Print bot messages unchanged for `settle` seconds (streaming drafts keep changing)."""
        with self.lock:
            now = time.monotonic()
            for msg in self.tg.chat(self.chat_id):
                if not msg.get("from_bot"):
                    continue
                mid, body = msg["message_id"], self.render(msg)
                last = self.changed_at.get(mid)
                if last is None or last[0] != body:
                    self.changed_at[mid] = (body, now)
                    continue
                if now - last[1] < settle or self.shown.get(mid) == body:
                    continue
                prefix = "bot   " if mid not in self.shown else "bot ✎ "
                self.shown[mid] = body
                indent = "\n      "
                print(self._c(CYAN, prefix) + body.replace("\n", indent), flush=True)

    def wait_quiet(self, timeout: float, settle: float = 1.2) -> None:
        """Wait until every bot message has been shown and nothing changed for `settle` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.poll(settle)
            pending = [m for m, (body, _) in self.changed_at.items() if self.shown.get(m) != body]
            if not pending and self.changed_at:
                quiet_for = time.monotonic() - max(t for _, t in self.changed_at.values())
                if quiet_for >= settle:
                    return
            time.sleep(0.15)


class Demo:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
        self.tmp = Path(tempfile.mkdtemp(prefix="sb-demo-", dir="/tmp"))
        self.config = self.tmp / "switchboard.toml"
        self.run_proc: subprocess.Popen[bytes] | None = None

    def say(self, text: str) -> None:
        print((f"{DIM}{text}{RESET}" if self.color else text), flush=True)

    def ctl(self, *argv: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "supervisor.ctl", "-c", str(self.config), *argv]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=check,
                              cwd=PROJECT_ROOT)

    def status(self) -> None:
        out = self.ctl("status")
        print(f"{GREEN}$ switchboardctl status{RESET}" if self.color else "$ switchboardctl status")
        print(out.stdout.rstrip() or out.stderr.rstrip(), flush=True)

    def write_config(self, tg: TelegramSandbox, model: ModelSandbox, claude: str) -> None:
        env = cli_environment(model.url, self.tmp / "claude-home")
        extra = {k: v for k, v in env.items() if os.environ.get(k) != v}
        lines = [
            f"state_dir = {json.dumps(str(self.tmp / 'state'))}",
            f"runtime_dir = {json.dumps(str(self.tmp / 'run'))}",
            "[telegram]",
            'token_env = "SWITCHBOARD_DEMO_TOKEN"',
            f"allowed_user_ids = [{USER_ID}]",
            f'api_base_url = "{tg.url}"',
            "edit_interval_seconds = 0.5",
            "[claude]",
            f"binary = {json.dumps(claude)}",
            "env = {"
            + ", ".join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in extra.items())
            + "}",
            "idle_suspend_seconds = 300",
            "[supervisor]",
            "startsecs = 0.5",
            "[projects.shop]",
            f"path = {json.dumps(str(self.make_project()))}",
            "worktrees = true",
            "[voice]",  # the model sandbox transcribes too (sandbox.transcription)
            f'api_base_url = "{model.url}/v1"',
        ]
        self.config.write_text("\n".join(lines) + "\n")
        self.config.chmod(0o600)

    def make_project(self) -> Path:
        """A small git repository in the demo's temp dir, for the project session."""
        repo = self.tmp / "shop"
        repo.mkdir(exist_ok=True)
        (repo / "README.md").write_text("# shop\n")
        git = ["git", "-C", str(repo), "-c", "user.name=demo", "-c", "user.email=demo@example.com"]
        for args in (["init", "-q", "-b", "main"], ["add", "README.md"],
                     ["commit", "-qm", "first commit"]):
            subprocess.run([*git, *args], check=True, capture_output=True, timeout=30)
        return repo

    def start_stack(self, tg: TelegramSandbox) -> None:
        env = dict(os.environ, SWITCHBOARD_DEMO_TOKEN=tg.token)
        log = open(self.tmp / "switchboard-run.out", "wb")
        self.run_proc = subprocess.Popen(
            [sys.executable, "-m", "supervisor", "run", "-c", str(self.config)],
            cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.run_proc.poll() is not None:
                raise SystemExit(
                    "switchboard run exited at start: see " + str(self.tmp / "switchboard-run.out")
                )
            out = self.ctl("status", "--json")
            if out.returncode in (0, 3) and out.stdout.strip().startswith("["):
                rows = json.loads(out.stdout)
                if any(r["name"] == "bot" and r["state"] == "RUNNING" for r in rows):
                    return
            time.sleep(0.2)
        raise SystemExit("the stack did not come up within 30 s")

    def user(self, view: ChatView, tg: TelegramSandbox, text: str, expect: str = "",
             wait: float = 90) -> None:
        """Send as the user, then wait for the bot's reply (one containing `expect`, if given)."""
        prompt = "you   "
        print((f"{BOLD}{prompt}{RESET}" if self.color else prompt) + text, flush=True)
        sent = tg.send(USER_ID, text)["message"]["message_id"]

        def answered(chat: list[dict[str, Any]]) -> bool:
            return any(m.get("from_bot") and m["message_id"] > sent and expect in view.render(m)
                       for m in chat)

        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and not answered(tg.chat(USER_ID)):
            view.poll()
            time.sleep(0.15)
        view.wait_quiet(max(1.0, deadline - time.monotonic()))

    def worker_pid(self, session: str) -> int | None:
        out = self.ctl("status", "--json")
        for row in json.loads(out.stdout or "[]"):
            if row["name"] == f"session:{session}" and row["state"] == "RUNNING":
                return int(row["pid"])
        return None

    def tap_button(self, view: ChatView, tg: TelegramSandbox, label: str,
                   timeout: float = 60) -> bool:
        """Wait for a bot message with a button labelled `label` and tap it, as the user would."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            view.poll()
            for msg in reversed(tg.chat(USER_ID)):
                rows = (msg.get("reply_markup") or {}).get("inline_keyboard") or []
                for button in (b for row in rows for b in row):
                    if button.get("text") == label and button.get("callback_data"):
                        view.wait_quiet(5)
                        tap = f"you   [taps {label}]"
                        print(f"{BOLD}{tap}{RESET}" if self.color else tap, flush=True)
                        tg.tap(USER_ID, msg["message_id"], button["callback_data"])
                        return True
            time.sleep(0.15)
        return False

    def script(self, tg: TelegramSandbox, view: ChatView) -> None:
        self.say("— two sessions with different personas —")
        self.user(view, tg, "/new api planner")
        self.user(view, tg, "Plan a small REST API for a todo list.", expect="✓")
        self.user(view, tg, "/new scratch default")
        self.say("— a tool use: Claude asks to run a Bash command, you approve it from the chat —")
        tg.send(USER_ID, "#sb:bash=echo hello from $(basename $PWD)")
        print((f"{BOLD}you   {RESET}" if self.color else "you   ")
              + "#sb:bash=echo hello from $(basename $PWD)")
        if self.tap_button(view, tg, "Allow"):
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not any(
                    "tool said" in (m.get("text") or "") for m in tg.chat(USER_ID)):
                view.poll()
                time.sleep(0.15)
            view.wait_quiet(10)
        self.status()
        pid = self.worker_pid("scratch")
        if pid:
            self.say(f"— kill -9 of the worker of session scratch (pid {pid}) —")
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                new = self.worker_pid("scratch")
                if new and new != pid:
                    break
                time.sleep(0.1)
            self.status()
        self.user(view, tg, "Still there after the crash?", expect="✓")
        self.user(view, tg, "/sessions")
        self.say("— a session in a project: its own git worktree of the repository, on its own"
                 " branch —")
        self.user(view, tg, "/new feature @shop")
        command = "#sb:bash=pwd; git branch --show-current"
        print((f"{BOLD}you   {RESET}" if self.color else "you   ") + command)
        tg.send(USER_ID, command)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(
                "tool said" in (m.get("text") or "") for m in tg.chat(USER_ID)[-3:]):
            view.poll()
            if any("asks to use Bash" in (m.get("text") or "") for m in tg.chat(USER_ID)[-2:]):
                self.tap_button(view, tg, "Allow", timeout=5)
            time.sleep(0.15)
        view.wait_quiet(10)
        self.user(view, tg, "/projects", expect="shop")

    def interactive(self, tg: TelegramSandbox, view: ChatView) -> None:
        self.say("— your turn: type as the Telegram user (/help for commands, Ctrl-D to quit;"
                 f" '{VOICE_PREFIX} words' sends a voice note of those words) —")
        stop = threading.Event()

        def pump() -> None:
            while not stop.is_set():
                try:
                    view.poll()
                except Exception:  # noqa: BLE001 - the sandbox went away while quitting
                    return
                stop.wait(0.2)

        t = threading.Thread(target=pump, daemon=True)
        t.start()
        echo = not sys.stdin.isatty()  # piped input: show it, as the terminal would have
        interrupted = False
        try:
            for line in sys.stdin:
                line = line.strip()
                if line in ("/quit", "/exit"):
                    break
                if line:
                    if echo:
                        you = f"{BOLD}you   {RESET}" if self.color else "you   "
                        print(you + line, flush=True)
                    if line.startswith(VOICE_PREFIX):  # a "recording" of the words after it
                        tg.send_voice(USER_ID, line[len(VOICE_PREFIX):].strip().encode() or b".")
                    else:
                        tg.send(USER_ID, line)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            stop.set()
            t.join(2)
        if not interrupted:
            view.wait_quiet(30, settle=2.0)  # the answers to the last lines

    def stop_stack(self) -> None:
        proc = self.run_proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)

    def run(self) -> int:
        claude = find_claude()
        if claude is None:
            print("The Claude Code CLI was not found: run `make demo`,"
                  " which installs it into .cli/.")
            return 1
        try:
            with ModelSandbox() as model, TelegramSandbox() as tg:
                self.write_config(tg, model, claude)
                self.say(f"Switchboard demo · sandbox Telegram {tg.url}"
                         f" · sandbox model {model.url}")
                self.start_stack(tg)
                view = ChatView(tg, USER_ID, self.color)
                try:
                    self.script(tg, view)
                    interactive = self.args.interactive
                    if interactive or (interactive is None and sys.stdin.isatty()):
                        self.interactive(tg, view)
                finally:
                    self.stop_stack()
        finally:
            if not self.args.keep:
                shutil.rmtree(self.tmp, ignore_errors=True)
            else:
                self.say(f"kept {self.tmp}")
        return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="switchboard demo", description=__doc__.splitlines()[0])
    p.add_argument("--interactive", dest="interactive", action="store_true", default=None,
                   help="type as the user after the script (default: when stdin is a terminal)")
    p.add_argument("--no-interactive", dest="interactive", action="store_false")
    p.add_argument("--keep", action="store_true", help="keep the temporary state dir and logs")
    return Demo(p.parse_args(argv)).run()


if __name__ == "__main__":
    sys.exit(main())
