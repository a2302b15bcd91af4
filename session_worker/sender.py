"""Files from the session to its chat: Claude's send_file tool and the owner's /get.

Both go the same way: session_worker.outfiles judges the path (the working dir and the uploads
dir are the only roots), and an accepted file leaves as a durable `FileOut` event in the outbox
like every other event, so a bot crash replays it. The event carries the file's resolved path,
not its bytes: the bot reads the file when it sends it (bot.files_out).

It must never emit a FileOut for a path outfiles refused.
"""
from __future__ import annotations

import logging
from pathlib import Path

from session_worker.emitter import Emitter
from session_worker.outfiles import Outgoing, judge
from wire import messages as m

log = logging.getLogger(__name__)


class Sender:
    def __init__(self, out: Emitter, work_dir: Path, uploads_dir: Path) -> None:
        self._out = out
        self.work_dir = work_dir
        self.roots = [work_dir, uploads_dir]

    def _emit(self, f: Outgoing, caption: str, chat_id: int | None) -> None:
        log.info("event=file_out name=%r size=%d photo=%s", f.name, f.size, f.photo)
        self._out.emit(m.FileOut(path=f.path, name=f.name, size=f.size, caption=caption,
                                 photo=f.photo), chat_id=chat_id)

    async def tool(self, path: str, caption: str) -> str | None:
        """send_file: None when the file is on its way, else the sentence Claude reads."""
        verdict = judge(path, self.work_dir, self.roots)
        if not isinstance(verdict, Outgoing):
            log.info("event=file_out_refused path=%r", path)
            return verdict.sentence
        self._emit(verdict, caption, None)
        return None

    def get(self, msg: m.GetFile) -> m.Ok | m.Error:
        """/get PATH from the chat."""
        verdict = judge(msg.path, self.work_dir, self.roots)
        if not isinstance(verdict, Outgoing):
            return m.Error(id=msg.id, code=m.E_BAD_REQUEST, message=verdict.sentence)
        self._emit(verdict, "", msg.chat_id)
        return m.Ok(id=msg.id)
