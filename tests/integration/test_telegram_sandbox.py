"""The sandbox Telegram Bot API, seen through the real python-telegram-bot: every rule and fault
shows up as PTB's own exception, and what the bot sends shows up in the user's chat."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import signal
import subprocess
import sys
import urllib.request
import zlib

import pytest
from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    MessageEntity,
    Update,
)
from telegram.constants import ChatAction, ParseMode
from telegram.error import (
    BadRequest,
    Conflict,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TimedOut,
)
from telegram.ext import ApplicationBuilder, CallbackQueryHandler, CommandHandler, ContextTypes

from sandbox.telegram_api import PROJECT_ROOT, SandboxError, TelegramSandbox

pytestmark = pytest.mark.timeout(30)

USER = 4242
NOT_MODIFIED = "message is not modified"


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture(scope="module")
def server():
    """One sandbox process for the module (reset before each test); proven gone afterwards."""
    with TelegramSandbox() as tg:
        yield tg
    assert tg.returncode == 0, f"the sandbox exited with {tg.returncode} on SIGTERM"
    assert _gone(tg.pid)


@pytest.fixture
def tg(server):
    server.reset()
    return server


@pytest.fixture
async def bot(tg):
    async with Bot(**tg.bot_kwargs) as b:
        yield b


def _buttons(*rows: list[tuple[str, str]]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(t, callback_data=d) for t, d in row] for row in rows]
    )


def _seconds(value) -> float:
    return value.total_seconds() if hasattr(value, "total_seconds") else float(value)


def _bot_texts(chat: list[dict]) -> list[str]:
    return [m["text"] for m in chat if m["from_bot"]]


# ------------------------------------------------------------------------------- identity


async def test_get_me_describes_the_bot(bot, tg):
    me = await bot.get_me()
    assert me.is_bot and me.username == "sandbox_bot" and me.id == 123456
    assert [c["method"] for c in tg.calls()] == ["getMe", "getMe"]  # initialize + ours


async def test_unknown_token_is_invalid_token(tg):
    for token in ("999:WRONG-TOKEN", "not-a-token"):
        with pytest.raises(InvalidToken):
            async with Bot(token, base_url=f"{tg.url}/bot"):
                pass
    assert [c["status"] for c in tg.calls()] == [401, 404]


async def test_method_names_are_case_insensitive_and_unknown_ones_404(tg):
    def call(method: str, body: bytes, ctype: str) -> tuple[int, dict]:
        req = urllib.request.Request(
            f"{tg.url}/bot{tg.token}/{method}", data=body, headers={"Content-Type": ctype}
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(req, timeout=5) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    status, answer = call(
        "SENDMESSAGE", json.dumps({"chat_id": USER, "text": "json"}).encode(), "application/json"
    )
    assert status == 200 and answer["result"]["text"] == "json"
    status, answer = call(
        "sendmessage", f"chat_id={USER}&text=form".encode(), "application/x-www-form-urlencoded"
    )
    assert status == 200 and answer["result"]["text"] == "form"
    status, answer = call("sendMessages", b"{}", "application/json")
    assert (status, answer) == (404, {"ok": False, "error_code": 404, "description": "Not Found"})
    assert _bot_texts(tg.chat(USER)) == ["json", "form"]


# ------------------------------------------------------------------------------- text rules


async def test_text_over_4096_characters_is_too_long(bot, tg):
    with pytest.raises(BadRequest, match="(?i)message is too long"):
        await bot.send_message(USER, "a" * 4097)
    await bot.send_message(USER, "a" * 4096)
    assert [len(t) for t in _bot_texts(tg.chat(USER))] == [4096]


async def test_limit_counts_utf16_code_units(bot):
    with pytest.raises(BadRequest, match="(?i)message is too long"):
        await bot.send_message(USER, "😀" * 2049)  # 4098 UTF-16 units, 2049 code points
    sent = await bot.send_message(USER, "😀" * 2048)
    assert len(sent.text) == 2048


async def test_limit_applies_after_html_parsing(bot, tg):
    source = "<b>" + "a" * 4000 + "</b>" + "&amp;" * 90  # 4097 source characters, 4090 of text
    assert len(source) > 4096
    sent = await bot.send_message(USER, source, parse_mode=ParseMode.HTML)
    assert sent.text == "a" * 4000 + "&" * 90
    [msg] = tg.chat(USER)
    assert msg["entities"] == [{"type": "bold", "offset": 0, "length": 4000}]


async def test_empty_text_is_refused(bot):
    for text, mode in (("", None), ("  \n ", None), ("<b> </b>", ParseMode.HTML)):
        with pytest.raises(BadRequest, match="(?i)message text is empty"):
            await bot.send_message(USER, text, parse_mode=mode)


@pytest.mark.parametrize(
    ("text", "mode"),
    [
        ("<b>unclosed", ParseMode.HTML),
        ("<b>crossed <i>tags</b></i>", ParseMode.HTML),
        ("<blink>unknown tag</blink>", ParseMode.HTML),
        ("1 < 2", ParseMode.HTML),
        ("<span>no class</span>", ParseMode.HTML),
        ("version 1.2", ParseMode.MARKDOWN_V2),
        ("*never closed", ParseMode.MARKDOWN_V2),
        ("snake_case", ParseMode.MARKDOWN_V2),
        ("(parens)", ParseMode.MARKDOWN_V2),
    ],
)
async def test_broken_markup_cannot_parse_entities(bot, tg, text, mode):
    with pytest.raises(BadRequest, match="(?i)can't parse entities"):
        await bot.send_message(USER, text, parse_mode=mode)
    assert tg.chat(USER) == []


async def test_entities_outside_the_text_cannot_parse(bot):
    with pytest.raises(BadRequest, match="(?i)can't parse entities"):
        await bot.send_message(USER, "short", entities=[MessageEntity("bold", offset=2, length=10)])
    sent = await bot.send_message(
        USER, "short", entities=[MessageEntity("bold", offset=0, length=5)]
    )
    assert sent.entities[0].type == "bold"


async def test_html_is_stored_as_text_and_entities(bot, tg):
    html = (
        "<b>bold</b> <i>it</i> <u>u</u> <s>s</s> <tg-spoiler>sp</tg-spoiler> "
        '<a href="https://x.org">link</a> '
        '&lt;tag&gt; &quot;q&quot; 😀 <code>c</code>\n'
        '<pre><code class="language-python">x = 1</code></pre>'
        "<blockquote>quoted</blockquote>"
    )
    await bot.send_message(USER, html, parse_mode=ParseMode.HTML)
    [msg] = tg.chat(USER)
    assert msg["text"] == 'bold it u s sp link <tag> "q" 😀 c\nx = 1quoted'
    assert TelegramSandbox.entity_texts(msg["text"], msg["entities"]) == [
        ("bold", "bold"),
        ("italic", "it"),
        ("underline", "u"),
        ("strikethrough", "s"),
        ("spoiler", "sp"),
        ("text_link", "link"),
        ("code", "c"),
        ("pre", "x = 1"),
        ("blockquote", "quoted"),
    ]
    pre = next(e for e in msg["entities"] if e["type"] == "pre")
    assert pre["language"] == "python"


async def test_markdown_v2_is_stored_as_text_and_entities(bot, tg):
    sent = await bot.send_message(
        USER,
        r"*bold* _it_ __u__ ~s~ ||sp|| [link](https://x.org) `c` 1\.2\!",
        parse_mode=ParseMode.MARKDOWN_V2,
    )
    assert sent.text == "bold it u s sp link c 1.2!"
    [msg] = tg.chat(USER)
    assert [t for t, _ in TelegramSandbox.entity_texts(msg["text"], msg["entities"])] == [
        "bold", "italic", "underline", "strikethrough", "spoiler", "text_link", "code",
    ]  # fmt: skip


# ------------------------------------------------------------------------------- edits


async def test_editing_to_identical_content_is_not_modified(bot, tg):
    sent = await bot.send_message(
        USER, "<b>v1</b>", parse_mode=ParseMode.HTML, reply_markup=_buttons([("Go", "go")])
    )
    with pytest.raises(BadRequest, match=f"(?i){NOT_MODIFIED}"):
        await bot.edit_message_text(
            "<b>v1</b>",
            USER,
            sent.message_id,
            parse_mode=ParseMode.HTML,
            reply_markup=_buttons([("Go", "go")]),
        )
    # same text without the markup is a change: Telegram drops the keyboard
    await bot.edit_message_text("<b>v1</b>", USER, sent.message_id, parse_mode=ParseMode.HTML)
    await bot.edit_message_text("v1", USER, sent.message_id)  # same text, bold gone: a change
    with pytest.raises(BadRequest, match=f"(?i){NOT_MODIFIED}"):
        await bot.edit_message_text("v1", USER, sent.message_id)
    [msg] = tg.chat(USER)
    assert (msg["text"], msg["entities"], msg["reply_markup"], msg["edits"]) == ("v1", [], None, 2)
    errors = [c["description"] for c in tg.calls("editMessageText") if c["status"] == 400]
    assert errors == ["Bad Request: " + (
        "message is not modified: specified new message content and reply markup are exactly the "
        "same as a current content and reply markup of the message"
    )] * 2  # fmt: skip


async def test_editing_a_missing_or_deleted_message(bot, tg):
    with pytest.raises(BadRequest, match="(?i)message to edit not found"):
        await bot.edit_message_text("x", USER, 999)
    sent = await bot.send_message(USER, "to delete")
    assert await bot.delete_message(USER, sent.message_id)
    with pytest.raises(BadRequest, match="(?i)message to edit not found"):
        await bot.edit_message_text("x", USER, sent.message_id)
    with pytest.raises(BadRequest, match="(?i)message to delete not found"):
        await bot.delete_message(USER, sent.message_id)
    assert tg.chat(USER) == []
    [gone] = tg.chat(USER, deleted=True)
    assert gone["deleted"] and gone["text"] == "to delete"


async def test_edit_reply_markup_removing_buttons_shows_in_chat(bot, tg):
    sent = await bot.send_message(USER, "pick", reply_markup=_buttons([("A", "a"), ("B", "b")]))
    assert tg.chat(USER)[0]["reply_markup"]["inline_keyboard"][0][1] == {
        "text": "B",
        "callback_data": "b",
    }
    await bot.edit_message_reply_markup(USER, sent.message_id, reply_markup=None)
    [msg] = tg.chat(USER)
    assert msg["reply_markup"] is None and msg["edits"] == 1 and msg["text"] == "pick"
    with pytest.raises(BadRequest, match=f"(?i){NOT_MODIFIED}"):
        await bot.edit_message_reply_markup(USER, sent.message_id, reply_markup=None)


async def test_callback_data_over_64_bytes_is_button_data_invalid(bot, tg):
    with pytest.raises(BadRequest, match="(?i)button_data_invalid"):
        await bot.send_message(USER, "x", reply_markup=_buttons([("A", "d" * 65)]))
    with pytest.raises(BadRequest, match="(?i)button_data_invalid"):
        await bot.send_message(USER, "x", reply_markup=_buttons([("A", "é" * 33)]))  # 66 bytes
    await bot.send_message(USER, "x", reply_markup=_buttons([("A", "é" * 32)]))  # 64 bytes
    assert len(tg.chat(USER)) == 1


# ------------------------------------------------------------------------------- faults


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_429_is_retry_after_with_its_value(bot, tg):
    tg.fault("429", method="sendMessage", chat_id=USER, retry_after=7)
    with pytest.raises(RetryAfter) as info:
        await bot.send_message(USER, "flood")
    assert _seconds(info.value.retry_after) == 7
    await bot.send_message(USER + 1, "another chat is not limited")
    await bot.send_message(USER, "the fault was used up")
    assert _bot_texts(tg.chat(USER)) == ["the fault was used up"]
    assert [c["status"] for c in tg.calls("sendMessage")] == [429, 200, 200]


async def test_5xx_is_a_network_error(bot, tg):
    tg.fault("5xx", method="sendMessage", count=2)
    for _ in range(2):
        with pytest.raises(NetworkError, match="Bad Gateway") as info:
            await bot.send_message(USER, "lost")
        assert not isinstance(info.value, BadRequest)
    await bot.send_message(USER, "through")
    assert _bot_texts(tg.chat(USER)) == ["through"]


@pytest.mark.parametrize(("kind", "delivered"), [("drop_before", False), ("drop_after", True)])
async def test_dropped_connection_is_a_network_error(bot, tg, kind, delivered):
    tg.fault(kind, method="sendmessage")
    with pytest.raises(NetworkError) as info:
        await bot.send_message(USER, "maybe")
    assert not isinstance(info.value, TimedOut)
    assert _bot_texts(tg.chat(USER)) == (["maybe"] if delivered else [])
    await bot.send_message(USER, "next")  # the bot recovers on a new connection
    assert _bot_texts(tg.chat(USER))[-1] == "next"


async def test_slow_answer_past_the_read_timeout_is_timed_out(bot, tg):
    tg.fault("slow", method="sendMessage", delay=0.5)
    with pytest.raises(TimedOut):
        await bot.send_message(USER, "slowly", read_timeout=0.1)
    # like Telegram, the message may still arrive after the client gave up
    await asyncio.to_thread(tg.wait_for, lambda chat: _bot_texts(chat) == ["slowly"], USER, 5)


# ------------------------------------------------------------------------------- updates


async def test_long_poll_returns_an_update_sent_during_the_wait(bot, tg):
    poll = asyncio.create_task(bot.get_updates(timeout=10))
    await asyncio.to_thread(tg.wait_for_call, "getUpdates", 5, pending=True)
    tg.send(USER, "hello during the wait", first_name="Ada")
    updates = await asyncio.wait_for(poll, 5)  # well before the poll's own 10 s timeout
    [update] = updates
    assert update.message.text == "hello during the wait"
    assert update.message.from_user.first_name == "Ada" and update.effective_chat.id == USER
    assert (await bot.get_updates(timeout=0))[0].update_id == update.update_id  # not confirmed yet
    assert await bot.get_updates(offset=update.update_id + 1, timeout=0) == ()
    assert tg.pending_updates() == []
    tg.send(USER, "second")
    [later] = await bot.get_updates(offset=update.update_id + 1, timeout=1)
    assert later.update_id > update.update_id and later.message.text == "second"


async def test_two_pollers_conflict(tg):
    async with Bot(**tg.bot_kwargs) as first, Bot(**tg.bot_kwargs) as second:
        older = asyncio.create_task(first.get_updates(timeout=10))
        await asyncio.to_thread(tg.wait_for_call, "getUpdates", 5, pending=True)
        assert await second.get_updates(timeout=0) == ()
        with pytest.raises(Conflict, match="terminated by other getUpdates request"):
            await asyncio.wait_for(older, 5)
    assert sorted(c["status"] for c in tg.calls("getUpdates")) == [200, 409]


async def test_allowed_updates_filters_kinds(bot, tg):
    sent = await bot.send_message(USER, "pick", reply_markup=_buttons([("A", "a")]))
    tg.send(USER, "text")
    tg.tap(USER, sent.message_id, "a")
    updates = await bot.get_updates(timeout=0, allowed_updates=["callback_query"])
    assert [u.callback_query.data for u in updates] == ["a"]


async def test_a_command_gets_a_bot_command_entity(bot, tg):
    tg.send(USER, "/new build-fix do the thing")
    [update] = await bot.get_updates(timeout=1)
    [entity] = update.message.entities
    assert (entity.type, entity.offset, entity.length) == ("bot_command", 0, 4)
    assert update.message.parse_entity(entity) == "/new"


async def test_group_messages(bot, tg):
    group = -1001234
    with pytest.raises(BadRequest, match="(?i)chat not found"):
        await bot.send_message(group, "a group the bot has not seen")
    tg.send(USER, "/status@sandbox_bot", chat_id=group, first_name="Ada")
    [update] = await bot.get_updates(timeout=1)
    assert (update.effective_chat.id, update.effective_chat.type) == (group, "group")
    assert update.effective_user.id == USER and update.message.entities[0].type == "bot_command"
    await bot.send_message(group, "all fine", reply_to_message_id=update.message.message_id)
    assert [(m["from_bot"], m["reply_to_message_id"]) for m in tg.chat(group)] == [
        (False, None),
        (True, 1),
    ]
    assert tg.chat(USER) == []


# ------------------------------------------------------------------------------- files


async def test_a_users_document_downloads_with_identical_bytes(bot, tg):
    content = os.urandom(200_000)
    tg.send_document(USER, "report.bin", content, caption="see /attached")
    [update] = await bot.get_updates(timeout=1)
    doc = update.message.document
    assert (doc.file_name, doc.file_size) == ("report.bin", len(content))
    assert update.message.caption == "see /attached"
    tg_file = await bot.get_file(doc.file_id)
    buf = io.BytesIO()
    await tg_file.download_to_memory(buf)
    assert buf.getvalue() == content
    tg.fault("drop_before", method="download")  # downloads fail like any other request
    with pytest.raises(NetworkError):
        await tg_file.download_to_memory(io.BytesIO())
    assert [c["status"] for c in tg.calls("download")] == [200, 0]
    with pytest.raises(BadRequest, match="(?i)invalid file_id"):
        await bot.get_file("nope")


async def test_a_file_over_20_mb_cannot_be_fetched_by_a_bot(bot, tg):
    tg.send_document(USER, "huge.bin", b"\0" * (20 * 1024 * 1024 + 1))
    [update] = await bot.get_updates(timeout=1)
    with pytest.raises(BadRequest, match="(?i)file is too big"):
        await bot.get_file(update.message.document.file_id)


async def test_the_bots_document_and_photo_reach_the_chat(bot, tg):
    png = _png(3, 2)
    await bot.send_document(
        USER, b"log line\n" * 1000, filename="session.log", caption="<b>log</b>", parse_mode="HTML"
    )
    await bot.send_photo(USER, png, caption="a picture")
    doc, photo = tg.chat(USER)
    assert doc["document"]["file_name"] == "session.log" and doc["caption"] == "log"
    assert base64.b64decode(doc["document"]["content_b64"]) == b"log line\n" * 1000
    assert (photo["photo"]["width"], photo["photo"]["height"]) == (3, 2)
    assert base64.b64decode(photo["photo"]["content_b64"]) == png
    with pytest.raises(BadRequest, match="(?i)caption is too long"):
        await bot.send_document(USER, b"x", filename="x.txt", caption="c" * 1025)


async def test_a_users_photo_is_downloadable(bot, tg):
    png = _png(5, 4)
    tg.send_photo(USER, png, caption="look")
    [update] = await bot.get_updates(timeout=1)
    size = update.message.photo[-1]
    assert (size.width, size.height) == (5, 4)
    data = await (await size.get_file()).download_as_bytearray()
    assert bytes(data) == png


async def test_an_album_is_one_message_per_photo_with_one_media_group_id(bot, tg):
    first, second = _png(2, 2), _png(3, 1)
    sent = tg.send_album(USER, [first, second], caption="both")
    updates = await bot.get_updates(timeout=1)
    assert len(updates) == 2
    a, b = (u.message for u in updates)
    assert a.media_group_id == b.media_group_id == sent["media_group_id"]
    assert (a.caption, b.caption) == ("both", None)
    assert [(p.photo[-1].width, p.photo[-1].height) for p in (a, b)] == [(2, 2), (3, 1)]
    assert [m["media_group_id"] for m in tg.chat(USER)] == [sent["media_group_id"]] * 2
    with pytest.raises(SandboxError, match="2 to 10 photos"):
        tg.send_album(USER, [first])


async def test_a_photo_of_impossible_dimensions_is_refused(bot, tg):
    with pytest.raises(BadRequest, match="(?i)photo_invalid_dimensions"):
        await bot.send_photo(USER, _png(1, 30))  # a ratio over 20
    await bot.send_photo(USER, _png(1, 20))


# ------------------------------------------------------------------------------- buttons, misc


async def test_a_tap_is_a_callback_query_and_the_answer_is_recorded(bot, tg):
    sent = await bot.send_message(
        USER, "Run it?", reply_markup=_buttons([("Yes", "run:1"), ("No", "run:0")])
    )
    with pytest.raises(SandboxError) as info:
        tg.tap(USER, sent.message_id, "run:2")
    assert info.value.status == 400 and "run:1" in info.value.message
    tap = tg.tap(USER, sent.message_id, "run:1")
    [update] = await bot.get_updates(timeout=1)
    query = update.callback_query
    assert (query.id, query.data, query.from_user.id) == (tap["callback_query_id"], "run:1", USER)
    assert query.message.message_id == sent.message_id and query.message.text == "Run it?"
    assert await query.answer("Started")
    with pytest.raises(BadRequest, match="(?i)query is too old"):
        await query.answer("twice")
    [recorded] = tg.callbacks()
    assert recorded["answered"] and recorded["answer"]["text"] == "Started"
    assert [c["params"]["text"] for c in tg.calls("answerCallbackQuery")] == ["Started", "twice"]


async def test_commands_are_stored_and_chat_actions_logged(bot, tg):
    assert await bot.set_my_commands([("new", "Start a session"), ("list", "Sessions")])
    assert [(c.command, c.description) for c in await bot.get_my_commands()] == [
        ("new", "Start a session"),
        ("list", "Sessions"),
    ]
    assert tg.commands()[0]["commands"][0] == {"command": "new", "description": "Start a session"}
    with pytest.raises(BadRequest, match="(?i)bot_command_invalid"):
        await bot.set_my_commands([("Bad Command", "x")])
    assert await bot.send_chat_action(USER, ChatAction.TYPING)
    [action] = tg.calls("sendChatAction")
    assert (
        action["params"] == {"chat_id": str(USER), "action": "typing"} and action["status"] == 200
    )


async def test_a_blocked_user_is_forbidden(bot, tg):
    from telegram.error import Forbidden

    tg.block(USER)
    with pytest.raises(Forbidden, match="blocked"):
        await bot.send_message(USER, "hi")
    with pytest.raises(BadRequest, match="(?i)chat not found"):
        await bot.send_message(-100123, "unknown group")


async def test_an_application_processes_fetched_updates(tg):
    seen: list[str] = []

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await update.message.reply_text(
            f"Hello <b>{update.effective_user.first_name}</b>",
            parse_mode=ParseMode.HTML,
            reply_markup=_buttons([("Ok", "ok")]),
        )

    async def tapped(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        seen.append(update.callback_query.data)
        await update.callback_query.answer()
        await update.callback_query.edit_message_reply_markup(None)

    app = (
        ApplicationBuilder()
        .token(tg.token)
        .base_url(f"{tg.url}/bot")
        .base_file_url(f"{tg.url}/file/bot")
        .updater(None)
        .build()
    )
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CallbackQueryHandler(tapped))
    offset = 0

    async def pump() -> None:
        nonlocal offset
        for update in await app.bot.get_updates(offset=offset, timeout=1):
            offset = update.update_id + 1
            await app.process_update(update)

    async with app:
        tg.send(USER, "/start", first_name="Ada")
        await pump()
        [_, hello] = tg.chat(USER)
        assert (hello["text"], hello["entities"][0]["type"]) == ("Hello Ada", "bold")
        tg.tap(USER, hello["message_id"], "ok")
        await pump()
    assert seen == ["ok"]
    assert tg.chat(USER)[1]["reply_markup"] is None
    assert tg.callbacks()[0]["answered"]


# ------------------------------------------------------------------------------- the process


def _spawn(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], str]:
    full_env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), **(env or {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox.telegram_api", "--port", "0", *args],
        cwd=PROJECT_ROOT,
        env=full_env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    return proc, line


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_the_cli_prints_listening_and_exits_0_on_signal(sig):
    proc, line = _spawn("--token", "1:A", "--token", "2:B", "--bot-username", "demo_bot")
    try:
        assert line.startswith("LISTENING http://127.0.0.1:") and line.endswith("\n")
        url = line.split()[1]
        async with Bot("2:B", base_url=f"{url}/bot") as second:
            assert second.username == "demo_bot2"
        async with Bot("1:A", base_url=f"{url}/bot") as first:
            assert first.username == "demo_bot"
        proc.send_signal(sig)
        assert proc.wait(5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(5)
        proc.stdout.close(), proc.stderr.close(), proc.stdin.close()
    assert _gone(proc.pid)


async def test_tokens_from_the_environment_and_separate_bots(tmp_path):
    with TelegramSandbox(tokens=["11:ONE", "22:TWO"]) as tg:
        assert str(tg.pid) and "11:ONE" not in " ".join(_cmdline(tg.pid))
        tg.send(USER, "to bot one")
        tg.send(USER, "to bot two", token="22:TWO")
        async with (
            Bot("11:ONE", base_url=f"{tg.url}/bot") as one,
            Bot("22:TWO", base_url=f"{tg.url}/bot") as two,
        ):
            assert [u.message.text for u in await one.get_updates()] == ["to bot one"]
            assert [u.message.text for u in await two.get_updates()] == ["to bot two"]
    assert tg.returncode == 0 and _gone(tg.pid)


async def test_the_server_exits_when_its_parent_goes(tmp_path):
    proc, line = _spawn("--exit-on-stdin-eof")
    try:
        assert line.startswith("LISTENING ")
        proc.stdin.close()  # what happens when the parent dies
        assert proc.wait(5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(5)
        proc.stdout.close(), proc.stderr.close()
    assert _gone(proc.pid)


def _cmdline(pid: int) -> list[str]:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return [a.decode() for a in f.read().split(b"\0") if a]


def _png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    rows = b"".join(b"\0" + b"\xff\x00\x00" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


async def test_the_standard_updater_polls_the_sandbox(tg):
    async def ping(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await update.message.reply_text("pong")

    app = (
        ApplicationBuilder()
        .token(tg.token)
        .base_url(f"{tg.url}/bot")
        .base_file_url(f"{tg.url}/file/bot")
        .build()
    )
    app.add_handler(CommandHandler("ping", ping))
    async with app:
        await app.updater.start_polling(poll_interval=0, timeout=1, drop_pending_updates=True)
        await app.start()
        tg.send(USER, "/ping")
        await asyncio.to_thread(tg.wait_for, lambda chat: _bot_texts(chat) == ["pong"], USER)
        await app.updater.stop()
        await app.stop()
    assert tg.calls("deleteWebhook")[0]["params"]["drop_pending_updates"] == "true"


# ------------------------------------------------------------------------------- user-side key


@pytest.mark.parametrize("key", [None, "", "not-the-key"])
def test_the_user_side_refuses_a_request_without_its_key(tg, key):
    """No local process but the one that started the sandbox may act as the user."""
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["X-Sandbox-Key"] = key
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    for path, body in (("send", {"user_id": USER, "text": "/stop all"}), ("health", None)):
        req = urllib.request.Request(f"{tg.url}/_sandbox/{path}", headers=headers,
                                     data=json.dumps(body).encode() if body else None)
        with pytest.raises(urllib.error.HTTPError) as refused:
            opener.open(req, timeout=5)
        assert refused.value.code == 403
        assert "X-Sandbox-Key" in json.loads(refused.value.read())["error"]
    assert tg.pending_updates() == []  # nothing reached the bot
    assert tg.send(USER, "with the key")["message"]["text"] == "with the key"


def test_the_user_key_is_never_in_argv_or_the_environment(tg):
    import psutil

    proc = psutil.Process(tg.pid)
    assert tg.user_key not in " ".join(proc.cmdline())
    assert tg.user_key not in " ".join(proc.environ().values())
