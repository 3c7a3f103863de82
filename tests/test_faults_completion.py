"""Faults around completions: a model file deleted while serving, a frontier endpoint that
answers garbage, hangs, fails or throttles, and a client that disconnects mid-request.

In each case the server keeps serving (or exits cleanly when its client is gone) and
what it recorded stays intact.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from goldiff import audit
from goldiff.store import integrity, open_database
from lsprotocol import types

from tests.lsp_client import Editor, goldiff_client, server_env
from tests.pipe_client import PipeClient
from tests.tiny_models import write_tiny_gguf

pytestmark = pytest.mark.faults


class _Frontier(BaseHTTPRequestHandler):
    behaviour = "garbage"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        behaviour = type(self).behaviour
        if behaviour == "hang":
            time.sleep(20)
            return
        if behaviour == "garbage":
            body, status = b"<html>not json at all", 200
        elif behaviour == "500":
            body, status = b'{"error": {"message": "internal"}}', 500
        else:  # 429
            body, status = b'{"error": {"message": "slow down"}}', 429
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Retry-After", "0")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def frontier() -> Iterator[tuple[str, type[_Frontier]]]:
    handler = type("Frontier", (_Frontier,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", handler
    finally:
        server.shutdown()


async def _complete(client: Any, uri: str, line: int, character: int) -> Any:
    return await client.text_document_inline_completion_async(
        types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=line, character=character),
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked),
        )
    )


@pytest.mark.parametrize("behaviour", ["garbage", "hang", "500", "429"])
async def test_a_failing_frontier_never_stops_the_server(
    tmp_path: Path, frontier: tuple[str, type[_Frontier]], behaviour: str
) -> None:
    base_url, handler = frontier
    handler.behaviour = behaviour
    home = tmp_path / "home"
    uri = (tmp_path / "f.py").as_uri()
    options = {
        "mode": "frontier",
        "frontier": {"provider": "openai", "baseUrl": base_url, "model": "m", "apiKey": "k"},
    }
    env = server_env(home, GOLDIFF_COMPLETION_TIMEOUT="3")
    async with goldiff_client(home, options=options, env=env) as client:
        editor = Editor(client)
        editor.open(uri, "def f():\n    ")
        started = time.monotonic()
        result = await asyncio.wait_for(_complete(client, uri, 1, 4), 60)
        assert time.monotonic() - started < 40  # bounded by the time budget, not the endpoint
        assert result is None or not result.items
        editor.type(uri, len(editor.texts[uri]), "return 1\n")  # capture goes on
        status = await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="goldiff.status")
        )
        assert status["mode"] == "frontier"
        await client.workspace_execute_command_async(types.ExecuteCommandParams(command="goldiff.stats"))
    assert audit.rebuild(open_database(home / "traces.db")[0], uri).text == editor.texts[uri]


async def test_model_file_deleted_while_serving(tmp_path: Path) -> None:
    home = tmp_path / "home"
    model = write_tiny_gguf(tmp_path / "models" / "tiny.gguf")
    uri = (tmp_path / "m.py").as_uri()
    options = {"mode": "local", "local": {"model": str(model)}}
    async with goldiff_client(
        home, options=options, env=server_env(home, GOLDIFF_COMPLETION_TIMEOUT="60")
    ) as client:
        editor = Editor(client)
        editor.open(uri, "def f():\n    ")
        first = await _complete(client, uri, 1, 4)
        assert first is not None and first.items  # the model answers while its file exists
        shutil.rmtree(model.parent)
        # The loaded model keeps answering or the server says what is wrong; either way it serves.
        await _complete(client, uri, 1, 4)
        client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"local": {"model": str(model)}})
        )
        editor.type(uri, len(editor.texts[uri]), "return 2\n")
        await _complete(client, uri, 2, 0)
        status = await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="goldiff.status")
        )
        assert status["mode"] == "local"
    assert audit.rebuild(open_database(home / "traces.db")[0], uri).text == editor.texts[uri]


def test_client_disconnect_mid_request(tmp_path: Path, frontier: tuple[str, type[_Frontier]]) -> None:
    base_url, handler = frontier
    handler.behaviour = "hang"
    home = tmp_path / "home"
    uri = "file:///disconnect/d.py"
    client = PipeClient([sys.executable, "-m", "goldiff", "serve"], server_env(home))
    client.initialize(
        {
            "capture": {"enabled": True},
            "mode": "frontier",
            "frontier": {"provider": "openai", "baseUrl": base_url, "model": "m", "apiKey": "k"},
        }
    )
    client.notify(
        "textDocument/didOpen",
        {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": "x = 1\n"}},
    )
    client.write(
        PipeClient.encode(
            {
                "jsonrpc": "2.0",
                "id": 99,
                "method": "textDocument/inlineCompletion",
                "params": {
                    "textDocument": {"uri": uri},
                    "position": {"line": 1, "character": 0},
                    "context": {"triggerKind": 1},
                },
            }
        )
    )
    time.sleep(0.5)
    assert client.proc.stdin is not None
    client.proc.stdin.close()  # the editor is gone, mid-request
    assert client.proc.wait(timeout=60) is not None  # the server notices and exits
    db, _ = open_database(home / "traces.db")
    assert integrity(db) == "ok"
    assert audit.rebuild(db, uri).text == "x = 1\n"
