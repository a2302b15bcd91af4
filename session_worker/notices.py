"""The one-sentence messages a user sees when something went wrong, and what to do about it.

Pure functions: every sentence names the problem and the fix, and none carries a secret (stderr
is cut to its last meaningful line and API keys are masked).
"""

from __future__ import annotations

import re

from wire.exits import describe_exit

_KEY_RE = re.compile(r"(sk-[A-Za-z0-9_-]{4})[A-Za-z0-9_-]+")


def _clean(text: str, limit: int = 200) -> str:
    text = _KEY_RE.sub(r"\1…", " ".join(text.split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def exit_description(rc: int | None) -> str:
    return describe_exit(rc, status="exit code", unknown="with an unknown status")


def last_error_line(stderr_tail: list[str]) -> str:
    for line in reversed(stderr_tail):
        if line.strip():
            return _clean(line)
    return ""


def missing_binary(binary: str) -> str:
    return (
        f"The Claude CLI was not found at '{binary}': install it (npm install -g "
        "@anthropic-ai/claude-code) or set [claude] binary in switchboard.toml, then send again."
    )


def not_startable(binary: str, reason: str) -> str:
    return (
        f"The Claude CLI '{binary}' could not be started ({_clean(reason)}): check that [claude]"
        " binary in switchboard.toml is an executable you can run, then send again."
    )


def exited_at_start(rc: int | None, stderr_tail: list[str]) -> str:
    detail = last_error_line(stderr_tail)
    why = f": {detail}" if detail else ""
    return (
        f"Claude exited at start ({exit_description(rc)}){why}. Check the persona's settings and"
        " extra_args in switchboard.toml, then send again."
    )


def crashed_retrying(rc: int | None) -> str:
    return (f"Claude stopped in the middle of this turn ({exit_description(rc)});"
            " sending your message again.")


def crashed_giving_up(rc: int | None, attempts: int) -> str:
    return (
        f"Claude stopped {attempts} times while answering this message ({exit_description(rc)}),"
        " so it was skipped: send it again, perhaps in smaller parts."
    )


def hung(seconds: float) -> str:
    return (
        f"Claude printed nothing for {seconds:g} s, so it was stopped: send your message again"
        " and the conversation continues where it was."
    )


def interrupt_forced() -> str:
    return (
        "Claude did not answer the interrupt in time, so it was stopped; your next message"
        " continues the conversation."
    )


def resume_lost() -> str:
    return "The earlier conversation could not be found, so a new one was started."


def unreadable_line(reason: str) -> str:
    return f"Claude printed a line that could not be read ({_clean(reason, 120)}); it was skipped."


def repaired_line(reason: str) -> str:
    return (f"Claude printed a line that was not quite readable ({_clean(reason, 120)}); the"
            " characters that could not be read are shown as \ufffd.")


def api_retrying(status: int | None, max_retries: int) -> str:
    what = {429: "is rate limiting this key (429)", 529: "is overloaded (529)"}.get(
        status or 0, f"answered with an error ({status})" if status else "could not be reached")
    tries = f" up to {max_retries} times" if max_retries else ""
    return f"The model API {what}: Claude is retrying{tries}; /cancel stops waiting."


def permission_timeout(seconds: float) -> str:
    return f"No answer within {seconds:g} s, so the tool was denied."


def api_error(status: int | None, text: str) -> str:
    detail = _clean(text, 160)
    if status == 401:
        return (
            "The model API rejected the API key (401): set a valid ANTHROPIC_API_KEY in [claude]"
            " env of switchboard.toml (or log the CLI in with `claude login`), then send again."
        )
    if status == 403:
        return ("The model API refused this request (403): check the key's permissions,"
                " then send again.")
    if status == 429:
        return "The model API is rate limiting this key (429): wait a minute, then send again."
    if status == 529:
        return "The model API is overloaded (529): wait a little, then send again."
    if status is not None and status >= 500:
        return f"The model API failed ({status}): wait a little, then send again."
    if status is not None:
        return (f"The model API refused the request ({status}: {detail}):"
                " change the message and send again.")
    return f"Claude reported an error ({detail}): send again, or /cancel and rephrase."


def too_many_attempts(attempts: int) -> str:
    return (
        f"This message was tried {attempts} times without an answer, so it was skipped: send it"
        " again if you still need it."
    )


def stopped_by_user(text: str) -> str:
    """The message a user's stop cut short, named by its first 40 characters."""
    shown = " ".join(text.split())
    shown = shown if len(shown) <= 40 else shown[:40] + "…"
    return f'Your message "{shown}" was not finished because the session was stopped.'
