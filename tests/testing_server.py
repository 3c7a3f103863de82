"""`python -m tests.testing_server serve`: `goldiff serve --clock logical` plus test-only commands.

Tests drive time with the server's own `goldiff.advanceClock` and need suggestions without
a model; `goldiff.test.suggest {uri, line, character, text}` records one at a position, as
the completion service would, and hands it to outcome tracking. It exists only here: the
product server has no test switch.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Any

import attrs
from goldiff import cli, lsp
from goldiff.clock import ClockMode
from goldiff.protocol import structure
from goldiff.server import GoldiffServer

SUGGEST = "goldiff.test.suggest"


@attrs.define
class SuggestArgs:
    uri: str
    line: int
    character: int
    text: str


def register_test_commands(server: GoldiffServer) -> None:
    @server.command(SUGGEST)
    def suggest(ls: GoldiffServer, *args: Any) -> dict[str, str]:
        a = structure(list(args), SuggestArgs)
        doc = ls.recorder.documents.get(a.uri)
        if doc is None:
            raise ValueError(f"{a.uri} is not open")  # a failure inside a handler: -32603
        offset = doc.offset_at(a.line, a.character)
        suggestion_id = str(uuid.uuid4())
        ls.store.record_suggestion(
            {
                "id": suggestion_id,
                "session_id": ls.recorder.session_id,
                "document_id": doc.id,
                "version": doc.version,
                "ts": ls.clock(),
                "source": "test",
                "model": "deterministic",
                "mode": ls.settings.mode,
                "line": a.line,
                "character": a.character,
                "offset": offset,
                "prefix": doc.text[:offset],
                "suffix": doc.text[offset:],
                "text": a.text,
                "shown": 0,
            }
        )
        ls.outcomes.suggestion_made(doc, suggestion_id, offset, a.text, source="test")
        return {"id": suggestion_id}


def build_test_server(home: Path, clock: ClockMode = "wall") -> GoldiffServer:
    server = lsp.register_all(GoldiffServer(home, "logical"))
    register_test_commands(server)
    return server


if __name__ == "__main__":
    lsp.build_server = build_test_server  # `goldiff serve ...`, with the test commands
    cli.main(sys.argv[1:], prog_name="tests.testing_server")
