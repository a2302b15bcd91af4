"""One row of `switchboard doctor`'s report: a name, ok / warn / FAIL, a short detail, and for a
problem one sentence naming the fix. Pure data, shared by doctor's modules."""
from __future__ import annotations

from dataclasses import dataclass

OK, WARN, FAIL = "ok", "warn", "FAIL"


@dataclass
class Check:
    name: str
    status: str
    detail: str = ""
    fix: str | None = None
