"""The one codec: msgpack via msgspec, validated against a tagged union on decode.

`decode` never raises: garbage, truncated frames, unknown message types and wrong field types
all come back as a `DecodeError` value that says what was wrong, so a hostile or broken peer
costs one log line and an error reply, never a crashed process.
"""
from __future__ import annotations

from typing import Any, Generic, TypeVar

import msgspec

from wire import messages as m

T = TypeVar("T")

# The biggest frame we accept: a 50 MB answer line must fit, with room to spare.
MAX_FRAME = 256 * 1024 * 1024
_PREVIEW = 48

_encoder = msgspec.msgpack.Encoder()


class DecodeError(msgspec.Struct, frozen=True):
    """A frame that could not be decoded. `reason` is one sentence for the log or the peer."""

    reason: str


def encode(msg: m.Msg) -> bytes:
    return _encoder.encode(msg)


class Decoder(Generic[T]):
    """Decode frames into one union of message types; errors come back as DecodeError."""

    def __init__(self, union: Any, max_frame: int = MAX_FRAME) -> None:
        self._decoder: msgspec.msgpack.Decoder[Any] = msgspec.msgpack.Decoder(union)
        self._max = max_frame

    def decode(self, frame: bytes | memoryview) -> T | DecodeError:
        size = len(frame)
        if size > self._max:
            return DecodeError(f"frame of {size} bytes is over the {self._max}-byte limit")
        if size == 0:
            return DecodeError("empty frame")
        try:
            return self._decoder.decode(frame)  # type: ignore[no-any-return]
        except msgspec.ValidationError as exc:
            return DecodeError(f"invalid message: {exc}")
        except msgspec.DecodeError as exc:
            return DecodeError(f"malformed frame ({exc}): {bytes(frame[:_PREVIEW])!r}")
        except Exception as exc:  # noqa: BLE001 - the codec must never raise past itself
            return DecodeError(f"undecodable frame ({type(exc).__name__}: {exc})")


control_requests: Decoder[m.ControlRequest] = Decoder(m.ControlRequest)
control_replies: Decoder[m.ControlReply] = Decoder(m.ControlReply)
to_worker: Decoder[m.ChatToWorker] = Decoder(m.ChatToWorker)
to_bot: Decoder[m.ChatToBot] = Decoder(m.ChatToBot)
events: Decoder[m.StateChange] = Decoder(m.StateChange)
any_message: Decoder[m.Message] = Decoder(m.Message)


def decode(frame: bytes | memoryview) -> m.Message | DecodeError:
    """Decode any wire message."""
    return any_message.decode(frame)


def error_reply(req_id: str, code: str, message: str) -> bytes:
    return encode(m.Error(id=req_id, code=code, message=message))


def request_id_of(frame: bytes) -> str:
    """Best effort: the `id` of a frame that failed validation, so the error reply can echo it."""
    try:
        raw = msgspec.msgpack.decode(frame)
    except Exception:  # noqa: BLE001
        return ""
    if isinstance(raw, dict):
        rid = raw.get("id")
        if isinstance(rid, str):
            return rid
    return ""
