"""A real LSP client for tests: starts `python -m goldiff serve` over stdio.

`Editor` keeps the client's own copy of each document and turns edits into incremental
LSP changes with UTF-16 positions, so tests can compare the store's rebuilt text with
what an editor holds, byte for byte.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient


def utf16_pos(text: str, offset: int) -> types.Position:
    before = text[:offset]
    line = before.count("\n")
    col_text = before[before.rfind("\n") + 1 :]
    return types.Position(line=line, character=len(col_text.encode("utf-16-le")) // 2)


class Editor:
    """What an editor does: holds texts and versions, sends didOpen/didChange/didSave."""

    def __init__(self, client: LanguageClient) -> None:
        self.client = client
        self.texts: dict[str, str] = {}
        self.versions: dict[str, int] = {}

    def open(self, uri: str, text: str, language: str = "python") -> None:
        self.texts[uri] = text
        self.versions[uri] = 1
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(uri=uri, language_id=language, version=1, text=text)
            )
        )

    def replace(self, uri: str, start: int, end: int, new_text: str) -> None:
        """Replace code points [start, end) with `new_text`, as one incremental change."""
        text = self.texts[uri]
        rng = types.Range(start=utf16_pos(text, start), end=utf16_pos(text, end))
        self.texts[uri] = text[:start] + new_text + text[end:]
        self.versions[uri] += 1
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=self.versions[uri]),
                content_changes=[types.TextDocumentContentChangePartial(range=rng, text=new_text)],
            )
        )

    def type(self, uri: str, offset: int, text: str) -> int:
        """Type `text` one character at a time at `offset`; return the offset after it."""
        for ch in text:
            self.replace(uri, offset, offset, ch)
            offset += 1
        return offset

    def save(self, uri: str) -> None:
        self.client.text_document_did_save(
            types.DidSaveTextDocumentParams(
                text_document=types.TextDocumentIdentifier(uri=uri), text=self.texts[uri]
            )
        )


def server_env(home: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["GOLDIFF_HOME"] = str(home)
    env.update(extra)
    return env


@contextlib.asynccontextmanager
async def goldiff_client(
    home: Path,
    *,
    workspace: Path | None = None,
    options: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    server_args: list[str] | None = None,
    testing: bool = False,
) -> AsyncIterator[LanguageClient]:
    """A client talking to a fresh `goldiff serve` with capture enabled by default.

    `testing`: the server of `tests.testing_server` (a logical clock and the test-only
    `goldiff.test.suggest`) instead of the product's.
    """
    command = [sys.executable, "-m", "tests.testing_server"] if testing else [sys.executable, "-m", "goldiff"]
    config = ClientServerConfig(
        server_command=[*command, "serve", *(server_args or [])],
        server_env=env or server_env(home),
    )
    client = await config.start()
    init = {"capture": {"enabled": True}, "mode": "local"}
    if options:
        init.update(options)
    folders = [types.WorkspaceFolder(uri=workspace.as_uri(), name="ws")] if workspace else None
    await client.initialize_session(
        types.InitializeParams(
            capabilities=types.ClientCapabilities(),
            initialization_options=init,
            workspace_folders=folders,
            client_info=types.ClientInfo(name="goldiff-tests", version="1"),
        )
    )
    try:
        yield client
    finally:
        server = client._server
        if server is not None and server.returncode is None:
            try:
                await asyncio.wait_for(client.shutdown_session(), 30)
            except Exception:
                server.kill()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.stop(), 10)


def send_raw(client: LanguageClient, message: dict[str, Any] | bytes) -> None:
    """Write a message to the server exactly as given, bypassing the client's typing."""
    import json

    body = message if isinstance(message, bytes) else json.dumps(message).encode()
    client.protocol.writer.write(f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
