"""The sandboxes' voice side, seen through the real clients: a user's voice note and audio file
arrive in python-telegram-bot as Voice and Audio objects whose getFile download gives the same
bytes, and the model sandbox's transcription endpoint answers like OpenAI's (errors included)
through the bot's own Transcriber."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pytest
from telegram import Bot

from bot.voice import Transcriber, TranscriptionFailed
from sandbox.telegram_api import SandboxError, TelegramSandbox
from wire.settings import BotSettings, VoiceTuning

pytestmark = pytest.mark.timeout(30)
USER = 4242


async def test_a_voice_note_and_an_audio_file_reach_the_bot_and_download() -> None:
    with TelegramSandbox() as tg:
        async with Bot(**tg.bot_kwargs) as bot:
            tg.send_voice(USER, b"OggS voice bytes", duration=4, caption="listen")
            tg.send_audio(USER, b"ID3 song bytes", filename="song.mp3", title="Song",
                          duration=120)
            first, second = await bot.get_updates(timeout=1)
            voice, audio = first.message.voice, second.message.audio
            assert first.message.caption == "listen"
            assert (voice.duration.total_seconds() if hasattr(voice.duration, "total_seconds")
                    else voice.duration) == 4
            assert (voice.mime_type, voice.file_size) == ("audio/ogg", 16)
            assert (audio.file_name, audio.mime_type, audio.title) == ("song.mp3", "audio/mpeg",
                                                                      "Song")
            for media, data in ((voice, b"OggS voice bytes"), (audio, b"ID3 song bytes")):
                tg_file = await bot.get_file(media.file_id)
                buf = io.BytesIO()
                await tg_file.download_to_memory(buf)
                assert buf.getvalue() == data
            assert (await bot.get_file(voice.file_id)).file_path.endswith("/voice/file_1.oga")
        with pytest.raises(SandboxError, match="must not be empty"):
            tg.send_voice(USER, b"")
        with pytest.raises(SandboxError, match="duration must be 0 or more"):
            tg.send_voice(USER, b"x", duration=-1)
    assert tg.returncode == 0


async def test_the_transcription_endpoint_answers_like_openai(model_api, tmp_path: Path) -> None:
    url = f"{model_api.url}/v1/audio/transcriptions"
    async with httpx.AsyncClient(timeout=10) as client:
        no_file = await client.post(url, data={"model": "whisper-1"},
                                    files={"other": ("a", b"x")})
        no_model = await client.post(url, files={"file": ("a.ogg", b"hi", "audio/ogg")})
        as_text = await client.post(url, data={"model": "m", "response_format": "text"},
                                    files={"file": ("a.ogg", b"plain words", "audio/ogg")})
        not_multipart = await client.post(url, json={"model": "m"})
    assert no_file.status_code == 400 and no_file.json()["error"]["param"] == "file"
    assert no_model.status_code == 400 and no_model.json()["error"]["param"] == "model"
    assert as_text.status_code == 200 and as_text.text == "plain words"
    assert not_multipart.status_code == 400

    def transcriber(base: str, timeout: float = 10.0, key: str | None = "sk-test") -> Transcriber:
        settings = BotSettings(state_dir=str(tmp_path), runtime_dir=str(tmp_path),
                               voice=VoiceTuning(api_base_url=base, timeout_seconds=timeout))
        return Transcriber(settings, key=key)

    # No key (a local whisper server): no Authorization header at all.
    keyless = transcriber(f"{model_api.url}/v1/", key=None)
    assert await keyless.transcribe("k.ogg", b"no key here", "audio/ogg") == "no key here"
    assert model_api.transcriptions()[-1]["authorization"] is None

    good = transcriber(f"{model_api.url}/v1")
    assert await good.transcribe("n.ogg", b"hello   there", "audio/ogg") == "hello there"
    with pytest.raises(TranscriptionFailed, match="answered 503: The engine is currently"):
        await good.transcribe("n.ogg", b"busy #stt:error=503", "audio/ogg")
    with pytest.raises(TranscriptionFailed, match="did not answer within 0.3 s"):
        await transcriber(f"{model_api.url}/v1", 0.3).transcribe("n.ogg", b"#stt:slow=2000 x",
                                                                 None)
    with pytest.raises(TranscriptionFailed, match="could not be reached"):
        await transcriber("http://127.0.0.1:9/v1").transcribe("n.ogg", b"x", None)
    records = model_api.transcriptions()
    assert [r["authorization"] for r in records][-3:] == ["Bearer sk-test"] * 3
    assert records[-3]["filename"] == "n.ogg" and records[-3]["model"] == "whisper-1"
