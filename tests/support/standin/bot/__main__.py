"""Stand-in bot: registers as `bot` and answers Pings."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from child import main

sys.exit(main("bot"))
