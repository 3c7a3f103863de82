"""The editor's documents and terminal, as the recorder captures them."""

from __future__ import annotations

import time
from typing import Any

from lsprotocol import types

from goldiff import protocol
from goldiff.features.outcomes import notified
from goldiff.server import GoldiffServer


def register(server: GoldiffServer) -> None:
    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: GoldiffServer, params: types.DidOpenTextDocumentParams) -> None:
        doc = params.text_document
        ls.recorder.open(doc.uri, doc.language_id, doc.version, doc.text)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: GoldiffServer, params: types.DidChangeTextDocumentParams) -> None:
        started = time.perf_counter()
        doc = params.text_document
        ls.recorder.change(doc.uri, doc.version, list(params.content_changes))
        ls.change_timings.append(time.perf_counter() - started)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE, types.SaveOptions(include_text=True))
    def did_save(ls: GoldiffServer, params: types.DidSaveTextDocumentParams) -> None:
        ls.recorder.save(params.text_document.uri, params.text)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: GoldiffServer, params: types.DidCloseTextDocumentParams) -> None:
        ls.recorder.close(params.text_document.uri)

    @server.feature(protocol.TERMINAL_COMMAND)
    def terminal_command(ls: GoldiffServer, params: Any) -> None:
        if command := notified(params, protocol.TerminalCommand, protocol.TERMINAL_COMMAND):
            ls.recorder.terminal_command(command)
