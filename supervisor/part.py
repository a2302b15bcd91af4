"""What every part of the Supervisor shares (supervisor.heartbeat, .sweeping, .reloading are
mixins of supervisor.service.Supervisor): declared here for the type checker only;
Supervisor.__init__ sets it all."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from supervisor.config import Config
    from supervisor.control import ControlServer
    from supervisor.health import Health
    from supervisor.program import Program


class SupervisorPart:
    if TYPE_CHECKING:
        cfg: Config
        programs: dict[str, Program]
        health: dict[str, Health]
        notices: dict[str, list[str]]
        control: ControlServer
