"""getMe: does this bot token work against this Bot API? Shared by `doctor` and `init`.

One call, one answer: the bot's username, or one sentence naming the fix. It must never print
or return the token: it only travels inside the request URL, and every sentence that could echo
it (an error naming the URL) goes through `redact`.
"""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass

GETME_TIMEOUT = 10.0


@dataclass
class TokenCheck:
    """The outcome of getMe: `username` when the token works, else `problem` (one sentence)."""

    username: str | None = None
    problem: str | None = None
    rejected: bool = False


def redact(text: str, token: str) -> str:
    return text.replace(token, "<token>") if token else text


def check_token(api_base_url: str, token: str, timeout: float = GETME_TIMEOUT) -> TokenCheck:
    """Call getMe; a rejected token or an unreachable API becomes one sentence naming the fix."""
    base = api_base_url.rstrip("/")
    url = f"{base}/bot{token}/getMe"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            body = json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        code = exc.code
        if code in (401, 404):
            return TokenCheck(
                problem=f"the token was rejected by Telegram ({code}): "
                "copy it again from @BotFather",
                rejected=True,
            )
        return TokenCheck(
            problem=f"the Telegram Bot API at {base} answered getMe with HTTP {code}: "
            "try again in a minute, or check telegram.api_base_url"
        )
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return TokenCheck(
            problem=redact(
                f"cannot reach the Telegram Bot API at {base} ({reason}): "
                "check the network connection and telegram.api_base_url",
                token,
            )
        )
    result = body.get("result") if isinstance(body, dict) else None
    if not (isinstance(body, dict) and body.get("ok") and isinstance(result, dict)):
        return TokenCheck(
            problem=f"the Telegram Bot API at {base} gave an unexpected answer to getMe: "
            "check telegram.api_base_url"
        )
    return TokenCheck(username=str(result.get("username") or result.get("first_name") or "?"))
