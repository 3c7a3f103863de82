"""The server's copy of a document: UTF-16 positions and its line index."""

from __future__ import annotations

import random

from goldiff.capture.documents import Document, _line_starts


def test_document_line_index_follows_edits_like_a_rescan() -> None:
    rng = random.Random(3)
    doc = Document.new("file:///x.py", "python", 1, "a\nbc\n\ndef\n")
    for version in range(400):
        a = rng.randint(0, len(doc.text))
        b = min(len(doc.text), a + rng.choice([0, 1, 2, 5]))
        new = "".join(rng.choice("x\n😀") for _ in range(rng.choice([0, 1, 3])))
        doc.apply(doc.position_at(a), doc.position_at(b), new, version)
        assert doc._starts == _line_starts(doc.text)
