"""`goldiff.recorded` over real LSP: what "Show What Was Recorded" shows for a file.

A scripted editor types into a document, takes one suggestion and types over another,
then asks the server what it recorded: the text rebuilt from the store (secrets masked,
every step verified against its hash) and the suggestions with outcome and gold. Time
moves through the logical clock of `tests.testing_server`, so nothing sleeps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient

from tests.lsp_client import Editor, goldiff_client, utf16_pos

SOURCE = "def add(a, b):\n    \n\n\nprint(add(1, 2))\n"
CURSOR = 19  # line 1, after the indentation
SECRET = "sk-proj-" + "Zq8wX2vR5tY9uI3oP7aS1dF4gH6jK0lMnB"


async def command(client: LanguageClient, name: str, *args: Any) -> Any:
    return await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=name, arguments=list(args))
    )


async def suggest(client: LanguageClient, editor: Editor, uri: str, offset: int, text: str) -> str:
    pos = utf16_pos(editor.texts[uri], offset)
    answer = await command(
        client,
        "goldiff.test.suggest",
        {"uri": uri, "line": pos.line, "character": pos.character, "text": text},
    )
    return str(answer["id"])


async def test_the_recorded_text_and_suggestions_of_a_file(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    uri = (ws / "app.py").as_uri()
    async with goldiff_client(tmp_path / "home", workspace=ws, testing=True) as client:
        editor = Editor(client)
        editor.open(uri, SOURCE)
        # Taken with Tab, then half rewritten: what was kept is the gold.
        kept = await suggest(client, editor, uri, CURSOR, "return a + b")
        editor.replace(uri, CURSOR, CURSOR, "return a + b")
        await command(client, "goldiff.accepted", kept)
        await command(client, "goldiff.advanceClock", {"seconds": 5})
        editor.replace(uri, CURSOR + 7, CURSOR + 12, "total")
        # Typed over: rejected, and what was written instead is its gold.
        end = len("def add(a, b):\n    return total\n")
        typed_over = await suggest(client, editor, uri, end, "x = 2")
        end = editor.type(uri, end, "y = 3")
        # A key pasted into the file reaches the store masked, and so the rebuilt text.
        editor.replace(uri, end, end, f'\nKEY = "{SECRET}"')
        editor.save(uri)
        await command(client, "goldiff.advanceClock", {"seconds": 40})

        answer = await command(client, "goldiff.recorded", {"uri": uri})

        assert answer["uri"] == uri
        assert answer["text"] == editor.texts[uri].replace(SECRET, "*" * len(SECRET))
        assert SECRET not in answer["text"] and answer["text"] != editor.texts[uri]
        assert answer["verified"] is True
        assert answer["version"] == editor.versions[uri]
        suggestions = answer["suggestions"]
        assert [s["id"] for s in suggestions] == [typed_over, kept]  # newest first
        for s in suggestions:
            assert isinstance(s.pop("ts"), float) and s.pop("id")
        assert suggestions == [
            {
                "source": "test",
                "model": "deterministic",
                "outcome": "rejected",
                "reason": "typedOver",
                "shadow": False,
                "text": "x = 2",
                "gold": "y = 3",
                "acceptedLength": 0,
                "survival": None,
            },
            {
                "source": "test",
                "model": "deterministic",
                "outcome": "accepted",
                "reason": None,
                "shadow": False,
                "text": "return a + b",
                "gold": "return total",
                "acceptedLength": 12,
                "survival": round(1 - 5 / 12, 4),
            },
        ]
        limited = await command(client, "goldiff.recorded", {"uri": uri, "limit": 1})
        assert [s["id"] for s in limited["suggestions"]] == [typed_over]

        never = (ws / "never.py").as_uri()
        nothing = r"not recorded: Goldiff has recorded nothing for .*never\.py"
        with pytest.raises(JsonRpcException, match=nothing):
            await command(client, "goldiff.recorded", {"uri": never})
        with pytest.raises(JsonRpcException, match=r"uri"):
            await command(client, "goldiff.recorded", {"limit": 3})


async def test_a_file_opened_with_recording_off_says_how_to_record_it(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    uri = (ws / "app.py").as_uri()
    options = {"capture": {"enabled": False}}
    async with goldiff_client(tmp_path / "home", workspace=ws, options=options, testing=True) as client:
        editor = Editor(client)
        editor.open(uri, SOURCE)
        editor.type(uri, CURSOR, "pass")
        with pytest.raises(JsonRpcException, match=r"not recorded: .*Recording is off: turn it on"):
            await command(client, "goldiff.recorded", {"uri": uri})
