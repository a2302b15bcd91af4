"""wire/: the codec never raises, round-trips every message, and endpoints stay private."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wire import codec, endpoints, names
from wire import messages as m

SAMPLES: list[m.Msg] = [
    m.Status(id="1", names=["bot", "session:a"]),
    m.Start(id="2", names=["a"]),
    m.NewSession(id="3", name="a", persona="planner"),
    m.Register(id="4", program="session:a", pid=42),
    m.Pong(id="5", stats=m.WorkerStats(session="a", claude_pid=7, queued=2)),
    m.Ok(id="6", result=m.StatusResult(programs=[m.ProgramStatus(name="bot", state="RUNNING")],
                                       sweeps=2)),
    m.Ok(id="6b"),
    m.Error(id="7", code=m.E_UNKNOWN_NAME, message="no such session"),
    m.UserTurn(id="8", key="tg:1:2", chat_id=1, text="héllo ✓", attachments=["/x"]),
    m.Accepted(id="9", key="tg:1:2", duplicate=True),
    m.Replay(id="10", after_seq=5),
    m.Hello(session="a", pid=1, last_seq=9),
    m.Event(session="a", seq=3, chat_id=1, key="k", body=m.TurnResult(text="x", cost_usd=0.1)),
    m.Event(session="a", seq=0, body=m.TextDelta(text="partial")),
    m.Event(session="a", seq=4, body=m.Unknown(type="future_thing", raw_json="{}")),
    m.StateChange(program="bot", from_state="STARTING", to_state="RUNNING", pid=3, exit_code=-9),
]


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda x: type(x).__name__)
def test_every_message_round_trips(msg: m.Msg) -> None:
    assert codec.decode(codec.encode(msg)) == msg


def test_status_from_a_supervisor_without_sweep_counts_still_decodes() -> None:
    frame = msgspec.msgpack.encode({"t": "Ok", "id": "1",
                                    "result": {"t": "StatusResult", "programs": []}})
    assert codec.decode(frame) == m.Ok(id="1", result=m.StatusResult(programs=[], sweeps=0))


def test_socket_decoders_accept_only_their_plane() -> None:
    assert isinstance(codec.to_worker.decode(codec.encode(m.Status(id="1"))), codec.DecodeError)
    replay = codec.encode(m.Replay(id="1", after_seq=0))
    assert isinstance(codec.control_requests.decode(replay), codec.DecodeError)
    assert codec.to_worker.decode(codec.encode(m.Cancel(id="c"))) == m.Cancel(id="c")


@pytest.mark.parametrize(
    "frame, fragment",
    [
        (b"", "empty frame"),
        (b"\xc1\xc1\xc1", "malformed"),
        (msgspec.msgpack.encode({"t": "Nope", "id": "1"}), "invalid message"),
        (msgspec.msgpack.encode({"t": "UserTurn", "id": 1}), "invalid message"),
        (msgspec.msgpack.encode({"t": "Status"}), "invalid message"),
        (msgspec.msgpack.encode([1, 2, 3]), "invalid message"),
        (codec.encode(m.Status(id="1"))[:-3], "malformed"),
    ],
)
def test_bad_frames_are_error_values(frame: bytes, fragment: str) -> None:
    result = codec.decode(frame)
    assert isinstance(result, codec.DecodeError)
    assert fragment in result.reason


def test_oversized_frame_is_refused_without_parsing() -> None:
    small = codec.Decoder(m.Message, max_frame=100)
    result = small.decode(codec.encode(m.UserTurn(id="1", key="k", chat_id=1, text="x" * 200)))
    assert isinstance(result, codec.DecodeError) and "limit" in result.reason


def test_request_id_survives_a_wrong_field() -> None:
    frame = msgspec.msgpack.encode({"t": "Start", "id": "abc", "names": "notalist"})
    assert isinstance(codec.control_requests.decode(frame), codec.DecodeError)
    assert codec.request_id_of(frame) == "abc"
    assert codec.request_id_of(b"\xff\xfe") == ""


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=512))
def test_random_bytes_never_raise(data: bytes) -> None:
    for dec in (codec.any_message, codec.control_requests, codec.to_worker, codec.to_bot):
        result = dec.decode(data)
        assert isinstance(result, (codec.DecodeError, msgspec.Struct))


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)
_tags = st.sampled_from(
    ["Status", "Start", "UserTurn", "Event", "Replay", "Pong", "Ok", "Error", "Hello", "Bogus", ""]
)


@settings(max_examples=400, deadline=None)
@given(_tags, st.dictionaries(st.sampled_from(["id", "names", "key", "chat_id", "text", "seq",
                                              "body", "session", "stats", "result", "code"]),
                              _json_values, max_size=6))
def test_valid_msgpack_wrong_messages_never_raise(tag: str, fields: dict) -> None:
    frame = msgspec.msgpack.encode({"t": tag, **fields})
    result = codec.decode(frame)
    if not isinstance(result, codec.DecodeError):
        # Whatever decoded is a real, fully typed message that re-encodes to itself.
        assert codec.decode(codec.encode(result)) == result


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(SAMPLES), st.data())
def test_mutated_valid_frames_never_raise(msg: m.Msg, data: st.DataObject) -> None:
    frame = bytearray(codec.encode(msg))
    i = data.draw(st.integers(0, len(frame) - 1))
    frame[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(frame)))
    result = codec.decode(bytes(frame[:cut]))
    assert isinstance(result, (codec.DecodeError, msgspec.Struct))


@pytest.mark.parametrize("name", ["a", "demo", "my-proj_2", "0" * 32])
def test_valid_session_names(name: str) -> None:
    assert names.session_name_error(name) is None
    assert names.parse_program(f"session:{name}") == ("session", name)


@pytest.mark.parametrize("name",
                         ["", "../x", "A", "-a", "_a", "a" * 33, "a/b", "a b", "é", "x" * 200])
def test_invalid_session_names_get_one_sentence(name: str) -> None:
    err = names.session_name_error(name)
    assert err is not None and "a-z" in err and len(err) < 200
    with pytest.raises(names.InvalidName):
        names.check_session_name(name)


@pytest.mark.parametrize("name", ["all", "bot", "supervisor", "help", "none"])
def test_reserved_words_are_not_session_names(name: str) -> None:
    err = names.session_name_error(name)
    assert err is not None and f"'{name}' is a reserved word" in err and err.count(".") <= 2
    with pytest.raises(names.InvalidName):
        names.check_session_name(name)
    with pytest.raises(names.InvalidName):
        names.parse_program(f"session:{name}")
    assert names.session_name_error(f"{name}-1") is None


def test_runtime_dir_is_made_private(tmp_path: Path) -> None:
    d = tmp_path / "rt"
    d.mkdir(mode=0o755)
    ep = endpoints.prepare_runtime_dir(d)
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
    assert ep.control == f"ipc://{d}/control.sock"


def test_too_long_runtime_dir_is_refused_with_the_fix(tmp_path: Path) -> None:
    d = tmp_path / ("x" * 120)
    with pytest.raises(endpoints.RuntimeDirError, match="too long.*runtime_dir"):
        endpoints.prepare_runtime_dir(d)
    assert not d.exists()
