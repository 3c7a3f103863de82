"""The server's copy of a document: UTF-16 positions and its line index."""

from __future__ import annotations

import random
from pathlib import Path

from goldiff.capture.documents import Document, _line_starts
from lsprotocol import types


def test_document_line_index_follows_edits_like_a_rescan() -> None:
    rng = random.Random(3)
    doc = Document.new("file:///x.py", "python", 1, "a\nbc\n\ndef\n")
    for version in range(400):
        a = rng.randint(0, len(doc.text))
        b = min(len(doc.text), a + rng.choice([0, 1, 2, 5]))
        new = "".join(rng.choice("x\n😀") for _ in range(rng.choice([0, 1, 3])))
        doc.apply(doc.position_at(a), doc.position_at(b), new, version)
        assert doc._starts == _line_starts(doc.text)


def test_whole_texts_are_timed_by_the_servers_clock(tmp_path: Path) -> None:
    """Under a logical clock (replay), an open or a full change is dated by it, as typing is."""
    import sqlite3

    from goldiff.capture.recorder import Recorder
    from goldiff.settings import CaptureSettings, Settings
    from goldiff.store import TraceStore

    store = TraceStore(tmp_path / "traces.db")
    now = 1_000.0  # far from the wall clock
    recorder = Recorder(store, Settings(capture=CaptureSettings(enabled=True)), lambda: now)
    uri = (tmp_path / "a.py").as_uri()
    recorder.open(uri, "python", 1, "x = 1\n")
    now += 5
    recorder.change(uri, 2, [types.TextDocumentContentChangeWholeDocument(text="x = 2\n")])
    store.close()
    with sqlite3.connect(tmp_path / "traces.db") as conn:
        times = conn.execute("SELECT kind, ts FROM edits ORDER BY seq").fetchall()
    assert times == [("open", 1_000.0), ("full", 1_005.0)]
