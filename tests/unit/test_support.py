"""The shared test helpers' own pure parts: the deadline loop and the TOML renderer."""
from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.support import standin_cli
from tests.support.config import render_config, toml_value
from tests.support.waits import wait_until


@pytest.mark.parametrize(("value", "toml"), [
    (True, "true"),
    (False, "false"),
    (3, "3"),
    (0.25, "0.25"),
    ("plain", '"plain"'),
    ('quote " and \\ back', '"quote \\" and \\\\ back"'),
    ([1, 2], "[1, 2]"),
    ((1, "a"), '[1, "a"]'),
    ({"K": "v"}, '{ "K" = "v" }'),
    ({}, "{  }"),
])
def test_toml_value(value: Any, toml: str) -> None:
    assert toml_value(value) == toml


@pytest.mark.parametrize("value", [None, object(), b"bytes"])
def test_toml_value_refuses_what_it_cannot_render(value: Any) -> None:
    with pytest.raises(TypeError):
        toml_value(value)


@pytest.mark.parametrize(("top", "sections"), [
    ({}, {}),
    ({"state_dir": "/x y"}, {}),
    ({"a": 1}, {"telegram": {"allowed_user_ids": [1, 2], "enabled": True}}),
    ({}, {"claude": {"env": {"A_B": "c\"d", "E": "ü"}}, "supervisor": {"startsecs": 0.5}}),
])
def test_render_config_reads_back_as_the_same_values(top: dict[str, Any],
                                                      sections: dict[str, Any]) -> None:
    assert tomllib.loads(render_config(top, sections)) == {**top, **sections}


@pytest.mark.parametrize(("values", "expect", "polls"), [
    ([5], 5, 1),
    ([0, None, "", "got"], "got", 4),
    ([0, [], {"k": 1}], {"k": 1}, 3),
])
def test_wait_until_returns_the_first_truthy_value(values: list[Any], expect: Any,
                                                   polls: int) -> None:
    seen = iter(values)
    pauses: list[float] = []
    assert wait_until(lambda: next(seen), 10, "a value", 0.5, pause=pauses.append) == expect
    assert pauses == [0.5] * (polls - 1)


@pytest.mark.parametrize(("detail", "message"), [
    (None, "timed out after 0 s waiting for the thing"),
    (lambda: "last seen: x", "timed out after 0 s waiting for the thing; last seen: x"),
])
def test_wait_until_names_what_and_the_timeout(detail: Any, message: str) -> None:
    with pytest.raises(AssertionError) as err:
        wait_until(lambda: False, 0, "the thing", detail=detail)
    assert str(err.value) == message


@pytest.mark.parametrize("mode", ["", "SCRIPTED", "echo"])
def test_the_standin_cli_refuses_an_unknown_mode(mode: str) -> None:
    with pytest.raises(ValueError, match="unknown stand-in mode"):  # before writing anything
        standin_cli.install(Path("never-written"), mode)
    assert standin_cli.main([f"--standin-mode={mode}"]) == 2
