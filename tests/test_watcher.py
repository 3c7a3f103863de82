"""Changes made outside the editor, and commits, through the real server."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

from goldiff import audit
from goldiff.store import open_database

from tests.lsp_client import Editor, goldiff_client


def git(ws: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(ws), *args], check=True, capture_output=True)


async def _until(predicate, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(timeout / 0.1)):
        if predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not reached")


async def test_external_changes_and_commits_are_recorded(tmp_path: Path) -> None:
    home, ws = tmp_path / "home", tmp_path / "ws"
    ws.mkdir()
    git(ws, "init", "-q")
    git(ws, "config", "user.email", "dev@example.com")
    git(ws, "config", "user.name", "Dev")
    (ws / ".gitignore").write_text("build/\n")
    (ws / "build").mkdir()
    (ws / "open.py").write_text("opened = True\n")
    async with goldiff_client(home, workspace=ws) as client:
        Editor(client).open((ws / "open.py").as_uri(), "opened = True\n")
        await asyncio.sleep(0.5)  # let the observer start
        (ws / "tool.py").write_text("def formatted():\n    return 1\n")
        (ws / "build" / "out.py").write_text("ignored = 1\n")
        (ws / ".env.local").write_text("TOKEN=abc\n")
        db, _ = open_database(home / "traces.db")

        def has_external() -> bool:
            return db.execute("SELECT COUNT(*) FROM edits WHERE kind = 'external'").fetchone()[0] >= 1

        await _until(has_external)
        git(ws, "add", "tool.py")
        git(ws, "commit", "-qm", "first")

        def has_commit() -> bool:
            return db.execute("SELECT COUNT(*) FROM events WHERE kind = 'commit'").fetchone()[0] >= 1

        await _until(has_commit)
    db, _ = open_database(home / "traces.db")
    assert audit.rebuild(db, (ws / "tool.py").as_uri()).text == "def formatted():\n    return 1\n"
    uris = {row["uri"] for row in db.table("documents").rows}
    assert (ws / "build" / "out.py").as_uri() not in uris  # .gitignore respected
    assert (ws / ".env.local").as_uri() not in uris  # default excludes respected
    head = subprocess.run(
        ["git", "-C", str(ws), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    commits = [json.loads(r["detail"]) for r in db.table("events").rows_where("kind = 'commit'")]
    assert commits[-1]["sha"] == head
