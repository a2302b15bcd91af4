"""Every message the roles exchange, as msgspec Structs in tagged unions.

Three planes, one codec (wire.codec):
- control: supervisor ROUTER <- DEALERs (switchboardctl, the bot, workers). Requests carry `id`;
  the reply (`Ok` or `Error`) echoes it. The supervisor also sends `Ping` to each worker over the
  same socket and expects `Pong` (heartbeat).
- chat: bot ROUTER <-> worker DEALERs whose identity is the session name. User turns go in
  (`UserTurn`, acknowledged with `Accepted` once durably stored), events come out (`Event`).
- events: supervisor PUB -> SUB; `StateChange` for every transition of every program.

Events with `seq > 0` are durable: the worker stored them in its outbox before sending, and a
`Replay(after_seq=N)` returns exactly those after N. `seq == 0` marks an ephemeral event
(streaming text deltas, typing hints) that is never stored nor replayed.

This module holds types only: no sockets, no I/O.
"""
from __future__ import annotations

import uuid

import msgspec


def new_id() -> str:
    return uuid.uuid4().hex


class Msg(msgspec.Struct, tag_field="t", tag=True, kw_only=True, forbid_unknown_fields=False):
    """Base of every wire message; the tag is the class name."""


# --------------------------------------------------------------------------- shared values


class Persona(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: str
    description: str = ""
    append_system_prompt: str = ""
    model: str | None = None
    permission_mode: str = "default"
    allowed_tools: list[str] = []
    disallowed_tools: list[str] = []
    # Claude Code's OS sandbox for the session's tools (session_worker.fence): None means on
    # where bubblewrap and socat are installed (wire.sandbox), true or false says so outright.
    sandbox: bool | None = None


class ToolProcess(msgspec.Struct, kw_only=True):
    """One process a session's tools started, for `status -l`."""

    pid: int
    name: str
    rss_bytes: int = 0


class RateWindow(msgspec.Struct, kw_only=True):
    """One subscription window the CLI reported (a rate_limit_event's rate_limit_info)."""

    window: str  # the CLI's rateLimitType: five_hour, seven_day, ...
    status: str = ""  # allowed, allowed_warning, rejected
    utilization: float | None = None  # 0..1
    resets_at: int | None = None  # epoch seconds


class ProgramStatus(msgspec.Struct, kw_only=True):
    """One row of `switchboardctl status` (and /status in the chat)."""

    name: str
    state: str
    description: str = ""
    pid: int | None = None
    uptime_seconds: float | None = None
    persona: str | None = None
    claude_pid: int | None = None
    suspended: bool = False
    rss_bytes: int = 0
    cpu_percent: float = 0.0
    cost_usd: float = 0.0
    queued: int = 0
    idle_seconds: float | None = None
    exit_code: int | None = None
    busy: bool = False
    # The processes its CLI's tools started (detached or not), from the supervisor's sweep.
    tools: list[ToolProcess] = []
    tools_rss_bytes: int = 0
    # A session's project (None: none) and the directory its CLI runs in.
    project: str | None = None
    work_dir: str | None = None
    # The session's model and last context fill, and the subscription's windows (wire.usage).
    model: str = ""
    tokens_in: int = 0
    tokens_out: int = 0
    context_percent: float | None = None
    rate_limits: list[RateWindow] = []


class ProgramResult(msgspec.Struct, kw_only=True):
    name: str
    ok: bool
    message: str = ""


class PersonaInfo(msgspec.Struct, kw_only=True):
    name: str
    description: str = ""


class WorkerStats(msgspec.Struct, kw_only=True):
    """What a worker says about itself in each Pong."""

    session: str
    claude_pid: int | None = None
    busy: bool = False
    queued: int = 0
    cost_usd: float = 0.0
    idle_seconds: float = 0.0
    claude_session_id: str | None = None
    persona: str | None = None
    last_seq: int = 0
    model: str = ""
    tokens_in: int = 0  # the last turn's
    tokens_out: int = 0
    context_percent: float | None = None
    rate_limits: list[RateWindow] = []


# --------------------------------------------------------------------------- control requests


class Status(Msg):
    id: str
    names: list[str] = []


class Start(Msg):
    id: str
    names: list[str]


class Stop(Msg):
    id: str
    names: list[str]


class Restart(Msg):
    id: str
    names: list[str]


class NewSession(Msg):
    id: str
    name: str
    persona: str | None = None
    project: str | None = None  # a configured [projects.NAME]
    work_dir: str | None = None  # any directory: the owner's (switchboardctl) only


class ListProjects(Msg):
    """The configured projects, each with its sessions."""

    id: str


class RemoveSession(Msg):
    id: str
    name: str


class SetPersona(Msg):
    """Change a session's persona; the supervisor restarts its worker with it."""

    id: str
    name: str
    persona: str


class ListPersonas(Msg):
    id: str


class EnsureRunning(Msg):
    """The user wrote to this session: start it if it is stopped, exited or FATAL."""

    id: str
    name: str


class Shutdown(Msg):
    id: str


class Version(Msg):
    id: str


class Register(Msg):
    """A child announces itself on the control socket right after it connects."""

    id: str
    program: str
    pid: int


class Ping(Msg):
    """Supervisor -> child heartbeat over the control socket. `notice`: one sentence the
    supervisor has for the session's chat (a process it killed, and why); the worker emits it
    as a Notice. It is sent again in every Ping until a Pong answers one that carried it."""

    id: str
    notice: str = ""


class Pong(Msg):
    id: str
    stats: WorkerStats | None = None
    # One sentence when the child can no longer keep its promise (its database cannot be
    # written): the supervisor restarts it as if the heartbeat had been missed.
    unhealthy: str = ""


class Reload(Msg):
    """Supervisor -> child over the control socket after a good SIGHUP: the child's settings as
    the new config makes them (its BotSettings or WorkerSettings, JSON). The child applies the
    fields it can while running and answers `Ok` (or `Error` naming what it refused)."""

    id: str
    settings_json: str


# --------------------------------------------------------------------------- replies


class StatusResult(Msg):
    programs: list[ProgramStatus]
    sweeps: int = 0  # psutil sweeps the supervisor has completed since it started


class ActionResult(Msg):
    results: list[ProgramResult]


class VersionResult(Msg):
    version: str


class PersonasResult(Msg):
    personas: list[PersonaInfo]


class ProjectInfo(msgspec.Struct, kw_only=True):
    name: str
    path: str
    persona: str | None = None
    worktrees: bool = False
    sessions: list[str] = []


class ProjectsResult(Msg):
    projects: list[ProjectInfo]


class Done(Msg):
    """An answer with nothing to say but 'done'."""


class GrantInfo(msgspec.Struct, kw_only=True):
    """One "allow for this session" grant: its id, its rule (`Bash(npm test:*)`) and what it
    covers in words (`` `npm test` commands``)."""

    id: int
    rule: str
    label: str = ""


class GrantsResult(Msg):
    grants: list[GrantInfo]


class HandoffResult(Msg):
    """What `Attach` answers: the session's CLI is suspended, and `command` (`cd DIR && claude
    --resume ID`, with CLAUDE_CONFIG_DIR when it is not the default) continues it at a terminal."""

    command: str
    claude_session_id: str
    cwd: str


class CommandResult(Msg):
    """A session command's answer: what the chat shows, one or a few lines."""

    text: str


Result = (StatusResult | ActionResult | VersionResult | PersonasResult | GrantsResult | Done
          | ProjectsResult | HandoffResult | CommandResult)


class Ok(Msg):
    id: str
    result: Result = msgspec.field(default_factory=Done)


class Error(Msg):
    """A request that could not be done. `message` is one sentence that names the fix."""

    id: str
    code: str
    message: str


# Error codes: a small closed set a client can switch on.
E_BAD_REQUEST = "bad_request"
E_UNKNOWN_NAME = "unknown_name"
E_INVALID_NAME = "invalid_name"
E_EXISTS = "exists"
E_UNKNOWN_PERSONA = "unknown_persona"
E_STATE = "bad_state"
E_INTERNAL = "internal"
E_UNAVAILABLE = "unavailable"


# --------------------------------------------------------------------------- chat: bot -> worker


class UserTurn(Msg):
    """A user message for a session. `key` is unique per Telegram message; a resend is ignored."""

    id: str
    key: str
    chat_id: int
    text: str
    message_id: int | None = None
    attachments: list[str] = []
    # Photos among the attachments: sent to Claude as image content, not only as a path.
    images: list[str] = []


class Accepted(Msg):
    """The worker stored the turn (or already had it: duplicate=True)."""

    id: str
    key: str
    duplicate: bool = False
    queued: int = 0


class Cancel(Msg):
    id: str


class EditTurn(Msg):
    """The user edited a message: replace the text of its inbox row if its turn has not started.

    Answered `Ok`, or `Error` with E_UNKNOWN_NAME (no row with that key) or E_STATE (its turn has
    started or ended)."""

    id: str
    key: str
    text: str


class PermissionAnswer(Msg):
    id: str
    prompt_id: str
    allow: bool
    message: str = ""
    always: bool = False


class GetFile(Msg):
    """`/get PATH` from the chat: the worker checks the path (relative to the session's working
    dir, inside its dirs) and emits a FileOut for `chat_id`; answered `Ok`, or `Error` with one
    sentence."""

    id: str
    path: str
    chat_id: int


class ListGrants(Msg):
    """Ask a worker for its session's grants (answered by Ok with a GrantsResult)."""

    id: str


class RevokeGrant(Msg):
    """Withdraw one grant; a later request it covered prompts again."""

    id: str
    grant_id: int


class SessionCommand(Msg):
    """A chat command the worker carries out on its own session (session_worker.commands):
    `model` (arg: a name, "default", or empty to show it), `context`, `compact`, `clear`,
    `history`, `raise_budget` (arg: "session" or "day"). Answered `Ok` with a CommandResult, or
    `Error` with one sentence."""

    id: str
    verb: str
    arg: str = ""
    chat_id: int = 0


class Replay(Msg):
    """Ask for every durable event with seq > after_seq (answered by Events, then ReplayDone)."""

    id: str
    after_seq: int


class ReplayDone(Msg):
    id: str
    last_seq: int


class Hello(Msg):
    """A worker (re)connected to the chat socket; the bot answers with a Replay."""

    session: str
    pid: int
    last_seq: int


# --------------------------------------------------------------------------- chat: event bodies


class Body(Msg):
    """Base of event bodies: what the bot renders, without knowing the CLI's JSON."""


class TurnStarted(Body):
    key: str


class TextDelta(Body):
    text: str


class AssistantText(Body):
    text: str


class Thinking(Body):
    text: str


class ToolUse(Body):
    tool_use_id: str
    name: str
    summary: str
    input_json: str = "{}"


class ToolResult(Body):
    tool_use_id: str
    is_error: bool = False
    preview: str = ""


class TurnResult(Body):
    key: str = ""
    subtype: str = "success"
    is_error: bool = False
    text: str = ""
    cost_usd: float = 0.0
    session_cost_usd: float = 0.0
    duration_ms: int = 0
    num_turns: int = 0
    api_error_status: int | None = None
    terminal_reason: str | None = None
    # A turn a user's stop cut short: the message's text, for the chat's Retry button.
    retry_text: str = ""
    # From the result's usage and modelUsage: the turn's tokens and how full the context is.
    model: str = ""
    tokens_in: int = 0
    tokens_out: int = 0
    context_percent: float | None = None


class PermissionRequest(Body):
    """Claude asks to run a tool. `input_json` is the whole input, exactly what an Allow
    approves; `grant`/`grant_label` name the rule "allow for this session" would add (empty:
    no narrower rule exists, so the button is not offered)."""

    prompt_id: str
    tool_name: str
    summary: str
    input_json: str = "{}"
    timeout_seconds: float = 0.0
    grant: str = ""
    grant_label: str = ""


class PermissionResolved(Body):
    prompt_id: str
    allowed: bool
    reason: str = ""


class RateLimit(Body):
    raw_json: str


class SessionInit(Body):
    claude_session_id: str
    model: str = ""
    tools: list[str] = []


class Notice(Body):
    """One sentence for the user: an error they can act on, or information."""

    level: str  # "info" | "warning" | "error"
    message: str


class FileOut(Body):
    """A file for the chat (Claude's send_file tool, or /get): the worker checked `path` (an
    absolute, resolved path inside the session's dirs); the bot reads it when it sends it, as a
    photo when `photo`, else as a document."""

    path: str
    name: str
    size: int
    caption: str = ""
    photo: bool = False
class BudgetHold(Body):
    """The next turn waits: a budget is spent. `kind` is "session" or "day"; the chat offers a
    button that raises that budget for today (a SessionCommand raise_budget)."""

    kind: str
    spent_usd: float
    limit_usd: float
    message: str


class Unknown(Body):
    """A CLI event of a type we do not know yet: passed on, never dropped."""

    type: str
    raw_json: str


EventBody = (
    TurnStarted | TextDelta | AssistantText | Thinking | ToolUse | ToolResult | TurnResult
    | PermissionRequest | PermissionResolved | RateLimit | SessionInit | Notice | Unknown
    | FileOut
    | BudgetHold
)


class Event(Msg):
    """An event from a session. seq > 0: durable and replayable; seq == 0: ephemeral."""

    session: str
    seq: int
    body: EventBody
    chat_id: int | None = None
    key: str = ""


# --------------------------------------------------------------------------- events plane


class StateChange(Msg):
    program: str
    from_state: str
    to_state: str
    pid: int | None = None
    exit_code: int | None = None  # negative: killed by that signal
    reason: str = ""
    time: float = 0.0


# --------------------------------------------------------------------------- terminal handoff


class Attach(Msg):
    """switchboardctl attach NAME / the chat's /handoff -> supervisor: suspend the session's CLI
    and answer Ok(HandoffResult) with the command that resumes its conversation at a terminal."""

    id: str
    name: str


class Detach(Msg):
    """Supervisor -> worker over the control socket, for an `Attach`: suspend the warm CLI (no
    turn may be running) and answer Ok(HandoffResult), or Error with one sentence."""

    id: str


# --------------------------------------------------------------------------- unions per socket

ControlRequest = (
    Status | Start | Stop | Restart | NewSession | RemoveSession | SetPersona | ListPersonas
    | EnsureRunning | Shutdown | Version | Register | Pong | ListProjects | Attach
    | Ok | Error  # a child's answer to the supervisor's Reload
)
ControlReply = Ok | Error | Ping | Reload | Detach
ChatToWorker = (UserTurn | Cancel | EditTurn | PermissionAnswer | Replay | ListGrants
                | RevokeGrant | GetFile | SessionCommand)
ChatToBot = Accepted | Event | Hello | ReplayDone | Ok | Error
Message = ControlRequest | Ok | Error | Ping | ChatToWorker | ChatToBot | StateChange
