"""`goldiff.pullModel` and `goldiff.compare`: getting a model, and weighing it against another.

A download runs on a worker thread with work-done progress in percent and stops when the
editor cancels (its partial file stays, so the same source resumes); a comparison runs
`goldiff eval` in a child process on the store's newest held-out gold.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

from goldiff import protocol
from goldiff.compare import eval_command, label, recorded_figures
from goldiff.errors import ConfigError
from goldiff.home import exports_dir
from goldiff.progress import begin_progress, on_thread, run_child
from goldiff.server import GoldiffServer
from goldiff.sources.pull import Pulled, describe, pull, resolve_source


def register(server: GoldiffServer) -> None:
    server.command(protocol.PULL_MODEL)(pull_model)
    server.command(protocol.COMPARE)(compare)


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"


async def pull_model(ls: GoldiffServer, *args: Any) -> dict[str, Any]:
    """Fetch a GGUF into the registry (the model picker's "Download…")."""
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

    # A cancel stops the thread at its next block; the .part file stays.
    return (await on_thread(progress, run)).as_dict()


async def compare(ls: GoldiffServer, *args: Any) -> dict[str, Any]:
    """The current model beside another on recent held-out gold (`goldiff eval`)."""
    params = protocol.structure(list(args), protocol.CompareArgs)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    out = exports_dir(ls.home) / f"compare-{stamp}"
    command = eval_command(ls.home, params, out)
    ls.store.flush()  # the newest gold belongs in the comparison
    await run_child(command, "the evaluation failed")
    report = json.loads((out / "eval.json").read_text("utf-8"))
    with contextlib.closing(ls.store.reader()) as db:
        recorded = recorded_figures(db)
    return {
        "recorded": recorded,
        "current": label(params.current),
        "other": label(params.other),
        "report": report,
        "folder": str(out),
        "markdown": str(out / "report.md"),
    }
