"""The workspace's own code, as the store saw it, to adapt a model to the repository.

A small model rarely writes a whole line of code it has never seen; what it can learn in
minutes is the repository's own identifiers and idioms. `goldiff distill` therefore trains
on the gold rows *and* on the text of the documents the store recorded, each as it was at
the export's cutoff, so nothing written after the cutoff (the held-out gold) is ever read.
Texts become `{"text": ...}` rows of about one training window each (`data.encode_sft_row`
labels every token of them); the gold rows are repeated `gold_weight` times, because they
are the supervision that counts and they are far fewer.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import sqlite_utils

from goldiff.errors import NotRecordedError
from goldiff.records import document_at, last_versions

CHARS_PER_TOKEN = 3.5  # measured on Python with Goldiff's tokenizer; sizes a window in characters
MAX_CHARS = 3_000_000  # at most this much code trains (the newest documents first)


def documents_at(db: sqlite_utils.Database, before: float | None) -> dict[str, str]:
    """Each recorded document's text as it was just before `before` (None: its latest)."""
    bound = before if before is not None else float("inf")
    texts: dict[str, str] = {}
    for doc_id, uri, version in last_versions(db, bound):
        if uri in texts:
            continue  # a document opened again later: its newest recording before the cutoff wins
        try:
            rebuilt = document_at(db, doc_id, version, uri=uri)
        except NotRecordedError:
            continue
        if rebuilt.text.strip():
            texts[uri] = rebuilt.text
    return texts


def text_rows(texts: dict[str, str], seq_len: int, max_chars: int = MAX_CHARS) -> list[dict[str, Any]]:
    """Windows of about `seq_len` tokens, cut at line ends, from `texts` (up to `max_chars`)."""
    from goldiff.distill.data import split_segments

    width = int(seq_len * CHARS_PER_TOKEN)
    rows: list[dict[str, Any]] = []
    used = 0
    for uri, text in texts.items():
        for window in split_segments(text, width, clip=True):
            if used + len(window) > max_chars:
                return rows
            used += len(window)
            rows.append({"text": window, "uri": uri})
    return rows


def training_rows(
    gold: Sequence[dict[str, Any]], texts: Iterable[dict[str, Any]], gold_weight: int = 2, seed: int = 0
) -> list[dict[str, Any]]:
    """Gold rows (repeated `gold_weight` times) and text rows, in a seeded order."""
    rows = [dict(r) for r in gold for _ in range(max(1, gold_weight))]
    rows += list(texts)
    random.Random(seed).shuffle(rows)
    return rows


def write_rows(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """JSON lines, written then renamed (a kill mid-write leaves no half file). Values JSON
    has no type for (a pooled dataset's dates) are written as text."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r, default=str) + "\n" for r in rows), encoding="utf-8")
    tmp.replace(path)
    return path
