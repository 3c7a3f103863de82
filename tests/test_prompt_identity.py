"""Train/serve prompt identity: every exported row's prompt is byte for byte what the source
that serves the same context sends (the FIM prompt the local source evaluates, the chat
messages the frontier and the edit source post)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from goldiff.agent.rewrite import ChatEditSource, EditRequest
from goldiff.export import ExportOptions
from goldiff.export.files import build_rows
from goldiff.export.formats import RowShaper, openai_row
from goldiff.protocol import EXPORT_FORMATS as FORMATS
from goldiff.protocol import ROW_FORMATS
from goldiff.records import EpisodeRecord
from goldiff.sources.base import CompletionRequest
from goldiff.sources.frontier import OpenAICompatibleSource
from goldiff.store import open_database

from tests.test_export import fill_store
from tests.tiny_models import write_tiny_gguf


class Capture:
    """A loopback OpenAI-compatible endpoint that keeps every request body it is sent."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(json.loads(request.content))
        if request.url.path.endswith("/completions") and not request.url.path.endswith("chat/completions"):
            return httpx.Response(404, json={"error": "chat only"})
        return httpx.Response(200, json={"choices": [{"message": {"content": "x"}}], "usage": {}})


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    database, _ = open_database(fill_store(tmp_path_factory.mktemp("home")))
    out: dict[str, list[dict[str, Any]]] = {}
    for fmt in FORMATS:
        if fmt == "parquet":
            for base in ("sft", "preference", "kto"):
                out[f"parquet/{base}"] = build_rows(database, ExportOptions(format=fmt, rows=base))[0]
        else:
            out[fmt] = build_rows(database, ExportOptions(format=fmt))[0]
    database.conn.close()
    return out


def context_of(row: dict[str, Any], originals: dict[str, dict[str, Any]]) -> CompletionRequest:
    """The completion request for a row's context (chat rows: from the sft row they carry)."""
    src = row if "prefix" in row else originals[row["context_hash"]]
    return CompletionRequest(
        prefix=src["prefix"], suffix=src["suffix"], path=src["path"], language=src["language"] or ""
    )


def test_fim_rows_are_the_prompt_the_local_source_evaluates(
    rows: dict[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    from goldiff.sources.local import LocalSource

    source = LocalSource(write_tiny_gguf(tmp_path / "goldiff-tiny.gguf"), n_threads=1)
    originals = {r["context_hash"]: r for r in rows["sft"]}
    checked = 0
    for fmt, fmt_rows in rows.items():
        if fmt in ("openai", "edits"):
            continue
        assert fmt_rows, fmt
        for row in fmt_rows:
            ids = source.prompt_ids(context_of(row, originals))
            assert source.llm.detokenize(ids, special=True) == row["prompt"].encode(), fmt
            checked += 1
    source.close()
    assert checked >= len(rows["sft"]) * 3


def test_openai_rows_are_the_messages_the_frontier_sends(rows: dict[str, list[dict[str, Any]]]) -> None:
    capture = Capture()
    frontier = OpenAICompatibleSource(
        base_url="http://frontier.test/v1", model="m", transport=httpx.MockTransport(capture.handler)
    )
    originals = {r["context_hash"]: r for r in rows["sft"]}
    assert rows["openai"]
    for row in rows["openai"]:
        capture.bodies.clear()
        frontier.complete(context_of(row, originals))
        sent = capture.bodies[-1]["messages"]
        assert [m["content"] for m in row["messages"][:2]] == [m["content"] for m in sent]
        assert [m["role"] for m in row["messages"][:2]] == [m["role"] for m in sent]


def test_edit_rows_are_the_prompt_the_edit_source_sends() -> None:
    request = EditRequest(
        path="m.py",
        region="def area(r):\n    pass\n",
        instruction="use math.pi",
        language="python",
        context_before="import math\n\n\n",
        context_after="\n\nprint(area(2))\n",
        recent_edits=["--- a/m.py\n+++ b/m.py\n@@ -1 +1 @@\n-import os\n+import math\n"],
        cursor=17,
    )
    # The episode as the store records an edit request: its context in the detail.
    episode = EpisodeRecord(
        id="e1",
        ts=0.0,
        started_at=0.0,
        kind="edit",
        source="frontier",
        model="m",
        outcome="accepted",
        document_id=None,
        start_offset=0,
        end_offset=len(request.region),
        before=request.region,
        after="def area(r):\n    return math.pi * r * r\n",
        gold_diff="-    pass\n+    return math.pi * r * r\n",
        tests_passed=None,
        detail={**request.stored_context(), "instruction": request.instruction},
        workspace="w",
        path="m.py",
        language="python",
    )
    (row,) = RowShaper("edits").episode_rows(episode)
    assert row["prompt"] == request.prompt()
    capture = Capture()
    frontier = OpenAICompatibleSource(
        base_url="http://frontier.test/v1", model="m", transport=httpx.MockTransport(capture.handler)
    )
    ChatEditSource(frontier).rewrite(request, threading.Event())
    sent = capture.bodies[-1]["messages"]
    chat = openai_row(row, "edits")["messages"]
    assert [(m["role"], m["content"]) for m in chat[:2]] == [(m["role"], m["content"]) for m in sent]


def test_every_format_is_checked() -> None:
    assert set(ROW_FORMATS) | {"openai", "parquet"} == set(FORMATS)
