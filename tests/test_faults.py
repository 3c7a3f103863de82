"""Faults a real editor and machine cause: bad messages, kills, full disks, two windows.

Each test runs the real server over stdio and checks, afterwards, that the store is
intact and holds what the client had sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from goldiff import audit
from goldiff.store import integrity, open_database
from lsprotocol import types

from tests.lsp_client import Editor, goldiff_client, send_raw

pytestmark = pytest.mark.faults


def _db(home: Path) -> Any:
    db, _ = open_database(home / "traces.db")
    return db


async def _roundtrip(client: Any) -> Any:
    """A request whose answer proves the server has handled everything sent before it."""
    return await client.workspace_execute_command_async(types.ExecuteCommandParams(command="goldiff.status"))


async def _stats(client: Any) -> dict[str, Any]:
    result: dict[str, Any] = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="goldiff.stats")
    )
    return result


async def test_malformed_and_unknown_messages_do_not_stop_recording(tmp_path: Path) -> None:
    home = tmp_path / "home"
    uri = (tmp_path / "m.py").as_uri()
    async with goldiff_client(home) as client:
        editor = Editor(client)
        editor.open(uri, "a = 1\n")
        client.protocol.notify("goldiff/terminalCommand", {"commandLine": 42, "exitCode": "x"})
        client.protocol.notify("goldiff/terminalCommand", [1, 2, 3])
        client.protocol.notify("goldiff/noSuchThing", {"x": 1})
        send_raw(
            client,
            {"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {"textDocument": {"uri": uri}}},
        )
        send_raw(client, {"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": None})
        send_raw(client, b'{"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {"tex')
        with pytest.raises(Exception, match=r"(?i)method not found|unhandled|not found"):
            await client.protocol.send_request_async("goldiff/noSuchRequest", {})
        with pytest.raises(Exception, match=r"(?i)mode"):
            await client.workspace_execute_command_async(
                types.ExecuteCommandParams(command="goldiff.setMode", arguments=[{"mode": "warp"}])
            )
        editor.type(uri, 6, "b = 2\n")
        client.protocol.notify(
            "goldiff/terminalCommand", {"commandLine": "pytest -q", "cwd": str(tmp_path), "exitCode": 0}
        )
        stats = await _stats(client)
    assert stats["terminal_commands"] == 1
    assert audit.rebuild(_db(home), uri).text == "a = 1\nb = 2\n"


async def test_out_of_range_edit_and_version_gap_resync_from_disk(tmp_path: Path) -> None:
    home = tmp_path / "home"
    path = tmp_path / "g.py"
    path.write_text("on disk\n")
    uri = path.as_uri()
    async with goldiff_client(home) as client:
        editor = Editor(client)
        editor.open(uri, "on disk\n")
        # A change past the end of the document: it cannot be applied to what we know.
        editor.versions[uri] += 1
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=editor.versions[uri]),
                content_changes=[
                    types.TextDocumentContentChangePartial(
                        range=types.Range(
                            start=types.Position(line=40, character=0),
                            end=types.Position(line=40, character=0),
                        ),
                        text="lost\n",
                    )
                ],
            )
        )
        # A version that skips ahead.
        editor.versions[uri] += 5
        editor.replace(uri, 0, 0, "# head\n")
        editor.save(uri)
        await _roundtrip(client)
    db = _db(home)
    gaps = [row["detail"] for row in db.table("events").rows_where("kind = 'gap'")]
    assert any("past the end" in g for g in gaps)
    assert any("version jumped" in g for g in gaps)
    # Resynchronised from disk, then from the saved full text: the store agrees with the editor.
    assert audit.rebuild(db, uri).text == editor.texts[uri]


async def test_kill_9_loses_at_most_the_unflushed_batch(tmp_path: Path) -> None:
    home = tmp_path / "home"
    uri = (tmp_path / "k.py").as_uri()
    async with goldiff_client(home) as client:
        editor = Editor(client)
        editor.open(uri, "")
        history = [""]
        offset = 0
        for i in range(1500):
            offset = editor.type(uri, offset, "x\n"[i % 2])
            history.append(editor.texts[uri])
        await _roundtrip(client)
        await asyncio.sleep(0.5)  # ten times the writer's batch window
        acknowledged = len(history)
        for i in range(1500):
            offset = editor.type(uri, offset, "y\n"[i % 2])
            history.append(editor.texts[uri])
        os.kill(client._server.pid, signal.SIGKILL)
        await client._server.wait()
    db = _db(home)
    assert integrity(db) == "ok"
    rebuilt = audit.rebuild(db, uri)
    assert rebuilt.verified
    assert rebuilt.version is not None and rebuilt.version >= acknowledged
    assert rebuilt.text == history[rebuilt.version - 1]


async def test_sigterm_loses_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    uri = (tmp_path / "t.py").as_uri()
    async with goldiff_client(home) as client:
        editor = Editor(client)
        editor.open(uri, "")
        editor.type(uri, 0, "def handler():\n    return 'kept'\n" * 20)
        await _roundtrip(client)
        os.kill(client._server.pid, signal.SIGTERM)
        assert await client._server.wait() == 0
    assert audit.rebuild(_db(home), uri).text == editor.texts[uri]


async def test_two_servers_on_one_store(tmp_path: Path) -> None:
    home = tmp_path / "home"
    uris = [(tmp_path / f"w{i}.py").as_uri() for i in range(2)]
    async with goldiff_client(home) as one, goldiff_client(home) as two:
        editors = [Editor(one), Editor(two)]
        for editor, uri in zip(editors, uris, strict=True):
            editor.open(uri, "")
        for i in range(300):
            for editor, uri in zip(editors, uris, strict=True):
                editor.type(uri, i, "ab"[i % 2])
        await asyncio.gather(_roundtrip(one), _roundtrip(two))
    db = _db(home)
    assert db.table("sessions").count == 2
    for editor, uri in zip(editors, uris, strict=True):
        assert audit.rebuild(db, uri).text == editor.texts[uri]


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Any:
    """A 2 MB tmpfs, so the store really runs out of space."""
    mount = tmp_path / "disk"
    mount.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {result.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


async def test_full_disk_tells_the_user_once_and_keeps_serving(tiny_disk: Path, tmp_path: Path) -> None:
    home = tiny_disk / "home"
    filler = tiny_disk / "filler"
    uri = (tmp_path / "big.py").as_uri()
    async with goldiff_client(home) as client:
        editor = Editor(client)
        editor.open(uri, "")
        await _roundtrip(client)
        with filler.open("wb") as out, contextlib.suppress(OSError):
            while True:  # until the disk is full
                out.write(b"\0" * 65536)
                out.flush()
        offset = 0
        for i in range(400):
            offset = editor.type(uri, offset, f"line {i} " + "z" * 60 + "\n")
        for _ in range(50):
            await asyncio.sleep(0.1)
            if client.messages:
                break
        errors = [m for m in client.messages if "cannot write" in m.message]
        assert len(errors) == 1 and "disk is full" in errors[0].message
        assert (await _roundtrip(client))["mode"] == "local"  # still serving
        filler.unlink()  # space comes back: recording resumes with nothing dropped
        editor.type(uri, offset, "# done\n")
        await _stats(client)
    assert audit.rebuild(_db(home), uri).text == editor.texts[uri]


async def test_corrupt_store_is_replaced_and_the_user_told(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "traces.db").write_bytes(b"\x00garbage" * 512)
    uri = (tmp_path / "c.py").as_uri()
    async with goldiff_client(home) as client:
        Editor(client).open(uri, "fresh\n")
        await _roundtrip(client)
        assert any("moved to" in m.message for m in client.messages)
    assert audit.rebuild(_db(home), uri).text == "fresh\n"
    assert list(home.glob("traces.db.corrupt-*"))
