"""wire.logs: one key=value log per program, rotated by size, private, and never a token."""
from __future__ import annotations

import logging
import re
import stat
from pathlib import Path

import pytest

from wire import logs

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        root.removeHandler(h)
        h.close()
    for h in handlers:
        root.addHandler(h)
    root.setLevel(level)


def test_lines_are_key_value_with_program_session_and_event(tmp_path: Path, restore_logging):
    logs.setup("session:demo", tmp_path, session="demo", stderr=False)
    logging.getLogger("x").info("event=turn_done key=%s cost=%.2f", "k1", 0.5)
    logging.getLogger("x").warning("plain words")
    path = logs.log_path(tmp_path, "session:demo")
    assert path.name == "session-demo.log"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first, second = path.read_text().splitlines()
    assert re.fullmatch(r"time=\S+Z level=info program=session:demo session=demo logger=x "
                        r"event=turn_done key=k1 cost=0.50", first)
    assert "level=warning" in second and "event=log msg='plain words'" in second


def test_a_token_never_reaches_the_file(tmp_path: Path, restore_logging) -> None:
    logs.setup("bot", tmp_path, stderr=False)
    log = logging.getLogger("httpx-like")
    log.info("event=request url=https://api.telegram.org/bot%s/getUpdates", TOKEN)
    try:
        raise RuntimeError(f"failed with {TOKEN}")
    except RuntimeError:
        log.exception("event=failed")
    text = logs.log_path(tmp_path, "bot").read_text()
    assert TOKEN not in text and "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw" not in text
    assert text.count("<token>") >= 2
    # httpx would log every URL (with the token) at info: it is held at warning.
    assert logging.getLogger("httpx").getEffectiveLevel() == logging.WARNING


def test_rotated_by_size(tmp_path: Path, restore_logging) -> None:
    logs.setup("supervisor", tmp_path, stderr=False, max_bytes=2000)
    log = logging.getLogger("s")
    for i in range(200):
        log.info("event=tick n=%d pad=%s", i, "x" * 40)
    path = logs.log_path(tmp_path, "supervisor")
    rotated = sorted(p.name for p in path.parent.iterdir())
    assert rotated == ["supervisor.log", "supervisor.log.1", "supervisor.log.2", "supervisor.log.3"]
    assert all(p.stat().st_size <= 2000 for p in path.parent.iterdir())
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in path.parent.iterdir())
    assert "n=199" in path.read_text()
