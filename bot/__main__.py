"""`python -m bot`: the Telegram bot, started by `switchboard run`."""
from bot.app import main

raise SystemExit(main())
