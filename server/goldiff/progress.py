"""Work-done progress for a long server command (an export, a model download).

The editor shows a command's progress in one notification with percentages and a
Cancel button. A client that wants that notification to be its own (so it can word it
and offer "Reveal" afterwards) passes a token it created (`progressToken`); otherwise the
server creates one when the client supports work-done progress. Cancel arrives either as
`$/cancelRequest` (the command's task is cancelled) or as
`window/workDoneProgress/cancel` on the token; both set `cancelled`, which the worker
thread checks between steps. Work that must not weigh on (or crash) the server runs in a
child process instead (`run_child`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import uuid
from collections.abc import Callable
from typing import TypeVar

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from goldiff.errors import GoldiffError

log = logging.getLogger(__name__)
T = TypeVar("T")


class CommandProgress:
    def __init__(self, ls: LanguageServer, token: str | None, loop: asyncio.AbstractEventLoop) -> None:
        self.ls = ls
        self.token = token
        self.loop = loop
        self.cancelled = threading.Event()
        self._percent = -1

    def report(self, done: int, total: int | None, message: str | None = None) -> None:
        """From any thread: `done` of `total` steps; only whole-percent changes are sent."""
        if self.token is None or not total:
            return
        percent = max(0, min(100, int(100 * done / total)))
        if percent == self._percent:
            return
        self._percent = percent
        value = types.WorkDoneProgressReport(message=message or f"{done}/{total}", percentage=percent)
        self.loop.call_soon_threadsafe(self.ls.work_done_progress.report, self.token, value)

    def end(self, message: str | None = None) -> None:
        if self.token is not None:
            with contextlib.suppress(Exception):
                self.ls.work_done_progress.end(self.token, types.WorkDoneProgressEnd(message=message))
            # pygls keeps a future per token for good; a long session exports many times.
            self.ls.work_done_progress.tokens.pop(self.token, None)


async def begin_progress(ls: LanguageServer, title: str, client_token: str | None) -> CommandProgress:
    """Start the command's progress on the client's token, or on a new one if the client may."""
    token = client_token
    if token is None:
        caps = ls.client_capabilities
        if caps is not None and caps.window is not None and caps.window.work_done_progress:
            token = f"goldiff-{uuid.uuid4().hex[:12]}"
            try:
                await ls.work_done_progress.create_async(token)
            except Exception:  # the client refused: work without progress
                token = None
    progress = CommandProgress(ls, token, asyncio.get_running_loop())
    if token is not None:
        try:
            begin = types.WorkDoneProgressBegin(title=title, percentage=0, cancellable=True)
            ls.work_done_progress.begin(token, begin)
        except Exception as exc:  # a token the client already used: no progress, still work
            log.warning("no progress for %s: %s", title, exc)
            progress.token = None
            return progress
        future = ls.work_done_progress.tokens.get(token)
        if future is not None:
            future.add_done_callback(lambda f: progress.cancelled.set() if f.cancelled() else None)
    return progress


async def on_thread(progress: CommandProgress, run: Callable[[], T]) -> T:
    """`run` off the event loop (a long one must not stall typing and capture); a cancel sets
    `progress.cancelled` and waits until the thread notices, within one progress step."""
    work = asyncio.ensure_future(asyncio.to_thread(run))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        progress.cancelled.set()
        with contextlib.suppress(Exception):
            await work
        raise
    finally:
        progress.end()


async def run_child(command: list[str], failure: str) -> bytes:
    """Run `command` (a `goldiff` command line) in a child process and return its stdout.

    A non-zero exit is a `GoldiffError` with the last line the child wrote to stderr
    (`failure` when it wrote none). A cancelled request terminates the child: training
    checkpoints on SIGTERM, so the next run resumes.
    """
    proc = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await proc.communicate()
    except asyncio.CancelledError:
        proc.terminate()
        raise
    if proc.returncode != 0:
        message = (err.decode(errors="replace").strip().splitlines() or [failure])[-1]
        raise GoldiffError(message.removeprefix("Error: "))
    return out
