"""The turn policy: what to do with a user message, given what happened when it was tried.

One pure function, `decide`, holds every retry, resume and give-up rule of a turn, so the rules
can be read in one screen and tested as a table (tests/unit/test_turn_policy.py). The turn runner
(turns.py) gathers the facts, asks, and carries the decision out.

It must never do I/O, look at a clock or touch asyncio: it only reads `TurnFacts`. The sentences
are those of notices.py, so the user reads the same words whichever path ended the turn.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from session_worker import notices
from wire import messages as m

# A message whose CLI dies under it this many times is skipped: it is probably what kills it.
MAX_ATTEMPTS = 3
# What the CLI prints on stderr when --resume names a conversation it cannot load.
CONVERSATION_MISSING = "No conversation found"


class Ending(enum.Enum):
    """How far a try of the turn got."""

    BEFORE = "before"  # about to be tried: only the attempt count matters
    NO_CLI = "no_cli"  # the CLI could not be started
    RESULT = "result"  # the CLI ended the turn with a result event
    EXITED = "exited"  # the CLI exited in the middle of the turn
    HUNG = "hung"  # the CLI printed nothing for hang_timeout_seconds and was killed


@dataclass(frozen=True)
class TurnFacts:
    ending: Ending
    attempt: int  # 1 for the first try; counts tries across restarts of the worker
    cancel_requested: bool = False  # the user asked to cancel (or a rejected key ended it)
    shutting_down: bool = False  # the worker is stopping: the message waits for the next one
    user_stop: bool = False  # ... because the user stopped or restarted it: the turn is cut
    message_text: str = ""  # the user's text (named in the sentence of a user's stop)
    resumed: bool = False  # this CLI was started with --resume=<claude session id>
    init_seen: bool = False  # this CLI has printed its init event
    rc: int | None = None  # the CLI's exit code (EXITED); negative: killed by that signal
    had_output: bool = False  # the CLI printed at least one stdout line (EXITED)
    stderr_tail: tuple[str, ...] = ()  # the CLI's last stderr lines (EXITED)
    result_subtype: str = ""  # RESULT
    result_num_turns: int = 0  # RESULT
    hang_seconds: float = 0.0  # HUNG: the limit that was passed
    start_failure: str = ""  # NO_CLI: the sentence that says why and what to do


# ----------------------------------------------------------------------------- decisions


@dataclass(frozen=True)
class Run:
    """Go ahead: try the turn."""


@dataclass(frozen=True)
class Finish:
    """The CLI answered: the result ends the turn."""


@dataclass(frozen=True)
class Requeue:
    """Leave the message in the inbox and try it again (after a notice, when there is one)."""

    notice: str | None = None
    level: str = "warning"


@dataclass(frozen=True)
class Fail:
    """Give the message up: the sentence is the user's Notice and the closing TurnResult."""

    subtype: str
    sentence: str
    level: str = "error"
    retry: bool = False  # the user may want it again: the chat offers a Retry button


@dataclass(frozen=True)
class RestartFresh:
    """The resumed conversation is lost: stop this CLI, forget the Claude session id, say so,
    and try the message again in a new conversation."""

    notice: str
    level: str = "warning"


Decision = Run | Finish | Requeue | Fail | RestartFresh


STOPPED = "stopped_by_user"


def decide(f: TurnFacts) -> Decision:
    if f.ending is not Ending.BEFORE and f.user_stop:
        # Whatever the CLI did as it was stopped (answered the interrupt, exited, never
        # started): the user asked for the turn to end, so it is not run again.
        return Fail(STOPPED, notices.stopped_by_user(f.message_text), "warning", retry=True)
    if f.ending is Ending.BEFORE:
        if f.attempt > MAX_ATTEMPTS:
            return Fail("error_attempts", notices.too_many_attempts(f.attempt - 1))
        return Run()
    if f.ending is Ending.NO_CLI:
        if f.shutting_down:
            return Requeue()
        return Fail("error_cli_start", f.start_failure)
    if f.ending is Ending.RESULT:
        if resume_failed(f):
            return RestartFresh(notices.resume_lost())
        return Finish()
    if f.ending is Ending.HUNG:
        return Fail("error_hang", notices.hung(f.hang_seconds))
    return _after_exit(f)


def _after_exit(f: TurnFacts) -> Decision:
    if f.shutting_down:
        return Requeue()  # answered after the restart
    if f.cancel_requested:
        return Fail("error_interrupt_forced", notices.interrupt_forced(), "warning")
    if not f.had_output and f.rc is not None and f.rc > 0:
        if f.resumed and any(CONVERSATION_MISSING in line for line in f.stderr_tail):
            return RestartFresh(notices.resume_lost())
        return Fail("error_cli_exit", notices.exited_at_start(f.rc, list(f.stderr_tail)))
    if f.attempt < MAX_ATTEMPTS:
        return Requeue(notices.crashed_retrying(f.rc))
    return Fail("error_cli_crash", notices.crashed_giving_up(f.rc, f.attempt))


def resume_failed(f: TurnFacts) -> bool:
    """A CLI started with --resume that ends the turn before any init could not load the
    conversation (its transcript is written lazily, so a kill -9 can lose it)."""
    return (
        f.resumed
        and not f.init_seen
        and f.result_subtype == "error_during_execution"
        and f.result_num_turns == 0
    )


def result_notice(result: m.TurnResult) -> str | None:
    """The sentence a finished turn needs before its result: the API refused, or the CLI
    reported an error as a 'success'."""
    if result.api_error_status is not None or (result.is_error and result.subtype == "success"):
        return notices.api_error(result.api_error_status, result.text)
    return None


@dataclass(frozen=True)
class RetryReaction:
    """What to do when the CLI says it retries a failed API call."""

    level: str
    sentence: str
    interrupt: bool  # end the turn now: waiting will not help


def on_api_retry(
    status: int | None, max_retries: int, already_noticed: bool
) -> RetryReaction | None:
    """The CLI retries a failed API call (for minutes, by default). A rejected key will not get
    better: say so at once and end the turn. Anything else: say once why it is slow."""
    if already_noticed:
        return None
    if status in (401, 403):
        return RetryReaction("error", notices.api_error(status, ""), interrupt=True)
    return RetryReaction("info", notices.api_retrying(status, max_retries), interrupt=False)
