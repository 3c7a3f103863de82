"""Cancelling a server command stops it: `$/cancelRequest` reaches the running handler,
and a cancelled export stops and leaves no file behind."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
from goldiff.features import export as export_module
from goldiff.features.export import export_for_server
from goldiff.lsp import build_server
from lsprotocol import types

from tests.test_export import fill_store


async def test_cancel_request_cancels_the_running_command_task(tmp_path: Path) -> None:
    server = build_server(tmp_path / "home")
    started, finished = asyncio.Event(), asyncio.Event()
    seen: list[str] = []

    @server.command("goldiff.testSlow")
    async def slow(ls: Any, *args: Any) -> str:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise
        finally:
            finished.set()
        return "done"

    protocol = server.protocol
    replies: list[Any] = []
    handler = protocol._get_handler(types.WORKSPACE_EXECUTE_COMMAND)
    protocol._execute_handler(
        "request-1",
        handler,
        callback=replies.append,
        args=(types.ExecuteCommandParams(command="goldiff.testSlow", arguments=[]),),
    )
    await asyncio.wait_for(started.wait(), 30)
    protocol._handle_cancel_notification("request-1")
    await asyncio.wait_for(finished.wait(), 30)
    assert seen == ["cancelled"]
    assert replies and replies[0].cancelled()
    server.close_store()


async def test_a_cancelled_export_stops_and_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    fill_store(home)
    server = build_server(home)
    server.protocol.client_capabilities = types.ClientCapabilities()  # as after initialize
    in_progress, release = threading.Event(), threading.Event()
    real_export = export_module.export

    def held_export(db: Any, options: Any, out: Path, progress: Any = None) -> Any:
        # Hold the worker between two progress steps until the request was cancelled.
        def step(done: int, total: int) -> None:
            in_progress.set()
            release.wait(30)
            progress(done, total)

        return real_export(db, options, out, step)

    monkeypatch.setattr(export_module, "export", held_export)
    out = tmp_path / "out.jsonl"
    task = asyncio.ensure_future(export_for_server(server, {"format": "sft", "path": str(out)}))
    await asyncio.to_thread(in_progress.wait, 30)
    task.cancel()
    for _ in range(10):  # let the handler see the cancellation before the worker goes on
        await asyncio.sleep(0)
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not out.exists()
    assert not list(tmp_path.glob("out.jsonl*"))

    # Not cancelled, the same export writes its file.
    monkeypatch.setattr(export_module, "export", real_export)
    result = await export_for_server(server, {"format": "sft", "path": str(out)})
    assert out.exists() and result["counts"]["all"] > 0
    server.close_store()
