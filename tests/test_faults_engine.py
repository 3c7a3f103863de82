"""The local engine dies under the server: capture goes on, the engine comes back.

llama.cpp runs in a worker process the server owns. These tests kill that process with
SIGKILL at the worst moments (while it evaluates a prompt, while it generates) and load
a model file that makes llama.cpp's loader fail, over a real LSP connection with real
llama.cpp on the suite's tiny GGUF. In each case the pending request is answered with no
items, the user is told, every edit is still recorded (the store rebuilds the document
exactly), and the next completion comes from a new worker.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from goldiff import audit
from goldiff.store import integrity, open_database
from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.lsp_client import Editor, goldiff_client, server_env
from tests.tiny_models import write_tiny_gguf

pytestmark = pytest.mark.faults

LONG_FILE = "".join(f"def handler_{i}(request, value):\n    return value + {i}\n\n" for i in range(60))


async def _complete(client: LanguageClient, uri: str, text: str) -> types.InlineCompletionList | None:
    line = text.count("\n")
    character = len(text) - (text.rfind("\n") + 1)
    return await client.text_document_inline_completion_async(
        types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=line, character=character),
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked),
        )
    )


async def _engine(client: LanguageClient) -> dict[str, Any]:
    stats = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="goldiff.serverStats")
    )
    engine: dict[str, Any] = stats["engine"] or {}
    return engine


async def _new_worker(client: LanguageClient, old_pid: int) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        engine = await _engine(client)
        if engine.get("pid") not in (None, old_pid):
            return engine
        assert time.monotonic() < deadline, "no new engine worker within 60 s"
        await asyncio.sleep(0.05)


async def _kill_in_phase(
    client: LanguageClient, editor: Editor, uri: str, phase: str
) -> tuple[types.InlineCompletionList | None, int]:
    """Start a completion, freeze the worker once it is in `phase`, kill it there.

    SIGSTOP first: if the worker is still in `phase` with its request unanswered while it
    is frozen, the SIGKILL lands in the middle of that request for sure. A request that
    finished before the freeze is tried again on a new cursor position.
    """
    for attempt in range(20):
        text = editor.texts[uri]
        task = asyncio.ensure_future(_complete(client, uri, text))
        deadline = time.monotonic() + 30
        while (engine := await _engine(client)).get("phase") != phase and not task.done():
            assert time.monotonic() < deadline, f"the engine never reached {phase}"
            await asyncio.sleep(0.001)
        if task.done():
            await task
            editor.type(uri, len(editor.texts[uri]), f"# {attempt}\n")
            continue
        pid = int(engine["pid"])
        os.kill(pid, signal.SIGSTOP)
        await asyncio.sleep(0.2)
        still = await _engine(client)
        if still.get("phase") == phase and not task.done():
            os.kill(pid, signal.SIGKILL)
            return await asyncio.wait_for(task, 60), pid
        os.kill(pid, signal.SIGCONT)
        await task
        editor.type(uri, len(editor.texts[uri]), f"# {attempt}\n")
    raise AssertionError(f"could not catch the engine in {phase}")


@pytest.mark.parametrize("phase", ["prefill", "generate"])
async def test_engine_killed_mid_request(tmp_path: Path, phase: str) -> None:
    home = tmp_path / "home"
    model = write_tiny_gguf(tmp_path / "models" / "tiny.gguf")
    uri = (tmp_path / "long.py").as_uri()
    options = {"mode": "local", "local": {"model": str(model)}}
    # One prompt token per decode: prompt evaluation lasts long enough to be caught.
    env = server_env(home, GOLDIFF_COMPLETION_TIMEOUT="60", GOLDIFF_PREFILL_CHUNK="1")
    async with goldiff_client(home, options=options, env=env) as client:
        editor = Editor(client)
        editor.open(uri, "import os\n")
        first = await _complete(client, uri, editor.texts[uri])
        assert first is not None and first.items  # a warm worker answers
        # A long file: the prompt takes a while, and so does a block-mode generation.
        editor.type(uri, len(editor.texts[uri]), "")
        editor.replace(uri, len(editor.texts[uri]), len(editor.texts[uri]), LONG_FILE)
        result, killed = await _kill_in_phase(client, editor, uri, phase)
        assert result is not None and not result.items  # answered, with nothing to show

        # Capture never stopped: typing goes on while the engine restarts.
        editor.type(uri, len(editor.texts[uri]), "def after_the_crash():\n    return 1\n")
        engine = await _new_worker(client, killed)
        assert engine["restarts"] >= 1 and engine["lastRestartMs"] is not None
        again = await _complete(client, uri, editor.texts[uri])
        assert again is not None and again.items  # from the new worker
        told = [m.message for m in client.messages if "engine" in m.message]
        assert len(told) == 1 and "restarting" in told[0]
    db, _ = open_database(home / "traces.db")
    assert integrity(db) == "ok"
    assert audit.rebuild(db, uri).text == editor.texts[uri]


def _loader_crasher(tiny: Path, out: Path) -> Path:
    """A GGUF that passes the magic check and the header, with tensor data llama.cpp
    cannot use: every byte after the header's first 1 KiB is garbage."""
    data = bytearray(tiny.read_bytes())
    rng = __import__("random").Random(7)
    for i in range(1024, len(data)):
        data[i] = rng.randrange(256)
    out.write_bytes(bytes(data))
    return out


async def test_a_model_that_crashes_the_loader_is_reported_and_capture_goes_on(tmp_path: Path) -> None:
    home = tmp_path / "home"
    tiny = write_tiny_gguf(tmp_path / "models" / "tiny.gguf")
    bad = _loader_crasher(tiny, tmp_path / "models" / "garbage.gguf")
    uri = (tmp_path / "g.py").as_uri()
    options = {"mode": "local", "local": {"model": str(bad)}}
    async with goldiff_client(
        home, options=options, env=server_env(home, GOLDIFF_COMPLETION_TIMEOUT="60")
    ) as client:
        editor = Editor(client)
        editor.open(uri, "x = 1\n")
        result = await _complete(client, uri, editor.texts[uri])
        assert result is None or not result.items
        editor.type(uri, len(editor.texts[uri]), "y = 2\n")
        deadline = time.monotonic() + 60
        while not [m for m in client.messages if str(bad) in m.message]:
            assert time.monotonic() < deadline, "the broken model was never reported"
            await asyncio.sleep(0.05)
        # Fixing the setting brings completions back, in the same session.
        client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"local": {"model": str(tiny)}})
        )
        editor.type(uri, len(editor.texts[uri]), "z = ")
        fixed = await _complete(client, uri, editor.texts[uri])
        assert fixed is not None and fixed.items
    db, _ = open_database(home / "traces.db")
    assert audit.rebuild(db, uri).text == editor.texts[uri]
