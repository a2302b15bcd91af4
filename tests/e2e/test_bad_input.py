"""Bad input from every side ends in a clear error and a stack that keeps serving.

Garbage on each socket, a 50 MB line and non-UTF-8 bytes from the CLI, a CLI that is not there,
a rejected API key, configs with each kind of mistake, and session names that are not names.
Every test acts as the user (sandbox Telegram) or at the terminal (`switchboard`,
`switchboardctl`); the fixtures prove on teardown that no process of the stack is left.
"""
from __future__ import annotations

import base64
import gzip
import os
import re
import socket
from pathlib import Path
from typing import Any

import msgspec
import pytest
import zmq
from conftest import unique

from tests.support import standin_cli
from tests.support.chat import ask, bot_messages, last_id, message_text, new_session, wait_text
from tests.support.config import render_config
from tests.support.stack import OWNER, Stack
from tests.support.waits import wait_until
from wire import auth

pytestmark = pytest.mark.timeout(180)


def one_sentence(text: str) -> bool:
    """One short sentence-like reply: no traceback, not a wall of text."""
    return 0 < len(text) <= 400 and "Traceback" not in text


def pids(stack: Stack) -> dict[str, int]:
    return {r["name"]: r["pid"] for r in stack.status() if r["state"] == "RUNNING"}


# ---------------------------------------------------------------------- sockets


GARBAGE: list[list[bytes]] = [
    [b""],
    [b"\x00"],
    [b"\xff" * 64],
    [os.urandom(4096)],
    [b"not msgpack at all"],
    [msgspec.msgpack.encode({"t": "NoSuchMessage", "id": "x"})],
    [msgspec.msgpack.encode({"t": "Status", "id": 12345, "names": "all"})],
    [msgspec.msgpack.encode({"t": "UserTurn", "id": "x", "key": 7, "chat_id": "nope"})],
    [msgspec.msgpack.encode([1, 2, 3])],
    [msgspec.msgpack.encode({"id": "no-tag"})],
    [b"\x92\xa1t"],  # truncated msgpack
    [b"a", b"b", b"c", os.urandom(100)],  # more frames than expected
    [os.urandom(3 * 1024 * 1024)],  # a big junk frame
]


def zmq_garbage(endpoint: str, kind: int, identity: bytes | None = None,
                keys: auth.ClientKeys | None = None) -> None:
    """Garbage from a peer without a key (it never completes a handshake: a frame that finds no
    pipe is dropped, since a DEALER with no peer would block its sender forever), or with `keys`
    that complete one (its frames do reach the server). Nothing here can block: every send has
    a deadline, and the context is destroyed, which closes a socket a failed send left open."""
    ctx = zmq.Context()
    try:
        sock = ctx.socket(kind)
        sock.setsockopt(zmq.LINGER, 2000 if keys is not None else 0)
        sock.setsockopt(zmq.SNDTIMEO, 5000 if keys is not None else 0)
        if keys is not None:
            auth.as_client(sock, keys)
        if identity is not None:
            sock.setsockopt(zmq.IDENTITY, identity)
        sock.connect(endpoint)
        if kind == zmq.SUB:
            for topic in (b"", os.urandom(300), b"\xff\xfe"):
                sock.setsockopt(zmq.SUBSCRIBE, topic)
            sock.setsockopt(zmq.UNSUBSCRIBE, b"nothing")
        else:
            for frames in GARBAGE:
                try:
                    sock.send_multipart(frames)
                except zmq.Again:
                    pass  # no pipe to the server (a keyless peer's never is): dropped
        sock.close()  # with LINGER set, destroy() below waits until the frames have left
    finally:
        ctx.destroy(linger=2000 if keys is not None else 0)


def raw_garbage(path: Path) -> None:
    """Bytes that are not even ZMTP, straight into the unix socket."""
    for payload in (b"\xff" * 10 + b"\x7f", b"GET / HTTP/1.1\r\n\r\n", os.urandom(65536), b""):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.settimeout(2)
            s.connect(str(path))
            if payload:
                s.sendall(payload)
        except OSError:
            pass
        finally:
            s.close()


def test_garbage_on_every_socket_changes_nothing(stack: Stack, tg: Any) -> None:
    name = unique("g")
    new_session(tg, OWNER, name)
    ask(tg, OWNER, "before garbage tok-g0")
    before = pids(stack)
    run = stack.runtime_dir
    sockets = sorted(p.name for p in run.iterdir())
    assert {"control.sock", "chat.sock", "events.sock"} <= set(sockets), sockets

    for sock in ("control.sock", "chat.sock", "events.sock"):
        raw_garbage(run / sock)
    ep = {s: f"ipc://{run / s}" for s in ("control.sock", "chat.sock", "events.sock")}
    zmq_garbage(ep["control.sock"], zmq.DEALER)
    zmq_garbage(ep["chat.sock"], zmq.DEALER)
    zmq_garbage(ep["chat.sock"], zmq.DEALER, identity=b"../../etc")
    zmq_garbage(ep["events.sock"], zmq.SUB)
    zmq_garbage(ep["events.sock"], zmq.XSUB)
    zmq_garbage(ep["events.sock"], zmq.DEALER)  # wrong socket type: the handshake fails
    # The same with keys that complete the handshake: the owner's on control and events, and
    # on chat a key of its own for the right server (let in, taken for no session).
    owner = auth.load_owner_keys(run)
    chat_keys = auth.ClientKeys(auth.chat_server_keys(bytes.fromhex(owner.chat_root)).public,
                                auth.new_keypair())
    zmq_garbage(ep["control.sock"], zmq.DEALER, keys=owner.control)
    zmq_garbage(ep["chat.sock"], zmq.DEALER, identity=f"{name}/x".encode(), keys=chat_keys)
    zmq_garbage(ep["events.sock"], zmq.SUB, keys=owner.control)

    # Still serving: the same processes, answering both the terminal and the chat.
    ask(tg, OWNER, "after garbage tok-g1")
    assert pids(stack) == before
    new_session(tg, OWNER, unique("g2"))
    ask(tg, OWNER, "a new session after garbage tok-g2")
    assert stack.proc is not None and stack.proc.poll() is None


def test_garbage_under_a_stolen_identity_is_recovered_from(stack: Stack, tg: Any) -> None:
    """A peer on the sockets that claims the bot's or a session's routing id, with no key: the
    sockets are CURVE with a ZAP check, so it never completes a handshake, takes no route (there
    is no ROUTER_HANDOVER) and the stack carries on: nothing is lost."""
    name = unique("id")
    new_session(tg, OWNER, name)
    ask(tg, OWNER, "before identity theft tok-i0")
    run = stack.runtime_dir
    zmq_garbage(f"ipc://{run / 'control.sock'}", zmq.DEALER, identity=b"bot")
    zmq_garbage(f"ipc://{run / 'control.sock'}", zmq.DEALER, identity=f"session:{name}".encode())
    zmq_garbage(f"ipc://{run / 'chat.sock'}", zmq.DEALER, identity=name.encode())
    ask(tg, OWNER, "after identity theft tok-i1", timeout=90)
    ask(tg, OWNER, "and once more tok-i2", timeout=60)
    stack.wait_state("bot")
    stack.wait_state(f"session:{name}")


# ---------------------------------------------------------------------- what the CLI writes


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_a_50_mb_line_from_the_cli_arrives_and_the_stack_keeps_serving(
        make_stack: Any, tg: Any) -> None:
    # The default heartbeat timeout (15 s), as a user has it.
    make_stack(claude_cfg={"hang_timeout_seconds": 300},
               supervisor={"heartbeat_timeout_seconds": 15.0})
    new_session(tg, OWNER, unique("big"))
    after = last_id(tg, OWNER)
    size = 50_000_000
    tg.send(OWNER, f"huge answer please #sb:size={size}")

    def arrived() -> bool:
        mine = [m for m in tg.chat(OWNER, content=False) if m.get("from_bot")
                and m["message_id"] > after]
        return any(m.get("document") for m in mine)
    try:
        wait_until(arrived, 120, "the 50 MB answer as a file", step=1.0)
    except AssertionError as exc:
        mine = [m for m in tg.chat(OWNER, content=False) if m.get("from_bot")
                and m["message_id"] > after]
        chars = sum(len(message_text(m)) for m in mine)
        raise AssertionError(f"{exc}: the bot sent {len(mine)} messages instead, "
                             f"{chars} characters in all") from None
    mine = [m for m in tg.chat(OWNER) if m.get("from_bot") and m["message_id"] > after]
    (doc,) = [m["document"] for m in mine if m.get("document")]
    data = base64.b64decode(doc["content_b64"])
    if doc["file_name"].endswith(".gz"):
        data = gzip.decompress(data)
    assert len(data) == size and data.endswith(b"END")
    # No flood: one preview message (and the short notices of the turn), not thousands.
    assert len([m for m in mine if message_text(m)]) <= 3
    ask(tg, OWNER, "still there after 50 MB tok-b1", timeout=90)


def test_non_utf8_output_from_the_cli_is_survived(make_stack: Any, tg: Any) -> None:
    stack = make_stack(start=False)
    stack.sections["claude"]["binary"] = standin_cli.install(stack.tmp, standin_cli.BADLINE)
    stack.write_config()
    stack.start()
    new_session(tg, OWNER, unique("u8"))
    # A line of raw invalid bytes before the answer: skipped, the answer arrives.
    ask(tg, OWNER, "bytes please tok-u1")
    # A JSON line with one bad byte inside a string: one sentence says so, the turn ends.
    after = last_id(tg, OWNER)
    tg.send(OWNER, "poison tok-u2")
    warning = wait_text(tg, OWNER, r"UTF-8", timeout=30, after=after)
    assert one_sentence(message_text(warning)), message_text(warning)
    ask(tg, OWNER, "and again tok-u3")
    assert all(r["state"] == "RUNNING" for r in stack.status())


# ---------------------------------------------------------------------- a CLI that cannot run


def test_missing_cli_binary_is_one_sentence_and_the_stack_keeps_serving(
        make_stack: Any, tg: Any) -> None:
    stack = make_stack(start=False)
    stack.sections["claude"]["binary"] = str(stack.tmp / "no-such-dir" / "claude")
    stack.write_config()
    stack.start()
    name = unique("nocli")
    new_session(tg, OWNER, name)
    after = last_id(tg, OWNER)
    tg.send(OWNER, "hello tok-m1")
    msg = wait_text(tg, OWNER, r"(?i)claude|cli|binary", timeout=30, after=after)
    text = message_text(msg)
    assert one_sentence(text), text
    assert "no-such-dir" in text or "binary" in text.lower(), text
    # The stack keeps serving: the terminal and the chat both answer, nothing crashed.
    after = last_id(tg, OWNER)
    tg.send(OWNER, "/sessions")
    wait_text(tg, OWNER, re.escape(name), timeout=30, after=after)
    rows = {r["name"]: r["state"] for r in stack.status()}
    assert rows == {"bot": "RUNNING", f"session:{name}": "RUNNING"}, rows
    after = last_id(tg, OWNER)
    tg.send(OWNER, "hello again tok-m2")
    wait_text(tg, OWNER, r"(?i)claude|cli|binary", timeout=30, after=after)


def test_rejected_api_key_is_one_sentence_and_the_next_message_works(
        make_stack: Any, tg: Any, model: Any) -> None:
    stack = make_stack(start=False)
    # Without this the CLI retries a 401 with backoff for a long while before giving up.
    stack.sections["claude"]["env"]["CLAUDE_CODE_MAX_RETRIES"] = "0"
    stack.write_config()
    stack.start()
    new_session(tg, OWNER, unique("key"))
    ask(tg, OWNER, "warm up tok-k0")
    after = last_id(tg, OWNER)
    model.script(error=401)  # the next model request is refused: the key was rejected
    tg.send(OWNER, "who am I tok-k1")
    msg = wait_text(tg, OWNER, r"(?i)api key", timeout=60, after=after)
    assert one_sentence(message_text(msg)), message_text(msg)
    # The key is fine again: the next message is answered (the CLI may carry the refused text
    # along in the same user turn, so match the new token only).
    after = last_id(tg, OWNER)
    tg.send(OWNER, "fine now tok-k2")
    wait_text(tg, OWNER, r"(?s)echo: .*tok-k2", timeout=60, after=after)


# ---------------------------------------------------------------------- configs


def _mistakes(stack: Stack) -> list[tuple[str, str, str]]:
    """(what, config text, the field the error must name)."""
    top, sec = stack.top, stack.sections

    def cfg(**changes: Any) -> str:
        sections = {k: dict(v) for k, v in sec.items()}
        t = dict(top)
        for key, value in changes.items():
            section, _, field = key.partition("__")
            if field:
                sections[section][field] = value
            else:
                t[section] = value
        return render_config(t, sections)

    long_dir = "/tmp/" + "d" * 120
    return [
        ("not TOML", cfg() + "this is = = not toml\n", "TOML"),
        ("unknown top-level field", cfg(stat_dir="/tmp/x"), "stat_dir"),
        ("unknown section field", cfg(telegram__allowed_users=[1]), "telegram.allowed_users"),
        ("wrong type", cfg(supervisor__startsecs="fast"), "supervisor.startsecs"),
        ("wrong type in a list", cfg(telegram__allowed_user_ids=["me"]),
         "telegram.allowed_user_ids"),
        ("out of range", cfg(telegram__poll_timeout_seconds=500), "telegram.poll_timeout_seconds"),
        ("negative", cfg(supervisor__startretries=-1), "supervisor.startretries"),
        ("bad url", cfg(telegram__api_base_url="ftp://example"), "telegram.api_base_url"),
        ("bad user id", cfg(telegram__allowed_user_ids=[-5]), "telegram.allowed_user_ids"),
        ("empty path", cfg(state_dir=""), "state_dir"),
        ("runtime dir too long", cfg(runtime_dir=long_dir), "runtime_dir"),
        ("section not a table", render_config({**top, "claude": 5},
                                              {k: v for k, v in sec.items() if k != "claude"}),
         "claude"),
        ("unknown persona", cfg(claude__default_persona="no-such-persona"),
         "claude.default_persona"),
    ]


def test_each_kind_of_config_mistake_names_its_field(make_stack: Any) -> None:
    stack = make_stack(start=False)
    cases = _mistakes(stack)
    failures = []
    for i, (what, text, field) in enumerate(cases):
        path = stack.write_config(text, stack.tmp / f"bad-{i}.toml")
        res = stack.switchboard("check-config", config=path, timeout=30)
        said = res.stdout + res.stderr
        if res.returncode == 0 or field not in said:
            failures.append(f"{what}: `switchboard check-config` rc={res.returncode}, "
                            f"expected the field {field!r} in: {said.strip()[:300]!r}")
        rc, said = stack.run_briefly(path)
        if rc is None:
            failures.append(f"{what}: `switchboard run` accepted it and kept running: "
                            f"{said.strip()[-300:]!r}")
        elif rc == 0 or field not in said:
            failures.append(f"{what}: `switchboard run` rc={rc}, "
                            f"expected the field {field!r} in: {said.strip()[:300]!r}")
    missing_token = stack.env()
    missing_token.pop("SB_E2E_BOT_TOKEN")
    rc, said = stack.run_briefly(stack.config, env=missing_token)
    if rc in (0, None) or "telegram.token_env" not in said:
        failures.append(f"missing token: `switchboard run` rc={rc} {said.strip()[:300]!r}")
    assert not failures, "\n".join(failures)


# ---------------------------------------------------------------------- names


BAD_NAMES = ["../x", "a" * 200, "x/y", ".hidden", "UPPER", "-dash", "emoji-\U0001f600"]


def test_bad_session_names_are_refused_in_the_chat_and_at_the_terminal(
        stack: Stack, tg: Any) -> None:
    sessions = stack.state_dir / "sessions"
    before = set(os.listdir(sessions)) if sessions.exists() else set()
    procs_before = {p.pid for p in stack.tagged()}
    for bad in BAD_NAMES:
        after = last_id(tg, OWNER)
        tg.send(OWNER, f"/new {bad}")
        msg = wait_text(tg, OWNER, r"(?i)not a valid session name|usage", timeout=20, after=after)
        assert one_sentence(message_text(msg)), message_text(msg)
        res = stack.ctl("new", "--", bad)
        said = res.stdout + res.stderr
        assert res.returncode != 0, (bad, said)
        assert "not a valid session name" in said, (bad, said)
        assert "Traceback" not in said, said
    # Exactly one answer per refusal, and nothing made on disk or in the process table.
    replies = [m for m in bot_messages(tg, OWNER)]
    assert len(replies) == len(BAD_NAMES), [message_text(m) for m in replies]
    now = set(os.listdir(sessions)) if sessions.exists() else set()
    assert now == before
    assert not list(stack.state_dir.rglob("x")), list(stack.state_dir.rglob("x"))
    assert not (stack.state_dir.parent / "x").exists()
    assert {r["name"] for r in stack.status()} == {"bot"}
    wait_until(lambda: {p.pid for p in stack.tagged()} <= procs_before, 10,
               "no new process after refused names", step=0.05)
