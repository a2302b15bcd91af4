"""store.py, the CLI command line and environment, and the user-facing sentences."""

from __future__ import annotations

import json
import os

import pytest

from session_worker import notices
from session_worker.claude_process import BASE_FLAGS, build_argv, build_env
from session_worker.store import Store, read_json, write_json_atomic
from wire import messages as m
from wire.names import MARKER_ENV


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "session.db")
    yield s
    s.close()


def test_inbox_dedupes_and_keeps_order(store):
    assert store.add_turn("a", 1, "first")
    assert store.add_turn("b", 1, "second")
    assert not store.add_turn("a", 1, "first again")
    assert store.open_count() == 2
    item = store.next_open()
    assert item.key == "a" and item.text == "first"
    assert store.mark_running(item.id) == 1
    assert store.next_open().key == "a", "a running message is still unfinished"
    store.finish(item.id)
    assert store.next_open().key == "b"
    assert store.item("a").state == "done"


def test_unfinished_work_survives_reopen(tmp_path):
    s = Store(tmp_path / "s.db")
    s.add_turn("a", 1, "x")
    s.mark_running(s.next_open().id)
    s.close()
    s = Store(tmp_path / "s.db")
    item = s.next_open()
    assert item.key == "a" and item.state == "running" and item.attempts == 1
    assert s.mark_running(item.id) == 2
    s.close()


def test_outbox_seq_and_replay(store):
    for _ in range(150):
        store.append("k", lambda seq: f"frame{seq}".encode())
    assert store.last_seq == 150
    got = list(store.iter_after(10))
    assert [s for s, _ in got] == list(range(11, 151))
    assert got[0][1] == b"frame11"
    assert store.events_after(150) == []


def test_last_seq_survives_reopen(tmp_path):
    s = Store(tmp_path / "s.db")
    s.append("", lambda seq: b"x")
    s.append("", lambda seq: b"y")
    s.close()
    assert Store(tmp_path / "s.db").last_seq == 2


def test_usage_and_kv(store):
    store.add_usage("a", 0.5, 10, 1)
    store.add_usage("b", 0.25, 10, 1)
    assert store.total_cost() == pytest.approx(0.75)
    assert store.get("claude_session_id") is None
    store.put("claude_session_id", "abc")
    assert store.get("claude_session_id") == "abc"


def test_db_is_wal_and_private(store, tmp_path):
    assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert oct(os.stat(tmp_path / "session.db").st_mode & 0o777) == "0o600"


def test_metadata_atomic_write(tmp_path):
    p = tmp_path / "metadata.json"
    write_json_atomic(p, {"name": "a", "status": "running"})
    assert read_json(p) == {"name": "a", "status": "running"}
    assert [x.name for x in tmp_path.iterdir()] == ["metadata.json"]
    p.write_text("{broken")
    assert read_json(p) == {}


def test_argv_with_persona_and_resume():
    persona = m.Persona(
        name="p",
        append_system_prompt="Be brief.",
        model="opus",
        permission_mode="plan",
        allowed_tools=["Read", "Bash(git *)"],
        disallowed_tools=["Edit"],
    )
    argv = build_argv("claude", persona, ["--max-turns", "5"], "sid-1")
    assert argv[0] == "claude"
    for flag in BASE_FLAGS:
        assert flag in argv
    assert argv[argv.index("--append-system-prompt") + 1] == "Be brief."
    assert argv[argv.index("--model") + 1] == "opus"
    assert argv[argv.index("--permission-mode") + 1] == "plan"
    a = argv.index("--allowedTools")
    assert argv[a + 1 : a + 3] == ["Read", "Bash(git *)"] and argv[a + 3].startswith("--")
    d = argv.index("--disallowedTools")
    assert argv[d + 1] == "Edit" and argv[d + 2].startswith("-")
    assert argv[-1] == "--resume=sid-1" and "--max-turns" in argv
    assert "--system-prompt" not in argv, "append, never replace Claude Code's prompt"


def test_argv_minimal():
    argv = build_argv("claude", m.Persona(name="d"), [], None)
    assert not any(a.startswith("--resume") for a in argv)
    assert "--append-system-prompt" not in argv and "--model" not in argv


def test_env_drops_switchboard_secrets_and_sets_marker():
    base = {
        "PATH": "/bin",
        "HOME": "/h",
        "SWITCHBOARD_WORKER_SETTINGS": "{}",
        "SWITCHBOARD_TELEGRAM_TOKEN": "123:abc",
        "TELEGRAM_BOT_TOKEN": "123:abc",
    }
    env = build_env(base, {"ANTHROPIC_API_KEY": "k", MARKER_ENV: "spoof"}, "demo")
    assert env == {"PATH": "/bin", "HOME": "/h", "ANTHROPIC_API_KEY": "k", MARKER_ENV: "demo"}


@pytest.mark.parametrize(
    "sentence",
    [
        notices.missing_binary("claude"),
        notices.exited_at_start(1, ["", "error: unknown option '--bogus'"]),
        notices.crashed_retrying(-9),
        notices.crashed_giving_up(-9, 3),
        notices.hung(600),
        notices.interrupt_forced(),
        notices.api_error(401, "Invalid API key"),
        notices.api_error(529, "Overloaded"),
        notices.api_error(500, "boom"),
        notices.api_error(None, "odd"),
        notices.unreadable_line("not JSON"),
        notices.too_many_attempts(3),
    ],
)
def test_notices_are_one_sentence(sentence):
    assert sentence.count(". ") <= 1 and "\n" not in sentence and len(sentence) < 300
    assert sentence[0].isupper() and sentence.endswith(".")


def test_notices_name_details_and_hide_keys():
    assert "unknown option '--bogus'" in notices.exited_at_start(
        1, ["error: unknown option '--bogus'"]
    )
    assert "killed by SIGKILL" in notices.crashed_retrying(-9)
    assert "sk-ant-secret" not in notices.exited_at_start(1, ["bad key sk-ant-secret123456"])
    assert "ANTHROPIC_API_KEY" in notices.api_error(401, "")
    assert json.dumps(notices.api_error(429, ""))
