"""The sandbox settings a session's CLI gets (session_worker.fence) and when it gets them
(wire.sandbox): pure, table-tested. The e2e tier proves each deny by trying it."""
from __future__ import annotations

import json

import pytest

from session_worker.claude_process import build_argv
from session_worker.fence import Fence, sandbox_settings, settings_arg, tool_rules
from supervisor.personas import PersonaError, load_file
from wire import messages as m
from wire import sandbox

INSIDE = Fence("/s", "/r", "/s/sessions/ab/work", "/c/switchboard.toml", "/c/env",
               ("ab", "cd"))
OUTSIDE = Fence("/s", "/r", "/p/project", "/c/switchboard.toml", None)
# A session in a project that may still read the chat's uploads in its own work/.
UPLOADS = Fence("/s", "/r", "/p/project", None, None, ("ab", "cd"),
                readable=("/s/sessions/ab/work/uploads",))


def test_the_sandbox_is_on_strict_and_denies_every_fenced_path() -> None:
    sb = sandbox_settings(INSIDE)["sandbox"]
    assert isinstance(sb, dict)
    assert sb["enabled"] is True and sb["failIfUnavailable"] is True
    assert sb["allowUnsandboxedCommands"] is False
    for never in ("autoAllowBashIfSandboxed", "network"):
        assert never not in sb
    fs = sb["filesystem"]
    assert fs["denyRead"] == ["/c/switchboard.toml", "/c/env", "/s", "/r"]
    assert fs["allowRead"] == ["/s/sessions/ab/work"], "the work dir re-opened inside /s"
    assert fs["denyWrite"] == ["/c/switchboard.toml", "/c/env", "/r"], (
        "a denyWrite of /s would beat the work dir's own write")
    assert "allowAllUnixSockets" not in json.dumps(sb)


def test_a_work_dir_outside_the_state_dir_leaves_the_whole_state_dir_denied() -> None:
    fs = sandbox_settings(OUTSIDE)["sandbox"]["filesystem"]  # type: ignore[index]
    assert fs["denyWrite"] == fs["denyRead"] == ["/c/switchboard.toml", "/s", "/r"]
    assert "allowRead" not in fs
    assert "Read(//s/**)" in tool_rules(OUTSIDE) and "Edit(//s)" in tool_rules(OUTSIDE)


@pytest.mark.parametrize(("rule", "present"), [
    ("Read(//c/switchboard.toml)", True),
    ("Edit(//c/env)", True),
    ("Write(//r/**)", True),
    ("Read(//s/*.*)", True),              # bot.db, sessions.json, supervisor.lock, ...
    ("Read(//s/logs/**)", True),
    ("Read(//s/sessions/*/*.*)", True),   # session.db, metadata.json, ...
    ("Edit(//s/sessions/*/*.*)", True),
    ("Edit(//s/sessions/*/stop-by-user)", True),
    ("Read(//s/sessions/cd/**)", True),   # another session
    ("Read(//s/sessions/ab/**)", False),  # its own dir holds its work dir
    ("Read(//s/**)", False),
])
def test_the_tools_rules_cover_the_same_paths_but_the_own_work_dir(rule: str,
                                                                    present: bool) -> None:
    rules = tool_rules(INSIDE)
    assert (rule in rules) is present
    assert not any("[" in r for r in rules), "a bracket class is no negation in these rules"
    assert all(r.startswith(("Read(//", "Edit(//", "Write(//")) for r in rules)


@pytest.mark.parametrize(("rule", "present"), [
    ("Read(//s/sessions/cd/**)", True),
    ("Read(//s/*.*)", True),
    ("Read(//s/**)", False),       # its uploads are in there
    ("Edit(//s/**)", True),        # but it may change nothing in the state dir
    ("Write(//s/**)", True),
    ("Edit(//s)", True),
    ("Edit(//s/sessions/cd/**)", False),  # covered by //s/** already
])
def test_a_session_in_a_project_may_read_its_uploads_but_write_nothing_in_the_state_dir(
        rule: str, present: bool) -> None:
    assert (rule in tool_rules(UPLOADS)) is present


def test_a_session_in_its_worktree_may_read_its_uploads_in_its_own_session_dir() -> None:
    tree = Fence("/s", "/r", "/s/worktrees/web/ab", None, None, ("ab", "cd"),
                 readable=("/s/sessions/ab/work/uploads",))
    rules = tool_rules(tree)
    assert "Read(//s/sessions/ab/**)" not in rules, "its uploads are in there"
    assert "Edit(//s/sessions/ab/**)" in rules, "but it writes only in its worktree"
    assert "Read(//s/worktrees/*/ab/**)" not in rules and "Edit(//s/worktrees/*/ab/**)" not in rules
    assert "Read(//s/sessions/cd/**)" in rules and "Read(//s/worktrees/*/cd/**)" in rules
    assert "Read(//s/sessions/*/*.*)" in rules


def test_argv_carries_the_settings_only_with_a_fence_and_before_the_extra_args() -> None:
    persona = m.Persona(name="d")
    assert "--settings" not in build_argv("claude", persona, [], None)
    argv = build_argv("claude", persona, ["--max-turns", "5"], "sid", INSIDE)
    i = argv.index("--settings")
    assert json.loads(argv[i + 1]) == sandbox_settings(INSIDE)
    assert argv[i + 1] == settings_arg(INSIDE)
    assert i < argv.index("--max-turns") and argv[-1] == "--resume=sid"


@pytest.mark.parametrize(("setting", "missing", "on"), [
    (None, [], True),
    (None, ["bwrap"], False),
    (True, [], True),
    (True, ["socat"], True),  # asked for outright: the worker refuses to start without it
    (False, [], False),
])
def test_when_a_persona_gets_the_sandbox(setting: bool | None, missing: list[str],
                                         on: bool) -> None:
    assert sandbox.wanted(setting, missing) is on


def test_the_sentence_for_a_missing_sandbox_names_the_install_command() -> None:
    text = sandbox.unavailable("coder", ["bwrap", "socat"])
    assert "coder" in text and "bwrap and socat are not installed" in text
    assert sandbox.INSTALL in text and text.count(".") == 1


def test_missing_programs_looks_on_the_given_path(tmp_path) -> None:
    assert sandbox.missing_programs(str(tmp_path)) == ["bwrap", "socat"]


@pytest.mark.parametrize(("value", "ok"), [("true", True), ("false", True), ("null", True),
                                           ('"yes"', False), ("1", False)])
def test_a_personas_sandbox_field_is_true_false_or_absent(tmp_path, value: str, ok: bool) -> None:
    path = tmp_path / "p.json"
    path.write_text(f'{{"name": "p", "sandbox": {value}}}')
    if ok:
        assert load_file(path).sandbox == json.loads(value)
    else:
        with pytest.raises(PersonaError, match="field 'sandbox' must be true or false"):
            load_file(path)
