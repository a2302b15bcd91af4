"""Callback data: what each builder puts on a button parses back to the same tap; junk does not."""
from __future__ import annotations

import re

import pytest

from bot import callbacks
from bot.callbacks import GrantTap, PermissionTap, RemoveTap


def _datas(markup: object) -> list[str]:
    rows = getattr(markup, "inline_keyboard")  # noqa: B009
    return [str(b.callback_data) for row in rows for b in row]


@pytest.mark.timeout(5)
@pytest.mark.parametrize(("data", "expected"), [
    ("p:7:a", PermissionTap(7, allow=True, always=False)),
    ("p:7:d", PermissionTap(7, allow=False, always=False)),
    ("p:12:s", PermissionTap(12, allow=True, always=True)),
    ("p:7:x", None),
    ("p:x:a", None),
    ("p:7", None),
    ("p:7:a:more", None),
    ("sw:alpha", None),
])
def test_permission(data: str, expected: PermissionTap | None) -> None:
    assert callbacks.parse_permission(data) == expected


@pytest.mark.timeout(5)
@pytest.mark.parametrize(("data", "expected"), [
    ("sw:alpha", "alpha"),
    ("sw:a-b_1", "a-b_1"),
    ("sw:", None),
    ("sw:Bad*Name", None),
    ("sw:../x", None),
    ("rm:y:alpha", None),
])
def test_switch(data: str, expected: str | None) -> None:
    assert callbacks.parse_switch(data) == expected


@pytest.mark.timeout(5)
@pytest.mark.parametrize(("data", "expected"), [
    ("tp:alpha", "alpha"),
    ("tp:", None),
    ("tp:Bad*Name", None),
    ("sw:alpha", None),
])
def test_topic(data: str, expected: str | None) -> None:
    assert callbacks.parse_topic(data) == expected
    if expected is not None:  # the button's own data parses back
        assert callbacks.topic_button(expected).callback_data == data


@pytest.mark.timeout(5)
@pytest.mark.parametrize(("data", "expected"), [
    ("rm:y:alpha", RemoveTap(confirmed=True, name="alpha")),
    ("rm:n:alpha", RemoveTap(confirmed=False, name="alpha")),
    ("rm:x:alpha", None),
    ("rm:y:", None),
    ("rm:y:Bad Name", None),
    ("sw:alpha", None),
])
def test_remove(data: str, expected: RemoveTap | None) -> None:
    assert callbacks.parse_remove(data) == expected


@pytest.mark.timeout(5)
@pytest.mark.parametrize(("data", "expected"), [
    ("g:alpha:12", GrantTap("alpha", 12)),
    ("g:alpha:", None),
    ("g:Bad Name:1", None),
    ("g:alpha:x", None),
    ("g:alpha:1:2", None),
    ("p:1:a", None),
])
def test_grant(data: str, expected: GrantTap | None) -> None:
    assert callbacks.parse_grant(data) == expected


@pytest.mark.timeout(5)
@pytest.mark.parametrize(("data", "expected"), [
    ("rt:7", 7),
    ("rt:0012", 12),
    ("rt:", None),
    ("rt:x", None),
    ("rt:7:more", None),
    ("rt:" + "9" * 19, None),
    ("rm:y:alpha", None),
])
def test_retry(data: str, expected: int | None) -> None:
    assert callbacks.parse_retry(data) == expected
    if expected is not None and not data.startswith("rt:0"):
        assert _datas(callbacks.retry_markup(expected)) == [data]


@pytest.mark.timeout(5)
def test_builders_make_what_the_parsers_and_patterns_take() -> None:
    prompt = _datas(callbacks.permission_markup(3, "alpha", "`ls` commands"))
    assert prompt == ["p:3:a", "p:3:d", "p:3:s", "sw:alpha"]
    assert _datas(callbacks.permission_markup(3, None, "`ls` commands")) == [
        "p:3:a", "p:3:d", "p:3:s"]
    # No rule narrower than "everything": no "for this session" button at all.
    assert _datas(callbacks.permission_markup(3, None)) == ["p:3:a", "p:3:d"]
    labels = [b.text for row in callbacks.permission_markup(3, None, "`npm test` commands")
              .inline_keyboard for b in row]
    assert labels == ["Allow", "Deny", "Allow `npm test` commands for this session"]
    assert callbacks.grant_button_text("x" * 100) == f"Allow {'x' * 47}… for this session"
    revoke = _datas(callbacks.revoke_buttons("alpha", [(4, "`touch` commands")]))
    assert revoke == ["g:alpha:4"]
    assert callbacks.parse_grant("g:alpha:4") == GrantTap("alpha", 4)
    assert [callbacks.parse_permission(d) for d in prompt[:3]] == [
        PermissionTap(3, True, False), PermissionTap(3, False, False), PermissionTap(3, True, True)]
    assert callbacks.switch_button("beta").text == "Switch to beta"
    picker = callbacks.switch_picker(["a", "b", "c"])
    assert [[b.text for b in row] for row in picker.inline_keyboard] == [["a", "b"], ["c"]]
    assert _datas(callbacks.remove_confirm("beta")) == ["rm:y:beta", "rm:n:beta"]
    # Each kind's pattern takes its own data and nobody else's.
    kinds = {callbacks.PERMISSION: "p:1:a", callbacks.SWITCH: "sw:a", callbacks.REMOVE: "rm:y:a",
             callbacks.GRANT: "g:a:1", callbacks.RETRY: "rt:4"}
    for pattern, own in kinds.items():
        assert [re.match(pattern, d) is not None for d in kinds.values()] == [
            d == own for d in kinds.values()]
    # Telegram refuses callback data over 64 bytes: the longest name still fits.
    longest = "a" * 32
    for data in (*_datas(callbacks.remove_confirm(longest)),
                 *_datas(callbacks.permission_markup(10**17, longest, "x" * 200)),
                 *_datas(callbacks.revoke_buttons(longest, [(10**17, "x")])),
                 *_datas(callbacks.retry_markup(10**17))):
        assert len(data.encode()) <= 64
