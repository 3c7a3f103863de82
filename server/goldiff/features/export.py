"""`goldiff.exportTraces {format, path, filters}`: the store as training rows (`goldiff.export`).

The export runs on a worker thread, so a long one never stalls typing and capture; it
reports work-done progress when the editor supports it, and a cancelled request stops
at the next progress step and leaves no file behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

from goldiff import protocol
from goldiff.errors import ExportCancelled, ExportError, PayloadError
from goldiff.export import ExportResult, default_out, export, options_from_wire, with_explanation
from goldiff.home import exports_dir
from goldiff.progress import begin_progress, on_thread
from goldiff.server import GoldiffServer

log = logging.getLogger(__name__)


def register(server: GoldiffServer) -> None:
    server.command(protocol.EXPORT_TRACES)(export_for_server)


async def export_for_server(ls: GoldiffServer, *args: Any) -> dict[str, Any]:
    try:
        params = protocol.structure(list(args), protocol.ExportArgs)
    except PayloadError as exc:
        raise ExportError(str(exc)) from exc
    options = options_from_wire(params.format, params.filters)
    exports = exports_dir(ls.home)
    out = Path(params.path).expanduser() if params.path else default_out(exports, options)
    if not out.is_absolute():
        out = exports / out
    ls.store.flush()  # what the editor sent up to now belongs in the export

    # The editor shows a long export's progress (percent, Cancel) when it supports it.
    progress = await begin_progress(ls, f"Goldiff: exporting {options.format}", params.progress_token)
    # `progress.cancelled` is set when the editor cancels (the request or the progress): the worker
    # thread stops at its next progress step, and removes a file it finished meanwhile: nothing is left.

    def report(done: int, total: int) -> None:
        if progress.cancelled.is_set():
            raise ExportCancelled("the export was cancelled")
        progress.report(done, total)

    def run() -> ExportResult | None:
        with contextlib.closing(ls.store.reader()) as db:
            try:
                result = export(db, options, out, report)
            except ExportCancelled:
                return None
        if progress.cancelled.is_set():
            for path in result.paths.values():
                path.unlink(missing_ok=True)
            return None
        return result

    try:
        result = await on_thread(progress, run)
    except asyncio.CancelledError:
        log.info("export to %s cancelled", out)
        raise
    if result is None:  # cancelled from another path than this task
        raise ExportError("the export was cancelled")
    return with_explanation(ls.store.reader(), options, result)
