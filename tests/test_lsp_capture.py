"""Capture through a real LSP client: the store rebuilds what the editor holds."""

from __future__ import annotations

import random
from pathlib import Path

from goldiff import audit, records
from goldiff.store import open_database

from tests.lsp_client import Editor, goldiff_client


def rebuilt(home: Path, uri: str, version: int | None = None) -> records.DocumentText:
    db, _ = open_database(home / "traces.db")
    try:
        return audit.rebuild(db, uri, version)
    finally:
        db.conn.close()


async def test_typing_and_edits_rebuild_exactly(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    uri = (ws / "app.py").as_uri()
    async with goldiff_client(tmp_path / "home", workspace=ws) as client:
        editor = Editor(client)
        editor.open(uri, "def main():\n    pass\n")
        end = editor.type(uri, 21, "print('héllo wörld 🎉')\n")
        editor.replace(uri, 16, 20, "return 1")  # replace 'pass'
        editor.type(uri, end + 4, "# emoji 🎉 then ascii\n")
        editor.replace(uri, 0, 3, "async def")
        editor.save(uri)
    result = rebuilt(tmp_path / "home", uri)
    assert result.text == editor.texts[uri]
    assert result.verified


async def test_random_edits_with_multibyte_text(tmp_path: Path) -> None:
    rng = random.Random(7)
    alphabet = "abc xyz\n\t😀é中"
    uri = (tmp_path / "r.py").as_uri()
    history: list[str] = []
    async with goldiff_client(tmp_path / "home") as client:
        editor = Editor(client)
        editor.open(uri, "start 😀\nsecond line\n")
        history.append(editor.texts[uri])
        for _ in range(300):
            text = editor.texts[uri]
            a = rng.randint(0, len(text))
            b = min(len(text), a + rng.choice([0, 0, 0, 1, 3]))
            new = "".join(rng.choice(alphabet) for _ in range(rng.choice([0, 1, 1, 1, 5])))
            editor.replace(uri, a, b, new)
            history.append(editor.texts[uri])
    home = tmp_path / "home"
    assert rebuilt(home, uri).text == editor.texts[uri]
    for version in (1, 2, 50, 151, 301):
        assert rebuilt(home, uri, version).text == history[version - 1]


async def test_capture_is_off_until_opted_in(tmp_path: Path) -> None:
    uri = (tmp_path / "a.py").as_uri()
    async with goldiff_client(tmp_path / "home", options={"capture": {"enabled": False}}) as client:
        editor = Editor(client)
        editor.open(uri, "x = 1\n")
        editor.type(uri, 6, "y = 2\n")
        stats = await client.workspace_execute_command_async(
            __import__("lsprotocol").types.ExecuteCommandParams(command="goldiff.stats")
        )
    assert stats["edits"] == 0
    assert stats["sessions"] == 1
