"""`goldiff.exportTraces {format, path, filters}`: an export asked for by the editor.

The export runs on a worker thread, so a long one never stalls typing and capture; it
reports work-done progress when the editor supports it, and a cancelled request stops
at the next progress step and leaves no file behind.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlite_utils

from goldiff.errors import ExportError
from goldiff.export.files import ExportOptions, ExportResult, default_out, export
from goldiff.export.filters import ExportFilters, parse_time

if TYPE_CHECKING:
    from goldiff.lsp import GoldiffServer

log = logging.getLogger(__name__)


class ExportCancelled(ExportError):
    """Raised inside the export worker when the editor cancelled the request."""


# Keys of `goldiff.exportTraces`' `filters` object that are export options, not filters.
_OPTION_KEYS = {"split", "testFraction", "splitAt", "noCode", "rows"}


def options_from_wire(fmt: str, raw: Mapping[str, Any] | None) -> ExportOptions:
    """`ExportOptions` from the `goldiff.exportTraces` arguments (camelCase filters)."""
    raw = dict(raw or {})
    opts = {k: raw.pop(k) for k in list(raw) if k in _OPTION_KEYS}
    split_at = parse_time(opts["splitAt"], "splitAt") if opts.get("splitAt") is not None else None
    try:
        fraction = float(opts.get("testFraction", 0.1))
    except (TypeError, ValueError) as exc:
        raise ExportError("testFraction is a share between 0 and 1, e.g. 0.1") from exc
    return ExportOptions(
        format=fmt,
        rows=opts.get("rows"),
        filters=ExportFilters.from_mapping(raw),
        split=bool(opts.get("split")) or split_at is not None,
        test_fraction=fraction,
        split_at=split_at,
        no_code=bool(opts.get("noCode")),
    )


def register(server: GoldiffServer) -> None:
    """Add `goldiff.exportTraces {format, path, filters}` to the language server."""

    # `ls: Any`: pygls resolves handler annotations at runtime, and importing the server
    # class here would make this module import the language server.
    @server.command("goldiff.exportTraces")
    async def export_traces(ls: Any, *args: Any) -> dict[str, Any]:
        return await export_for_server(ls, args)


async def export_for_server(ls: GoldiffServer, args: Sequence[Any]) -> dict[str, Any]:
    import asyncio

    from goldiff import protocol
    from goldiff.home import exports_dir
    from goldiff.progress import begin_progress

    try:
        params = protocol.structure(list(args), protocol.ExportArgs)
    except protocol.PayloadError as exc:
        raise ExportError(str(exc)) from exc
    options = options_from_wire(params.format, params.filters)
    exports = exports_dir(ls.home)
    out = Path(params.path).expanduser() if params.path else default_out(exports, options)
    if not out.is_absolute():
        out = exports / out
    ls.store.flush()  # what the editor sent up to now belongs in the export

    # The editor shows a long export's progress (percent, Cancel) when it supports it.
    progress = await begin_progress(ls, f"Goldiff: exporting {options.format}", params.progress_token)
    # Set when the editor cancels (the request or the progress): the worker thread stops at
    # its next progress step, and a file it finished meanwhile is removed, so cancel leaves nothing.
    cancelled = progress.cancelled

    def report(done: int, total: int) -> None:
        if cancelled.is_set():
            raise ExportCancelled("the export was cancelled")
        progress.report(done, total)

    def run() -> ExportResult | None:
        db = ls.store.reader()
        try:
            result = export(db, options, out, report)
        except ExportCancelled:
            return None
        finally:
            db.conn.close()
        if cancelled.is_set():
            for path in result.paths.values():
                path.unlink(missing_ok=True)
            return None
        return result

    work = asyncio.ensure_future(asyncio.to_thread(run))
    try:
        # Off the event loop: a long export must not stall typing and capture.
        result = await asyncio.shield(work)
    except asyncio.CancelledError:
        cancelled.set()
        with contextlib.suppress(Exception):
            await work  # the thread notices within one progress step
        log.info("export to %s cancelled", out)
        raise
    finally:
        progress.end()
    if result is None:  # cancelled from another path than this task
        raise ExportError("the export was cancelled")
    return with_explanation(ls.store.reader(), options, result)


def with_explanation(
    db: sqlite_utils.Database, options: ExportOptions, result: ExportResult
) -> dict[str, Any]:
    """The export's answer; with `why` (what to do) when it wrote no rows. Closes `db`."""
    answer = result.as_dict()
    try:
        if not any(result.counts.values()):
            from goldiff.export_why import explain_empty

            answer["why"] = explain_empty(db, options)
    finally:
        db.conn.close()
    return answer
