"""`python -m session_worker`: one session's worker, started by the supervisor.

Settings arrive as JSON in SWITCHBOARD_WORKER_SETTINGS (wire.settings); nothing is read from the
config file. The worker dies with its parent (PR_SET_PDEATHSIG) and exits 0 on SIGTERM/SIGINT
after stopping its CLI and everything that carries its marker.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from session_worker import procs
from session_worker.worker import Worker
from wire import auth, logs
from wire.endpoints import RuntimeDirError, check_runtime_dir_length
from wire.names import InvalidName, check_session_name, program_name
from wire.settings import WORKER_SETTINGS_ENV, WorkerSettings, load


def main() -> int:
    # A SIGKILLed supervisor must not leave us behind: the kernel tells us with SIGTERM, which
    # runs the same clean stop as a requested one.
    procs.set_pdeathsig(signal.SIGTERM)
    settings = load(WorkerSettings, WORKER_SETTINGS_ENV)
    os.environ.pop(WORKER_SETTINGS_ENV, None)
    keys = auth.receive_keys()  # before anything is spawned: the pipe is ours alone
    try:
        check_session_name(settings.session)
        check_runtime_dir_length(Path(settings.runtime_dir))
    except (InvalidName, RuntimeDirError) as exc:
        print(str(exc), file=sys.stderr)
        return 2
    if settings.work_dir and not Path(settings.work_dir).is_dir():
        # A project's directory is the user's: never made again here, or a session would
        # silently start over in an empty folder (and `--resume` would find nothing there).
        print(f"the session's directory {settings.work_dir} is gone: restore it, or remove the"
              " session and create it again.", file=sys.stderr)
        return 2
    logs.setup(program_name(settings.session), settings.state_dir, session=settings.session)
    try:
        return asyncio.run(Worker(settings, keys=keys).run())
    except Exception:
        logging.getLogger("session_worker").exception("event=worker_crashed")
        return 1


if __name__ == "__main__":
    sys.exit(main())
