"""`goldiff.pullModel`: the editor's "Download…" in the model picker.

The download itself is `goldiff.sources.pull` (resumable, checksum- and GGUF-checked,
registered through the registry); here it runs off the event loop, so typing and capture
go on, with work-done progress in percent, and stops when the editor cancels. A cancelled
download keeps its partial file: "Download…" with the same source resumes it. With
`describe` it only says what would be fetched (size, checksum, licence), for the editor
to show before the user agrees.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

from goldiff import protocol
from goldiff.errors import ConfigError
from goldiff.progress import begin_progress
from goldiff.sources.pull import Pulled, describe, pull, resolve_source


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"


async def pull_for_server(ls: Any, args: Sequence[Any]) -> dict[str, Any]:
    params = protocol.structure(list(args), protocol.PullModelArgs)
    if not params.source.strip():
        raise ConfigError("goldiff.pullModel needs a source: hf://OWNER/REPO/FILE.gguf, a URL or a path")
    if params.describe:
        return await asyncio.to_thread(describe, params.source)
    filename = resolve_source(params.source).filename  # a bad source fails before any progress
    progress = await begin_progress(ls, f"Goldiff: downloading {filename}", params.progress_token)

    def report(done: int, total: int | None) -> None:
        progress.report(done, total, f"{_mib(done)} of {_mib(total)}" if total else _mib(done))

    def run() -> Pulled:
        return pull(
            ls.home,
            params.source,
            name=params.name,
            sha256=params.sha256,
            progress=report,
            cancelled=progress.cancelled.is_set,
        )

    work = asyncio.ensure_future(asyncio.to_thread(run))
    try:
        pulled = await asyncio.shield(work)
    except asyncio.CancelledError:
        progress.cancelled.set()  # the thread stops at its next block; the .part file stays
        with contextlib.suppress(Exception):
            await work
        raise
    finally:
        progress.end()
    return pulled.as_dict()
