"""A sandbox OpenAI-compatible transcription endpoint, served by the model sandbox
(sandbox.model_api) next to the Messages API.

    POST /v1/audio/transcriptions   multipart: file (required), model (required),
                                    response_format (json, the default, or text)
    GET  /_sandbox/transcriptions   every recorded request (model, filename, content_type, size,
                                    sha256, authorization: the header as it came, or null)

The transcript is derived from the audio bytes, so a test knows it in advance: bytes that are
UTF-8 text are their own transcript (so a "recording" can carry `#sb:` directives on to the
model), anything else is ``audio of N bytes, sha256 XXXXXXXX``. Faults, written into the bytes
and removed from the transcript: ``#stt:error=STATUS`` answers that status with OpenAI's error
shape, ``#stt:slow=MS`` waits first. Like a local whisper server it needs no key (the
Authorization header is recorded, so a test can see that the configured key arrived).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from typing import Any

_FAULT = re.compile(r"#stt:(error|slow)=(\d+)")
ERROR_MESSAGES = {
    400: "Invalid file format.",
    401: "Incorrect API key provided.",
    413: "Maximum content size limit exceeded.",
    429: "Rate limit reached for requests.",
    500: "The server had an error while processing your request.",
    503: "The engine is currently overloaded, please try again later.",
}


def openai_error(status: int, message: str | None = None, param: str | None = None) -> Any:
    """OpenAI's error body: {"error": {"message", "type", "param", "code"}}."""
    etype = "invalid_request_error" if 400 <= status < 500 else "server_error"
    return {"error": {"message": message or ERROR_MESSAGES.get(status, "Error"), "type": etype,
                      "param": param, "code": None}}


def transcript(data: bytes) -> tuple[str, dict[str, int]]:
    """The transcript of these bytes and the faults written into them."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = ""
    if not text or not text.replace("\n", " ").replace("\t", " ").isprintable():
        return f"audio of {len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()[:8]}", {}
    faults = {m.group(1): int(m.group(2)) for m in _FAULT.finditer(text)}
    return " ".join(_FAULT.sub(" ", text).split()), faults


class Transcriptions:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def add_routes(self, app: Any) -> None:
        app.router.add_post("/v1/audio/transcriptions", self.transcribe)
        app.router.add_get("/_sandbox/transcriptions", self.recorded)

    async def recorded(self, request: Any) -> Any:
        from aiohttp import web

        return web.json_response(self.records)

    async def transcribe(self, request: Any) -> Any:
        from aiohttp import web

        if not request.content_type.startswith("multipart/"):
            return web.json_response(openai_error(
                400, "The request must be multipart/form-data with a file and a model."),
                status=400)
        fields: dict[str, Any] = {}
        reader = await request.multipart()
        async for part in reader:
            if part.name == "file":
                fields["file"] = (part.filename, part.headers.get("Content-Type"),
                                  bytes(await part.read()))
            elif part.name:
                fields[part.name] = await part.text()
        if "file" not in fields:
            return web.json_response(openai_error(400, "you must provide a file", "file"),
                                     status=400)
        if not fields.get("model"):
            return web.json_response(openai_error(400, "you must provide a model parameter",
                                                  "model"), status=400)
        name, ctype, data = fields["file"]
        self.records.append({
            "model": fields["model"], "filename": name, "content_type": ctype,
            "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
            "authorization": request.headers.get("Authorization"),
            "response_format": fields.get("response_format", "json"),
        })  # fmt: skip
        if not data:
            return web.json_response(openai_error(400, "The audio file is empty.", "file"),
                                     status=400)
        text, faults = transcript(data)
        if faults.get("slow"):
            await asyncio.sleep(faults["slow"] / 1000.0)
        if faults.get("error"):
            status = faults["error"]
            return web.json_response(openai_error(status), status=status)
        if fields.get("response_format") == "text":
            return web.Response(text=text)
        return web.json_response({"text": text})
