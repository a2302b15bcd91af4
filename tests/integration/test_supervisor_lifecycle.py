"""The supervisor with real processes: start, crash, restart, give up, heartbeat, stop."""
from __future__ import annotations

import os
import signal

import pytest

from tests.support.supervisor import SupervisorHarness
from tests.support.waits import wait_until
from wire import messages as m

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def sup(tmp_path):
    s = SupervisorHarness(tmp_path)
    yield s
    s.close()


def test_new_session_runs_and_sigkill_restarts_with_new_pid(sup):
    sup.start()
    sup.subscribe()
    res = sup.ok(m.NewSession(id=m.new_id(), name="alpha"))
    assert res.results[0].ok, res
    row = sup.wait_state("session:alpha", "RUNNING")
    old = row.pid
    os.kill(old, signal.SIGKILL)
    ev = sup.wait_event(lambda e: e.to_state == "EXITED" and e.pid == old, what="EXITED -9")
    assert ev.exit_code == -9 and ev.from_state == "RUNNING"
    row = wait_until(lambda: (r := sup.status()["session:alpha"]).state == "RUNNING"
                     and r.pid != old and r, 10, "RUNNING with a new pid")
    assert row.pid != old
    assert not any(p.pid == old for p in __import__("psutil").process_iter())


def states_of(events, program):
    return [e.to_state for e in events if e.program == program]


def test_always_crashing_worker_goes_fatal_on_schedule(tmp_path):
    # startsecs well above a Python start-up on a loaded 2-core machine: the stand-in's crash at
    # start must count as a failed start, never as RUNNING.
    sup = SupervisorHarness(tmp_path, supervisor={"startsecs": 3.0})
    try:
        _always_crashing_goes_fatal(sup)
    finally:
        sup.close()


def _always_crashing_goes_fatal(sup: SupervisorHarness) -> None:
    sup.start()
    sup.subscribe()
    res = sup.ok(m.NewSession(id=m.new_id(), name="crash-a"))
    assert not res.results[0].ok and "abnormal termination" in res.results[0].message
    # startretries=2: three tries, two backoffs of <= 0.1 s and 0.2 s, well inside the deadline.
    ev = sup.wait_event(lambda e: e.program == "session:crash-a" and e.to_state == "FATAL",
                        timeout=5, what="FATAL")
    assert states_of(sup.events, "session:crash-a") == [
        "STARTING", "BACKOFF", "STARTING", "BACKOFF", "STARTING", "FATAL"]
    assert ev.exit_code == 1 and "gave up after 3 failures" in ev.reason
    row = sup.status()["session:crash-a"]
    assert row.state == "FATAL" and "gave up" in row.description


def test_crashes_after_running_also_go_fatal(sup):
    sup.extra_env["STANDIN_LATE_SECONDS"] = "0.5"
    sup.start()
    sup.subscribe()
    sup.ok(m.NewSession(id=m.new_id(), name="late-a"))
    sup.wait_event(lambda e: e.program == "session:late-a" and e.to_state == "FATAL",
                   timeout=20, what="FATAL")
    seen = states_of(sup.events, "session:late-a")
    assert seen.count("RUNNING") == 3 and seen.count("EXITED") == 3, seen
    assert seen[-1] == "FATAL"
    exits = [e.exit_code for e in sup.events if e.to_state == "EXITED"]
    assert exits == [3, 3, 3]


def test_fatal_is_cleared_by_start_and_by_ensure_running(sup):
    sup.start()
    sup.subscribe()
    sup.ok(m.NewSession(id=m.new_id(), name="crash-b"))
    sup.wait_state("session:crash-b", "FATAL")
    n = len(sup.drain_events())
    res = sup.ok(m.EnsureRunning(id=m.new_id(), name="crash-b"))
    assert not res.results[0].ok
    assert "STARTING" in [e.to_state for e in sup.drain_events()[n:]]
    sup.wait_state("session:crash-b", "FATAL")
    n = len(sup.drain_events())
    sup.ok(m.Start(id=m.new_id(), names=["crash-b"]))
    assert "STARTING" in [e.to_state for e in sup.drain_events()[n:]]


def test_hung_worker_is_killed_by_heartbeat(sup):
    sup.start()
    sup.subscribe()
    sup.ok(m.NewSession(id=m.new_id(), name="hang-a"))
    first = sup.wait_state("session:hang-a", "RUNNING").pid
    ev = sup.wait_event(lambda e: e.program == "session:hang-a" and e.to_state == "EXITED",
                        timeout=10, what="heartbeat kill")
    assert ev.pid == first and ev.exit_code == -9 and "no heartbeat" in ev.reason
    sup.wait_event(lambda e: e.program == "session:hang-a" and e.to_state == "STARTING"
                   and e.pid != first, what="restart")


def test_stop_start_restart_and_persistence_across_supervisor_restarts(sup, tmp_path):
    sup.start()
    for name in ("one", "two", "three"):
        assert sup.ok(m.NewSession(id=m.new_id(), name=name)).results[0].ok
    res = sup.ok(m.Stop(id=m.new_id(), names=["two"]))
    assert res.results[0].message == "stopped"
    assert sup.state("session:two") == "STOPPED"
    res = sup.ok(m.Restart(id=m.new_id(), names=["three"]))
    assert res.results[0].message.splitlines() == ["stopped", "started"]
    assert sup.stop() == 0
    sup.assert_nothing_left()
    sup.start()
    rows = sup.status()
    sup.wait_state("session:one", "RUNNING")
    sup.wait_state("session:three", "RUNNING")
    assert rows["session:two"].state == "STOPPED"
    assert rows["session:two"].description == "Not started"


def test_remove_and_unknown_names(sup):
    sup.start()
    sup.ok(m.NewSession(id=m.new_id(), name="gone"))
    err = sup.request(m.NewSession(id=m.new_id(), name="gone"))
    assert isinstance(err, m.Error) and err.code == m.E_EXISTS
    err = sup.request(m.NewSession(id=m.new_id(), name="../x"))
    assert isinstance(err, m.Error) and err.code == m.E_INVALID_NAME
    err = sup.request(m.NewSession(id=m.new_id(), name="p", persona="nope"))
    assert isinstance(err, m.Error) and err.code == m.E_UNKNOWN_PERSONA
    pid = sup.wait_state("session:gone", "RUNNING").pid
    sup.ok(m.RemoveSession(id=m.new_id(), name="gone"))
    assert "session:gone" not in sup.status()
    assert not any(p.pid == pid for p in __import__("psutil").process_iter())
    err = sup.request(m.Stop(id=m.new_id(), names=["gone"]))
    assert isinstance(err, m.Error) and err.code == m.E_UNKNOWN_NAME


def test_set_persona_restarts_the_worker_with_it(sup):
    sup.start()
    sup.ok(m.NewSession(id=m.new_id(), name="pp"))
    old = sup.wait_state("session:pp", "RUNNING").pid
    personas = [p.name for p in sup.ok(m.ListPersonas(id=m.new_id())).personas]
    other = next(p for p in personas if p != "default")
    res = sup.ok(m.SetPersona(id=m.new_id(), name="pp", persona=other))
    assert res.results[0].ok
    row = sup.wait_state("session:pp", "RUNNING")
    assert row.pid != old and row.persona == other
