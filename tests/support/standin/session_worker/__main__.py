"""Stand-in worker. The session name's first word picks the behaviour:
crash-*  exits 1 at once          late-*  registers, exits 3 after RUNNING
hang-*   registers, never Pongs   idle-*  reports a CLI (a marked sleeper) idle for hours
cli-*    reports a marked sleeper as its CLI
leak-*   cli-* plus a setsid marked child that outlives it (its pid is sent as `queued`)
anything else: a healthy worker
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from child import main

sys.exit(main("session_worker"))
