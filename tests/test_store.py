"""The trace store on its own: schema, batching, rebuilds, corruption, two writers."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from goldiff import audit
from goldiff.errors import StoreError
from goldiff.migrations import MIGRATIONS
from goldiff.store import EditRecord, TraceStore, forget, integrity, open_database

EXPECTED_COLUMNS = {
    "sessions": ["id", "started_at", "ended_at", "pid", "client", "workspace", "server_version", "mode"],
    "documents": ["id", "session_id", "uri", "workspace", "path", "language", "opened_at", "skipped"],
    "snapshots": ["hash", "text", "bytes"],
    "edits": [
        "id", "document_id", "seq", "kind", "version", "version_first", "ts", "mono",
        "start_line", "start_character", "end_line", "end_character", "offset", "removed",
        "inserted", "snapshot", "content_hash",
    ],
    "terminal_commands": [
        "id", "session_id", "workspace", "command_line", "cwd", "exit_code", "started_at",
        "ended_at", "output", "output_truncated",
    ],
    "events": ["id", "session_id", "document_id", "ts", "kind", "detail"],
}  # fmt: skip


def test_fresh_store_has_exact_columns(tmp_path: Path) -> None:
    db, _ = open_database(tmp_path / "traces.db")
    for table, columns in EXPECTED_COLUMNS.items():
        assert [c.name for c in db.table(table).columns] == columns
    applied = [row["name"] for row in db.table("_migrations").rows]
    assert applied == [name for name, _ in MIGRATIONS]
    assert (tmp_path / "traces.db").stat().st_mode & 0o777 == 0o600


def test_migrations_are_applied_once(tmp_path: Path) -> None:
    open_database(tmp_path / "traces.db")[0].conn.close()
    db, _ = open_database(tmp_path / "traces.db")
    assert db.table("_migrations").count == len(MIGRATIONS)


def _doc(store: TraceStore, doc_id: str, uri: str, text: str) -> None:
    store.record_document({"id": doc_id, "session_id": "s", "uri": uri, "opened_at": 0.0})
    store.record_edit(EditRecord(doc_id, "open", 1, 0.0, 0.0, inserted=text))


def test_typing_runs_coalesce_and_every_version_rebuilds(tmp_path: Path) -> None:
    store = TraceStore(tmp_path / "traces.db")
    _doc(store, "d", "file:///a.py", "x\n")
    text, versions = "x\n", ["x\n"]
    for i, ch in enumerate("def f():\n    return 1\n"):
        offset = len(text)
        text += ch
        versions.append(text)
        store.record_edit(EditRecord("d", "change", i + 2, 0.0, 0.0, offset=offset, inserted=ch))
    assert store.flush()
    db = store.reader()
    rows = db.execute("SELECT COUNT(*) FROM edits WHERE document_id='d'").fetchone()[0]
    assert rows < len(versions) / 3  # newlines split runs; characters between them coalesce
    assert audit.rebuild(db, "file:///a.py").text == text
    for version, expected in enumerate(versions, start=1):
        assert audit.rebuild(db, "file:///a.py", version).text == expected
    store.close()


def test_secret_typed_one_key_at_a_time_never_reaches_the_store(tmp_path: Path) -> None:
    secret = "AKIAIOSFODNN7EXAMPLE"
    store = TraceStore(tmp_path / "traces.db")
    _doc(store, "d", "file:///c.py", "")
    text = ""
    line = f'aws_access_key_id = "{secret}"\nprint(1)\n'
    for i, ch in enumerate(line):
        store.record_edit(EditRecord("d", "change", i + 2, 0.0, 0.0, offset=len(text), inserted=ch))
        text += ch
        if i % 7 == 0:
            assert store.flush()  # spread the secret over many committed batches
    store.close()
    raw = (tmp_path / "traces.db").read_bytes()
    wal = tmp_path / "traces.db-wal"
    raw += wal.read_bytes() if wal.exists() else b""
    db, _ = open_database(tmp_path / "traces.db")
    dumped = "\n".join(db.conn.iterdump())
    assert secret not in dumped
    assert secret[4:12] not in dumped  # not even a fragment of the typed key
    assert secret.encode() not in raw
    rebuilt = audit.rebuild(db, "file:///c.py").text
    assert rebuilt == line.replace(secret, "*" * len(secret))


def test_corrupt_store_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "traces.db"
    path.write_bytes(b"this is not sqlite" * 100)
    store = TraceStore(path)
    assert store.moved_aside is not None and store.moved_aside.exists()
    assert store.moved_aside.read_bytes().startswith(b"this is not sqlite")
    _doc(store, "d", "file:///x.py", "ok\n")
    assert store.flush()
    assert audit.rebuild(store.reader(), "file:///x.py").text == "ok\n"
    store.close()


def test_two_writers_share_one_store(tmp_path: Path) -> None:
    path = tmp_path / "traces.db"
    stores = [TraceStore(path), TraceStore(path)]

    def write(store: TraceStore, name: str) -> None:
        _doc(store, name, f"file:///{name}.py", "")
        for i in range(400):
            store.record_edit(EditRecord(name, "change", i + 2, 0.0, 0.0, offset=i, inserted="ab"[i % 2]))
            if i % 50 == 0:
                store.flush()

    threads = [threading.Thread(target=write, args=(s, n)) for s, n in zip(stores, "xy", strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in stores:
        s.close()
    db, _ = open_database(path)
    for name in "xy":
        assert audit.rebuild(db, f"file:///{name}.py").text == "ab" * 200
    assert integrity(db) == "ok"


def test_write_failure_is_reported_once_and_retried(tmp_path: Path) -> None:
    errors: list[str] = []
    store = TraceStore(tmp_path / "traces.db", on_error=lambda e: errors.append(str(e)))
    _doc(store, "d", "file:///f.py", "")
    assert store.flush()
    # Make the database refuse growth, as a full disk does.
    page_count = store.db.execute("PRAGMA page_count").fetchone()[0]
    store.db.execute(f"PRAGMA max_page_count={page_count}")
    expected = ""
    for i in range(400):  # prepending: no typing run, one row per edit
        store.record_edit(EditRecord("d", "change", i + 2, 0.0, 0.0, offset=0, inserted="xy"[i % 2]))
        expected = "xy"[i % 2] + expected
    assert not store.flush(timeout=10)
    assert len(errors) == 1 and "disk is full" in errors[0]
    store.db.execute("PRAGMA max_page_count=1073741823")
    assert store.flush(timeout=60)
    assert audit.rebuild(store.reader(), "file:///f.py").text == expected
    store.close()


def test_forget_workspace_deletes_only_that_workspace(tmp_path: Path) -> None:
    store = TraceStore(tmp_path / "traces.db")
    for name, ws in (("a", "file:///ws1"), ("b", "file:///ws2")):
        store.record_document({"id": name, "session_id": "s", "uri": f"{ws}/{name}.py", "workspace": ws})
        store.record_edit(EditRecord(name, "open", 1, 0.0, 0.0, inserted=f"secret of {name}\n"))
    store.close()
    db, _ = open_database(tmp_path / "traces.db")
    deleted = forget(db, "file:///ws1")
    assert deleted["documents"] == 1
    assert [r["uri"] for r in db.table("documents").rows] == ["file:///ws2/b.py"]
    dumped = "\n".join(db.conn.iterdump())
    assert "secret of a" not in dumped and "secret of b" in dumped


def test_unreadable_store_path_gives_store_error(tmp_path: Path) -> None:
    (tmp_path / "traces.db").mkdir()
    with pytest.raises(StoreError, match="is a folder"):
        TraceStore(tmp_path / "traces.db")
