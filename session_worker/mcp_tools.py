"""Switchboard's own MCP server, served by the worker inside the CLI's control channel.

The CLI is started with `--mcp-config` naming one server of type `sdk` (`SERVER`): it has no
process of its own. The CLI speaks MCP's JSON-RPC to it through `mcp_message` control requests
on stdout, and the worker answers each in a control_response on stdin (`{"mcp_response": ...}`).
`McpServer.handle` is that JSON-RPC server: initialize, ping, tools/list and tools/call, with one
tool, `send_file(path, caption)`, whose work is the injected `SendFile` (the worker checks the
path with session_worker.outfiles and emits a FileOut event). The tool is pre-approved
(`ALLOWED`, given to `--allowedTools`): it sends only files of the session's own folders to the
owner's own chat, which `/get` can do as well, so a prompt for it would ask nothing.

It must never raise on a message (the CLI's requests are untrusted) and never answer a
notification.
"""
from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

SERVER = "switchboard"
TOOL = "send_file"
ALLOWED = f"mcp__{SERVER}__{TOOL}"
PROTOCOL = "2025-06-18"
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602


def mcp_config() -> str:
    """The `--mcp-config` value: our one in-process server. `alwaysLoad`: its tool goes with
    its schema in every request, not behind the CLI's tool search, so Claude knows it can send
    a file without looking for a way first."""
    return json.dumps({"mcpServers": {SERVER: {"type": "sdk", "name": SERVER,
                                               "alwaysLoad": True}}})


TOOLS: list[dict[str, Any]] = [{
    "name": TOOL,
    "description": (
        "Send a file to the user's Telegram chat: an image (jpg, png, webp) as a photo, anything"
        " else as a document. Only files inside the session's working directory or its uploads"
        " folder can be sent, up to 50 MB."),
    "inputSchema": {
        "type": "object",
        "properties": {
            "path": {"type": "string",
                     "description": "The file, relative to the working directory or absolute."},
            "caption": {"type": "string",
                        "description": "Optional text shown under the file (up to 1024 chars)."},
        },
        "required": ["path"],
    },
}]

# (path, caption) -> None when the file is on its way, else the sentence that refuses it.
SendFile = Callable[[str, str], Awaitable[str | None]]


class McpServer:
    def __init__(self, send_file: SendFile) -> None:
        self._send_file = send_file

    async def handle(self, message: Any) -> dict[str, Any] | None:
        """One JSON-RPC message from the CLI; the response, or None for a notification."""
        if not isinstance(message, dict) or "id" not in message:
            return None
        rid = message.get("id")
        method = message.get("method")
        params = message.get("params")
        params = params if isinstance(params, dict) else {}
        if method == "initialize":
            version = params.get("protocolVersion")
            return _result(rid, {
                "protocolVersion": version if isinstance(version, str) else PROTOCOL,
                "capabilities": {"tools": {}},
                "serverInfo": {"name": SERVER, "version": "1.0.0"},
            })
        if method == "ping":
            return _result(rid, {})
        if method == "tools/list":
            return _result(rid, {"tools": TOOLS})
        if method == "tools/call":
            return await self._call(rid, params)
        return _error(rid, METHOD_NOT_FOUND, f"{method} is not supported by {SERVER}")

    async def _call(self, rid: Any, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("name") != TOOL:
            return _error(rid, INVALID_PARAMS, f"unknown tool {params.get('name')!r}")
        args = params.get("arguments")
        args = args if isinstance(args, dict) else {}
        path, caption = args.get("path"), args.get("caption", "")
        if not isinstance(path, str) or not isinstance(caption, str):
            return _tool_text(rid, "send_file takes a path (a string) and an optional caption"
                              " (a string).", error=True)
        refused = await self._send_file(path, caption[:1024])
        if refused is not None:
            return _tool_text(rid, refused, error=True)
        return _tool_text(rid, f"Sent {path} to the user's chat.")


def _result(rid: Any, result: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rid, "result": result}


def _error(rid: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rid, "error": {"code": code, "message": message}}


def _tool_text(rid: Any, text: str, *, error: bool = False) -> dict[str, Any]:
    return _result(rid, {"content": [{"type": "text", "text": text}], "isError": error})
