"""Events into Telegram messages: pure functions, no I/O, no PTB.

Claude writes Markdown; Telegram renders text plus entities. `render_markdown` converts with
telegramify-markdown (offsets in UTF-16 units) and `split` cuts the result into messages of at
most 4096 UTF-16 units, preferring a line break outside code blocks, so a code block shorter than
a message is never cut in two. `render_plain` is the fallback when Telegram still rejects the
entities. Everything else here is the small text the bot shows: tool lines, footers, the status
table, a prompt's outcome (the prompt itself is bot.prompt_render's).

Nothing here may touch the network, the disk or the clock.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

import telegramify_markdown
from telegramify_markdown import MessageEntity, utf16_len

from bot import meters
from wire import messages as m
from wire.names import SESSION_PREFIX

log = logging.getLogger(__name__)

MAX_TEXT = 4096
TOOL_LINE_MAX = 300
FOOTER_ROOM = 128  # what a preview leaves for the footer (time, cost, tokens, context)
NOTICE_ICONS = {"info": "ℹ️", "warning": "⚠️", "error": "❗"}


@dataclass(frozen=True)
class Chunk:
    """One Telegram message: text plus entities (offsets in UTF-16 units)."""

    text: str
    entities: tuple[MessageEntity, ...] = field(default=())

    def entity_dicts(self) -> list[dict[str, object]]:
        return [e.to_dict() for e in self.entities]


# --------------------------------------------------------------------------- splitting


def _u16_table(text: str) -> list[int]:
    table = [0] * (len(text) + 1)
    cum = 0
    for i, ch in enumerate(text):
        table[i] = cum
        cum += 2 if ord(ch) > 0xFFFF else 1
    table[len(text)] = cum
    return table


def _cut_points(text: str, start: int, end: int, pre: list[tuple[int, int]], u16: list[int]
                ) -> int:
    """The best cut in text[start:end] (end exclusive limit, a Python index > start).

    Preference: after a newline outside code, after a newline inside code, after whitespace
    outside code, after any whitespace, then a hard cut at `end`.
    """

    def in_pre(i: int) -> bool:
        p = u16[i]
        return any(a < p < b for a, b in pre)

    best: dict[int, int] = {}
    for i in range(end, start, -1):
        ch = text[i - 1]
        if not ch.isspace():
            continue
        inside = in_pre(i)
        rank = (0 if ch == "\n" else 2) + (1 if inside else 0)
        if rank == 0:
            return i
        best.setdefault(rank, i)
    for rank in (1, 2, 3):
        if rank in best:
            return best[rank]
    return end


def cut_ranges(text: str, entities: list[MessageEntity] | tuple[MessageEntity, ...] = (),
               limit: int = MAX_TEXT, u16: list[int] | None = None) -> list[tuple[int, int]]:
    """Where `split` cuts: (start, end) Python indices covering the whole text in order."""
    u16 = u16 or _u16_table(text)
    total = u16[-1]
    pre = [(e.offset, e.offset + e.length) for e in entities if e.type == "pre"]
    ranges: list[tuple[int, int]] = []
    start = 0
    while start < len(text):
        if total - u16[start] <= limit:
            ranges.append((start, len(text)))
            break
        # Largest end index whose UTF-16 length from start fits.
        budget = u16[start] + limit
        lo, hi = start + 1, len(text)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if u16[mid] <= budget:
                lo = mid
            else:
                hi = mid - 1
        end = max(lo, start + 1)
        cut = _cut_points(text, start, end, pre, u16)
        ranges.append((start, cut))
        start = cut
    return ranges


def split(text: str, entities: list[MessageEntity] | tuple[MessageEntity, ...] = (),
          limit: int = MAX_TEXT) -> list[Chunk]:
    """Cut text+entities into chunks of at most `limit` UTF-16 units.

    The chunks' texts joined give back `text` exactly; entities crossing a cut are clipped into
    both sides (so a code block that must be cut stays a code block in each message).
    Whitespace-only chunks are dropped (Telegram refuses empty messages).
    """
    u16 = _u16_table(text)
    chunks: list[Chunk] = []
    for a, b in cut_ranges(text, entities, limit, u16):
        piece = text[a:b]
        if not piece.strip():
            continue
        ua, ub = u16[a], u16[b]
        clipped = []
        for e in entities:
            s, t = max(e.offset, ua), min(e.offset + e.length, ub)
            if t > s:
                clipped.append(e.copy_with(offset=s - ua, length=t - s))
        chunks.append(Chunk(piece, tuple(clipped)))
    return chunks


def render_markdown(markdown: str, limit: int = MAX_TEXT) -> list[Chunk]:
    """Claude's Markdown as Telegram messages (text + entities), split at the limit."""
    try:
        text, entities = telegramify_markdown.convert(markdown)
    except Exception as exc:  # noqa: BLE001 - a converter bug must not lose the answer
        log.warning("event=markdown_failed error=%r", type(exc).__name__)
        return render_plain(markdown, limit)
    chunks = split(text, entities, limit)
    return chunks or render_plain(markdown, limit)


def render_preview(text: str, limit: int = MAX_TEXT) -> Chunk:
    """The start of an answer too long to send as messages, cut at a line, with a note that the
    whole answer follows as a file. Plain text: a cut can fall inside a code block."""
    note = f"\n\n… {len(text):,} characters in all: the whole answer is in the file below."
    head = text[: max(0, limit - len(note) - FOOTER_ROOM)]
    cut = head.rfind("\n")
    if cut > len(head) // 2:
        head = head[:cut]
    return split(head.rstrip() + note, (), limit)[0]


def render_plain(text: str, limit: int = MAX_TEXT) -> list[Chunk]:
    """The fallback: the raw text, no entities, split at the limit."""
    return split(text, (), limit)


def plain_of(chunk: Chunk) -> Chunk:
    return Chunk(chunk.text)


# --------------------------------------------------------------------------- small texts


def tool_line(body: m.ToolUse) -> str:
    """`🔧 Bash: ls -la` — one line, however long the input."""
    summary = " ".join((body.summary or body.name).split())
    if len(summary) > TOOL_LINE_MAX:
        summary = summary[: TOOL_LINE_MAX - 1] + "…"
    return f"🔧 {summary}"


def format_duration(ms: float) -> str:
    s = max(0.0, float(ms) / 1000.0)
    if s < 60:
        return f"{s:.1f} s"
    minutes, sec = divmod(round(s), 60)
    if minutes < 60:
        return f"{minutes} min {sec} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def format_cost(usd: float) -> str:
    if usd >= 1:
        return f"${usd:.2f}"
    return f"${usd:.4f}"


def format_idle(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86400} d"


def footer(result: m.TurnResult) -> str:
    """`✓ 2.3 s · $0.0123 (session $0.0456)` — or ✗ for a failed turn."""
    mark = "✗" if result.is_error else "✓"
    text = f"{mark} {format_duration(result.duration_ms)} · {format_cost(result.cost_usd)}"
    if result.session_cost_usd and result.session_cost_usd > result.cost_usd:
        text += f" (session {format_cost(result.session_cost_usd)})"
    return text + meters.usage_part(result)


def with_footer(chunk: Chunk, foot: str, limit: int = MAX_TEXT) -> Chunk | None:
    """The chunk with the footer appended in italics, or None when it would not fit."""
    body = chunk.text.rstrip()
    text = body + "\n\n" + foot
    if utf16_len(text) > limit:
        return None
    end = utf16_len(body)
    kept = tuple(
        e.copy_with(length=min(e.offset + e.length, end) - e.offset)
        for e in chunk.entities
        if e.offset < end
    )
    italic = MessageEntity(type="italic", offset=end + 2, length=utf16_len(foot))
    return Chunk(text, kept + (italic,))


def notice(body: m.Notice) -> str:
    return f"{NOTICE_ICONS.get(body.level, 'ℹ️')} {body.message}"


def labelled(session: str, chunks: list[Chunk]) -> list[Chunk]:
    """Prefix the first chunk with `[session]` (for sessions that are not the active one)."""
    if not chunks:
        return chunks
    label = f"[{session}]\n"
    first = chunks[0]
    shift = utf16_len(label)
    if utf16_len(first.text) + shift > MAX_TEXT:
        return [Chunk(label.strip(), (MessageEntity("bold", 0, shift - 1),)), *chunks]
    ents = tuple(e.copy_with(offset=e.offset + shift) for e in first.entities)
    bold = MessageEntity("bold", 0, shift - 1)
    return [Chunk(label + first.text, (bold, *ents)), *chunks[1:]]


# A link Telegram would make clickable: a scheme, or a bare www. host.
_URL = re.compile(r"(?i)(?:\b[a-z][a-z0-9+.-]*://|\bwww\.)\S")


def has_url(text: str) -> bool:
    return _URL.search(text) is not None


def permission_outcome(allowed: bool, reason: str = "", always: bool = False) -> str:
    if reason == "timeout":
        return "⌛ No answer in time: denied."
    if allowed:
        return "✅ Allowed for this session." if always else "✅ Allowed."
    return "🚫 Denied." + (f" ({reason})" if reason and reason not in ("denied", "user") else "")


def status_table(rows: list[m.ProgramStatus]) -> str:
    """supervisorctl's layout: name padded, state padded, `pid N, uptime H:MM:SS`."""
    if not rows:
        return "No programs."
    width = max(len(r.name) for r in rows) + 1
    width = max(width, 12)
    lines = []
    for r in rows:
        lines.append(f"{r.name:<{width}}{r.state:<10}{describe(r)}".rstrip())
    return "\n".join(lines)


def describe(r: m.ProgramStatus) -> str:
    if r.description:
        return r.description
    if r.pid and r.uptime_seconds is not None:
        up = int(r.uptime_seconds)
        return f"pid {r.pid}, uptime {up // 3600}:{up % 3600 // 60:02d}:{up % 60:02d}"
    return ""


def session_rows(rows: list[m.ProgramStatus]) -> list[m.ProgramStatus]:
    """The session programs of a status answer, named by their bare session name."""
    out = []
    for r in rows:
        if r.name.startswith(SESSION_PREFIX):
            out.append(r)
    return out


def session_name(r: m.ProgramStatus) -> str:
    return r.name.removeprefix(SESSION_PREFIX)


def sessions_text(rows: list[m.ProgramStatus], active: str | None) -> str:
    sessions = session_rows(rows)
    if not sessions:
        return "No sessions yet: create one with /new NAME."
    lines = []
    for r in sessions:
        name = session_name(r)
        mark = "▶" if name == active else "•"
        state = r.state + (" (busy)" if r.busy else "") + (" (suspended)" if r.suspended else "")
        lines.append(
            f"{mark} {name} — {state} · persona {r.persona or '-'} · idle "
            f"{format_idle(r.idle_seconds)} · {format_cost(r.cost_usd)}" + place_text(r)
        )
    return "\n".join(lines)


def place_text(r: m.ProgramStatus) -> str:
    """` · project web · dir /path` for a session whose status names where it works."""
    return (f" · project {r.project}" if r.project else "") + (
        f" · dir {r.work_dir}" if r.work_dir else "")


def projects_text(projects: list[m.ProjectInfo]) -> str:
    """/projects: each configured project, its directory and its sessions."""
    if not projects:
        return ("No projects are configured: add a [projects.NAME] table with a path to the"
                " config and reload.")
    lines = []
    for p in projects:
        how = " · a git worktree per session" if p.worktrees else ""
        persona = f" · persona {p.persona}" if p.persona else ""
        sessions = ", ".join(p.sessions) if p.sessions else "none"
        lines.append(f"• {p.name} — {p.path}{how}{persona} · sessions: {sessions}")
    lines.append("Start a session in one with /new NAME @PROJECT.")
    return "\n".join(lines)


def cost_text(rows: list[m.ProgramStatus]) -> str:
    sessions = session_rows(rows)
    if not sessions:
        return "No sessions yet: nothing spent."
    lines = [f"{session_name(r)}: {format_cost(r.cost_usd)}" for r in sessions]
    total = sum(r.cost_usd for r in sessions)
    lines.append(f"Total: {format_cost(total)}")
    return "\n".join(lines)


def results_text(verb: str, results: list[m.ProgramResult]) -> str:
    if not results:
        return f"Nothing to {verb}."
    lines = []
    for r in results:
        name = r.name.removeprefix(SESSION_PREFIX)
        if r.ok:
            lines.append(f"{name}: {r.message or verb + ' done'}")
        else:
            lines.append(f"{name}: {r.message or 'failed'}")
    return "\n".join(lines)
