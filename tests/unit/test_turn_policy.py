"""The turn policy (session_worker/policy.py): every retry, resume and give-up rule of a turn, as
a table of what happened and what must follow. No process, no loop, no clock."""

from __future__ import annotations

import pytest

from session_worker import notices
from session_worker.policy import (
    MAX_ATTEMPTS,
    STOPPED,
    Decision,
    Ending,
    Fail,
    Finish,
    Requeue,
    RestartFresh,
    Run,
    TurnFacts,
    decide,
    on_api_retry,
    result_notice,
)
from wire import messages as m

E = Ending
LOST = ("Error: No conversation found with session ID: 1234",)
BAD_FLAG = ("error: unknown option '--frobnicate'",)
START_FAILURE = notices.missing_binary("claude")

CASES: list[tuple[str, TurnFacts, Decision]] = [
    # ------------------------------------------------------------- before the try
    ("first try runs", TurnFacts(E.BEFORE, attempt=1), Run()),
    ("last allowed try runs", TurnFacts(E.BEFORE, attempt=MAX_ATTEMPTS), Run()),
    (
        "one try too many is skipped",
        TurnFacts(E.BEFORE, attempt=MAX_ATTEMPTS + 1),
        Fail("error_attempts", notices.too_many_attempts(MAX_ATTEMPTS)),
    ),
    (
        "far too many tries name how many were made",
        TurnFacts(E.BEFORE, attempt=9),
        Fail("error_attempts", notices.too_many_attempts(8)),
    ),
    # ------------------------------------------------------------- the CLI would not start
    (
        "a CLI that cannot start fails the turn with the reason",
        TurnFacts(E.NO_CLI, attempt=1, start_failure=START_FAILURE),
        Fail("error_cli_start", START_FAILURE),
    ),
    (
        "no CLI while shutting down: the message waits",
        TurnFacts(E.NO_CLI, attempt=1, shutting_down=True),
        Requeue(),
    ),
    # ------------------------------------------------------------- a user's stop
    (
        "a user's stop that the interrupt answered: not run again, a Retry offered",
        TurnFacts(E.RESULT, attempt=1, shutting_down=True, user_stop=True, cancel_requested=True,
                  result_subtype="error_during_execution", message_text="count to ten"),
        Fail(STOPPED, notices.stopped_by_user("count to ten"), "warning", retry=True),
    ),
    (
        "a user's stop that killed the CLI: not run again either",
        TurnFacts(E.EXITED, attempt=1, shutting_down=True, user_stop=True, rc=-15,
                  message_text="count to ten"),
        Fail(STOPPED, notices.stopped_by_user("count to ten"), "warning", retry=True),
    ),
    (
        "a user's stop before the CLI was up",
        TurnFacts(E.NO_CLI, attempt=2, shutting_down=True, user_stop=True, message_text="hi"),
        Fail(STOPPED, notices.stopped_by_user("hi"), "warning", retry=True),
    ),
    (
        "a stop that is not the user's (a shutdown): the message waits, as before",
        TurnFacts(E.EXITED, attempt=1, shutting_down=True, rc=-15, message_text="hi"),
        Requeue(),
    ),
    (
        "the attempt limit still comes first at the next start",
        TurnFacts(E.BEFORE, attempt=MAX_ATTEMPTS + 1, user_stop=True),
        Fail("error_attempts", notices.too_many_attempts(MAX_ATTEMPTS)),
    ),
    # ------------------------------------------------------------- a result arrived
    ("a result finishes the turn", TurnFacts(E.RESULT, attempt=1, result_subtype="success"),
     Finish()),
    (
        "an error result of a warm CLI still finishes the turn",
        TurnFacts(E.RESULT, attempt=1, result_subtype="error_during_execution"),
        Finish(),
    ),
    (
        "a resumed CLI that fails before init lost the conversation",
        TurnFacts(E.RESULT, attempt=1, resumed=True, result_subtype="error_during_execution"),
        RestartFresh(notices.resume_lost()),
    ),
    (
        "a resumed CLI that said init did resume",
        TurnFacts(E.RESULT, attempt=1, resumed=True, init_seen=True,
                  result_subtype="error_during_execution"),
        Finish(),
    ),
    (
        "a resumed CLI's failure after some turns is an ordinary error",
        TurnFacts(E.RESULT, attempt=1, resumed=True, result_subtype="error_during_execution",
                  result_num_turns=1),
        Finish(),
    ),
    (
        "a resumed CLI's success before init is a success",
        TurnFacts(E.RESULT, attempt=1, resumed=True, result_subtype="success"),
        Finish(),
    ),
    (
        "a CLI that was not resumed cannot lose a conversation",
        TurnFacts(E.RESULT, attempt=1, result_subtype="error_during_execution"),
        Finish(),
    ),
    # ------------------------------------------------------------- the CLI hung
    (
        "a hung CLI fails the turn with the limit",
        TurnFacts(E.HUNG, attempt=1, hang_seconds=2.5),
        Fail("error_hang", notices.hung(2.5)),
    ),
    # ------------------------------------------------------------- the CLI exited in the turn
    (
        "shutting down: the message waits for the restart",
        TurnFacts(E.EXITED, attempt=MAX_ATTEMPTS, shutting_down=True, rc=-15,
                  cancel_requested=True),
        Requeue(),
    ),
    (
        "killed after an interrupt that was not answered",
        TurnFacts(E.EXITED, attempt=1, cancel_requested=True, rc=-9, had_output=True),
        Fail("error_interrupt_forced", notices.interrupt_forced(), "warning"),
    ),
    (
        "the interrupt rule comes before the exit-at-start rule",
        TurnFacts(E.EXITED, attempt=1, cancel_requested=True, rc=1),
        Fail("error_interrupt_forced", notices.interrupt_forced(), "warning"),
    ),
    (
        "a resumed CLI that exits with 'No conversation found': start a new one",
        TurnFacts(E.EXITED, attempt=1, resumed=True, rc=1, stderr_tail=LOST),
        RestartFresh(notices.resume_lost()),
    ),
    (
        "'No conversation found' from a CLI that was not resumed is an exit at start",
        TurnFacts(E.EXITED, attempt=1, rc=1, stderr_tail=LOST),
        Fail("error_cli_exit", notices.exited_at_start(1, list(LOST))),
    ),
    (
        "an exit code at start, without output, fails with the stderr line",
        TurnFacts(E.EXITED, attempt=1, rc=2, stderr_tail=BAD_FLAG),
        Fail("error_cli_exit", notices.exited_at_start(2, list(BAD_FLAG))),
    ),
    (
        "an exit at start is not retried on the first try",
        TurnFacts(E.EXITED, attempt=1, resumed=True, rc=1, stderr_tail=BAD_FLAG),
        Fail("error_cli_exit", notices.exited_at_start(1, list(BAD_FLAG))),
    ),
    (
        "killed by a signal before any output is a crash, retried",
        TurnFacts(E.EXITED, attempt=1, rc=-9),
        Requeue(notices.crashed_retrying(-9)),
    ),
    (
        "exit code 0 without output is a crash, retried",
        TurnFacts(E.EXITED, attempt=1, rc=0),
        Requeue(notices.crashed_retrying(0)),
    ),
    (
        "an unknown exit status is a crash, retried",
        TurnFacts(E.EXITED, attempt=1, rc=None),
        Requeue(notices.crashed_retrying(None)),
    ),
    (
        "a crash after output is retried",
        TurnFacts(E.EXITED, attempt=MAX_ATTEMPTS - 1, rc=1, had_output=True, stderr_tail=LOST),
        Requeue(notices.crashed_retrying(1)),
    ),
    (
        "a crash on the last try gives up",
        TurnFacts(E.EXITED, attempt=MAX_ATTEMPTS, rc=-9, had_output=True),
        Fail("error_cli_crash", notices.crashed_giving_up(-9, MAX_ATTEMPTS)),
    ),
]


@pytest.mark.parametrize("facts, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_decide(facts: TurnFacts, expected: Decision) -> None:
    assert decide(facts) == expected


def test_every_ending_has_a_case() -> None:
    assert {c[1].ending for c in CASES} == set(Ending)


def test_every_subtype_is_named_once() -> None:
    subtypes = {c[2].subtype for c in CASES if isinstance(c[2], Fail)}
    assert subtypes == {
        "error_attempts",
        "error_cli_start",
        "error_hang",
        "error_interrupt_forced",
        "error_cli_exit",
        "error_cli_crash",
        STOPPED,
    }


@pytest.mark.parametrize(
    "result, expected",
    [
        (m.TurnResult(subtype="success", text="hi"), None),
        (m.TurnResult(subtype="error_during_execution", is_error=True, text="x"), None),
        (
            m.TurnResult(subtype="success", is_error=True, text="Invalid API key",
                         api_error_status=401),
            notices.api_error(401, "Invalid API key"),
        ),
        (
            m.TurnResult(subtype="success", is_error=True, text="boom"),
            notices.api_error(None, "boom"),
        ),
        (
            m.TurnResult(subtype="error_max_turns", is_error=True, text="x", api_error_status=529),
            notices.api_error(529, "x"),
        ),
    ],
)
def test_result_notice(result: m.TurnResult, expected: str | None) -> None:
    assert result_notice(result) == expected


@pytest.mark.parametrize(
    "status, most, noticed, expected",
    [
        (401, 10, False, ("error", notices.api_error(401, ""), True)),
        (403, 10, False, ("error", notices.api_error(403, ""), True)),
        (429, 10, False, ("info", notices.api_retrying(429, 10), False)),
        (529, 0, False, ("info", notices.api_retrying(529, 0), False)),
        (None, 3, False, ("info", notices.api_retrying(None, 3), False)),
        (401, 10, True, None),
        (529, 10, True, None),
    ],
)
def test_api_retry(
    status: int | None, most: int, noticed: bool, expected: tuple[str, str, bool] | None
) -> None:
    got = on_api_retry(status, most, noticed)
    assert (None if got is None else (got.level, got.sentence, got.interrupt)) == expected


@pytest.mark.parametrize(
    ("text", "sentence"),
    [
        ("hi", 'Your message "hi" was not finished because the session was stopped.'),
        ("a" * 40, f'Your message "{"a" * 40}" was not finished because the session was stopped.'),
        ("a" * 41 + "zzz",
         f'Your message "{"a" * 40}…" was not finished because the session was stopped.'),
        ("two\nlines  here", 'Your message "two lines here" was not finished because the'
         " session was stopped."),
    ],
)
def test_stopped_sentence_names_the_first_40_characters(text: str, sentence: str) -> None:
    assert notices.stopped_by_user(text) == sentence
