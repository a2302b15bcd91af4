"""The system unit and `switchboardctl` agree on where the sockets, the state and the config are.

systemd is not running here: the unit is parsed and rendered for one user, the supervisor's
paths are derived in the environment the unit gives it, and the ctl's in a login shell's.
"""
from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

from supervisor import config as config_mod
from supervisor import statelock
from wire.endpoints import RUNTIME_DIR_ENV

ROOT = Path(__file__).resolve().parent.parent.parent
USER, UID = "alice", 1000
HOME = f"/home/{USER}"


def service_section(unit: str) -> dict[str, list[str]]:
    """[Service] of a unit rendered for USER: every key with all its values, in order."""
    text = (ROOT / "systemd" / unit).read_text().replace("%i", USER).replace("%h", HOME)
    out: dict[str, list[str]] = {}
    section = ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip("[]")
        elif section == "Service":
            key, _, value = line.partition("=")
            out.setdefault(key, []).append(value)
    return out


def environment(service: dict[str, list[str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for entry in service.get("Environment", []):
        for pair in entry.split():
            k, _, v = pair.partition("=")
            env[k] = v
    return env


def derive(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], text: str = ""
           ) -> config_mod.Config:
    for k in ("XDG_RUNTIME_DIR", "XDG_STATE_HOME", "XDG_CONFIG_HOME", "SWITCHBOARD_CONFIG",
              RUNTIME_DIR_ENV):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return config_mod.parse(text, f"{HOME}/.config/switchboard/switchboard.toml",
                            base_dir=Path(HOME))


def test_the_system_unit_and_switchboardctl_find_the_same_sockets(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    service = service_section("switchboard@.service")
    assert service["User"] == [USER]
    # systemd gives a User= service HOME, no XDG_RUNTIME_DIR, and a private /tmp.
    unit_env = {"HOME": HOME, **environment(service)}
    shell_env = {"HOME": HOME, "XDG_RUNTIME_DIR": f"/run/user/{UID}"}

    exec_start = service["ExecStart"][0].split()
    config_path = exec_start[exec_start.index("-c") + 1]
    derive(monkeypatch, shell_env)
    assert config_path == str(config_mod.default_config_path())  # plain `switchboardctl` too

    sup = derive(monkeypatch, unit_env)
    runtime = Path("/run") / service["RuntimeDirectory"][0]
    assert sup.runtime_path == runtime
    assert service["RuntimeDirectoryMode"] == ["0700"]
    assert service["PrivateTmp"] == ["yes"] and not str(sup.runtime_path).startswith("/tmp")
    # No StateDirectory= the supervisor would not use: its state is where the ctl looks.
    assert "StateDirectory" not in service
    ctl = derive(monkeypatch, shell_env)
    assert ctl.state_path == sup.state_path == Path(HOME) / ".local/state/switchboard"
    assert ctl.runtime_path != sup.runtime_path  # what the shell derives on its own differs...

    # ...so the running supervisor records its runtime dir in the state dir, and the ctl reads it.
    state = tmp_path / "state"
    state.mkdir()
    assert statelock.running_runtime_dir(state, ctl.runtime_path) == ctl.runtime_path
    fd = os.open(statelock.lock_path(state), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, f'{{"pid": {os.getpid()}, "runtime_dir": "{sup.runtime_path}"}}'.encode())
        assert statelock.running_runtime_dir(state, ctl.runtime_path) == runtime
    finally:
        os.close(fd)
    assert statelock.running_runtime_dir(state, ctl.runtime_path) == ctl.runtime_path


def test_a_runtime_dir_in_the_config_wins_over_the_unit(monkeypatch: pytest.MonkeyPatch) -> None:
    unit_env = {"HOME": HOME, **environment(service_section("switchboard@.service"))}
    cfg = derive(monkeypatch, unit_env, 'runtime_dir = "/run/elsewhere"\n')
    assert cfg.runtime_path == Path("/run/elsewhere")


def test_the_user_unit_leaves_the_runtime_dir_to_the_user_manager() -> None:
    service = service_section("switchboard.service")
    # The user manager has the login's XDG_RUNTIME_DIR: the shell derives the same dir.
    assert RUNTIME_DIR_ENV not in environment(service)
    exec_start = service["ExecStart"][0].split()
    assert exec_start[exec_start.index("-c") + 1] == f"{HOME}/.config/switchboard/switchboard.toml"
