"""The bot process: build the PTB Application, wire every handler, run the loops.

`main()` is the whole surface of the bot on one screen: the gate in group -1, one handler per
chat command (from the table bot.commands.CHAT_COMMANDS), message kind and kind of button, and
the long-running tasks (getUpdates, the chat socket, the
replay sync, the supervisor's events, the parent watch) owned by one TaskGroup so that shutdown
is a tree.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
from functools import partial
from pathlib import Path

import zmq.asyncio
from telegram import BotCommand, Update
from telegram.ext import (
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot import callbacks, startup
from bot.chat import ChatServer
from bot.command_table import menu
from bot.commands import CHAT_COMMANDS, Commands
from bot.control import SupervisorClient
from bot.delivery import Delivery
from bot.events import Events
from bot.gate import Gate
from bot.handoff import Couriers
from bot.inbound import UNSUPPORTED, Inbound
from bot.journal import Journal
from bot.live_status import LiveStatus
from bot.poller import Poller
from bot.ratelimit import ChatRateLimiter
from bot.reload import Reloader
from bot.stops import StopHandler, Stops
from bot.taps import Taps
from bot.telegram_out import TelegramOut
from bot.topic_map import TopicMap
from bot.topics import Topics
from bot.transport import AiohttpRequest
from bot.voice import Transcriber
from wire import auth, logs
from wire.aio import wait_event
from wire.endpoints import RuntimeDirError, prepare_runtime_dir
from wire.lifetime import die_with_parent
from wire.settings import BOT_SETTINGS_ENV, BotSettings, load, read_secret

log = logging.getLogger("bot")


class Stopping(Exception):
    """Raised inside the TaskGroup to end every task (SIGTERM, parent gone)."""


def main() -> int:
    settings = load(BotSettings, BOT_SETTINGS_ENV)
    if not die_with_parent(settings.supervisor_pid):
        raise SystemExit("the supervisor that started the bot is gone: not starting.")
    token = read_secret(settings.token_fd)  # the inherited pipe, closed once read
    if not token:
        raise SystemExit("the bot was started without a token: put the bot token in the env file"
                         " next to the config (or telegram.token_env), then restart.")
    logs.add_secret(token)
    voice_key = read_secret(settings.voice_key_fd)  # the transcription key's pipe, likewise
    if voice_key:
        logs.add_secret(voice_key)
    logs.redact_stdio()  # a traceback PTB prints (InvalidToken quotes the token) is redacted too
    logs.setup("bot", settings.state_dir)
    try:
        asyncio.run(run(settings, token, voice_key))
    except (RuntimeDirError, startup.TokenRefused) as exc:
        raise SystemExit(str(exc)) from None
    return 0


async def run(settings: BotSettings, token: str, voice_key: str | None = None) -> None:
    requests = AiohttpRequest(), AiohttpRequest(1)  # calls; getUpdates' long poll
    app = (ApplicationBuilder().token(token).base_url(f"{settings.api_base_url}/bot")
           .base_file_url(f"{settings.api_base_url}/file/bot").updater(None)
           .request(requests[0]).get_updates_request(requests[1])
           .rate_limiter(ChatRateLimiter()).build())
    endpoints = prepare_runtime_dir(Path(settings.runtime_dir))
    keys = auth.receive_keys()  # the socket keys the supervisor piped to us (wire.auth)
    assert keys.chat_root is not None, "the bot's keys carry the chat root"
    ctx = zmq.asyncio.Context()
    journal = Journal(Path(settings.state_dir) / "bot.db")
    gate = Gate(settings.allowed_user_ids, groups=settings.groups)
    out = TelegramOut(app.bot)
    topics = Topics(journal, out, TopicMap(journal))
    delivery = Delivery(journal, out, None, settings, topics)  # type: ignore[arg-type]
    chat = ChatServer(ctx, endpoints.chat, delivery.on_message, bytes.fromhex(keys.chat_root))
    delivery.chat = chat
    supervisor = SupervisorClient(ctx, endpoints.control, keys.control)
    supervisor.health = lambda: journal.unhealthy
    topics.supervisor = supervisor
    couriers = Couriers(journal, chat, supervisor, out, settings.worker_timeout_seconds)
    couriers.topic_of = topics.map.thread
    live = LiveStatus(journal, supervisor, out, settings.status_refresh_seconds)
    live.thread_of = topics.map.thread
    delivery.on_change = live.poke
    commands = Commands(journal, supervisor, chat, out, topics, live)
    inbound = Inbound(settings, journal, couriers, out, chat, topics,
                      Transcriber(settings, voice_key))
    taps = Taps(journal, supervisor, chat, delivery, couriers, out,
                settings.worker_timeout_seconds, topics)
    events = Events(ctx, endpoints.events, journal, out, keys.control, topics)
    stops = Stops(delivery, chat, out)
    events.on_change = live.poke

    app.add_handler(TypeHandler(Update, gate.check), group=-1)
    app.add_handler(StopHandler(stops.on_stopped))  # Telegram's Stop on a draft
    # First: an edit is never run as a command or sent as a new message (CommandHandler takes
    # edited messages too).
    app.add_handler(MessageHandler(filters.UpdateType.EDITED, inbound.edited))
    # Topics the user makes, closes and reopens by hand (bot.topics).
    app.add_handler(MessageHandler(filters.StatusUpdate.FORUM_TOPIC_CREATED, topics.user_created))
    app.add_handler(MessageHandler(filters.StatusUpdate.FORUM_TOPIC_CLOSED, topics.user_closed))
    app.add_handler(MessageHandler(filters.StatusUpdate.FORUM_TOPIC_REOPENED,
                                   topics.user_reopened))
    for cmd in CHAT_COMMANDS:
        app.add_handler(CommandHandler([cmd.name, *cmd.aliases], partial(cmd.handler, commands)))
    app.add_handler(MessageHandler(filters.COMMAND, commands.unknown))
    app.add_handler(MessageHandler(filters.TEXT & ~filters.UpdateType.EDITED, inbound.text))
    app.add_handler(MessageHandler(filters.PHOTO | filters.Document.ALL, inbound.attachment))
    app.add_handler(MessageHandler(filters.VOICE | filters.AUDIO, inbound.voice))
    app.add_handler(MessageHandler(unsupported_filter(), inbound.unsupported))
    app.add_handler(CallbackQueryHandler(taps.permission, pattern=callbacks.PERMISSION))
    app.add_handler(CallbackQueryHandler(taps.switch, pattern=callbacks.SWITCH))
    app.add_handler(CallbackQueryHandler(taps.topic, pattern=callbacks.TOPIC))
    app.add_handler(CallbackQueryHandler(taps.remove, pattern=callbacks.REMOVE))
    app.add_handler(CallbackQueryHandler(taps.grant, pattern=callbacks.GRANT))
    app.add_handler(CallbackQueryHandler(taps.retry, pattern=callbacks.RETRY))
    app.add_handler(CallbackQueryHandler(taps.budget, pattern=callbacks.BUDGET))
    app.add_handler(CallbackQueryHandler(stops.on_tap, pattern=callbacks.STOP))
    app.add_handler(CallbackQueryHandler(taps.unknown))
    app.add_error_handler(on_error)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    poller = Poller(app, journal, gate, settings.poll_timeout_seconds)
    supervisor.on_reload = Reloader(settings, gate, delivery, poller)  # SIGHUP, applied live
    delays = startup.Delays(cap=settings.startup_retry_max_seconds)
    try:
        supervisor.rpc.start()  # answer the heartbeat while Telegram is still out of reach
        # `async with app` then finds it initialized (getMe done).
        await startup.unless_stopped(stop, startup.call("getMe", app.initialize,
                                                        delays=delays))
        topics.configure(app.bot.bot)  # getMe: topics in private chats?
        async with app:
            await startup.unless_stopped(stop, startup.call("deleteWebhook",
                                                            app.bot.delete_webhook,
                                                            delays=delays))
            await startup.unless_stopped(stop, startup.call("setMyCommands", lambda: (
                app.bot.set_my_commands([BotCommand(n, d) for n, d in menu(CHAT_COMMANDS)])),
                delays=delays))
            await supervisor.register()  # through to Telegram: no longer retrying
            log.info("event=bot_started pid=%d allowed_users=%d", os.getpid(),
                     len(gate.allowed_ids))
            couriers.resume()
            async with asyncio.TaskGroup() as tg:
                tg.create_task(poller.run(), name="poller")
                tg.create_task(chat.run(), name="chat")
                tg.create_task(delivery.sync_loop(), name="replay-sync")
                tg.create_task(events.run(), name="events")
                tg.create_task(topics.run(), name="topics")
                tg.create_task(live.run(), name="live-status")
                tg.create_task(watch(stop, settings.supervisor_pid), name="watch")
    except* (Stopping, startup.Stopped):
        log.info("event=bot_stopping")
    finally:
        await couriers.close()
        await delivery.close()
        await supervisor.close()
        events.close()
        chat.close()
        journal.close()
        ctx.term()
        for request in requests:  # also when getMe failed and PTB never shut them down
            await request.shutdown()


def unsupported_filter() -> filters.BaseFilter:
    """Every kind of message in bot.inbound.UNSUPPORTED, as one PTB filter."""
    combined: filters.BaseFilter | None = None
    for attr, _sentence in UNSUPPORTED:
        special = {"sticker": filters.Sticker.ALL, "dice": filters.Dice.ALL}
        f = special.get(attr) or getattr(filters, attr.upper())
        combined = f if combined is None else combined | f
    assert combined is not None
    return combined


async def watch(stop: asyncio.Event, parent_pid: int | None) -> None:
    """End the bot on SIGTERM, or when the supervisor that started it is gone."""
    while not stop.is_set():
        if parent_pid is not None and os.getppid() != parent_pid:
            log.warning("event=parent_gone parent_pid=%d", parent_pid)
            break
        await wait_event(stop, 1.0)
    raise Stopping


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log a handler's failure without the update (it carries the user's text)."""
    update_id = getattr(update, "update_id", None)
    log.error("event=handler_failed update_id=%s error=%r", update_id,
              type(context.error).__name__, exc_info=context.error)
