"""Hypothesis-driven bad input against one running server: it answers or ignores each
message, never crashes, and the store stays consistent."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest
from goldiff import records
from goldiff.store import integrity, open_database
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.lsp_client import server_env
from tests.pipe_client import PipeClient

pytestmark = pytest.mark.faults

URIS = ["file:///fuzz/a.py", "file:///fuzz/b.py", "untitled:Untitled-1"]
text = st.text(st.characters(codec="utf-8") | st.sampled_from("\n\r\t😀é中\u2028"), max_size=60)
position = st.fixed_dictionaries({"line": st.integers(-2, 12), "character": st.integers(-2, 90)})
change = st.one_of(
    st.fixed_dictionaries(
        {"range": st.fixed_dictionaries({"start": position, "end": position}), "text": text}
    ),
    st.fixed_dictionaries({"text": text}),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
version = st.one_of(st.none(), st.integers(-1, 40))
message = st.one_of(
    st.builds(
        lambda uri, t, v: (
            "textDocument/didOpen",
            {"textDocument": {"uri": uri, "languageId": "python", "version": v, "text": t}},
        ),
        st.sampled_from(URIS),
        text,
        st.integers(0, 3),
    ),
    st.builds(
        lambda uri, v, cs: (
            "textDocument/didChange",
            {"textDocument": {"uri": uri, "version": v}, "contentChanges": cs},
        ),
        st.sampled_from(URIS),
        version,
        st.lists(change, max_size=3),
    ),
    st.builds(
        lambda uri, t: ("textDocument/didSave", {"textDocument": {"uri": uri}, "text": t}),
        st.sampled_from(URIS),
        st.one_of(st.none(), text),
    ),
    st.builds(lambda uri: ("textDocument/didClose", {"textDocument": {"uri": uri}}), st.sampled_from(URIS)),
    st.builds(
        lambda p: ("goldiff/terminalCommand", p),
        st.dictionaries(
            st.sampled_from(["commandLine", "cwd", "exitCode", "output", "startedAt"]),
            st.one_of(text, st.integers(), st.none()),
        ),
    ),
    st.builds(
        lambda m, p: (m, p),
        st.text(max_size=20),
        st.one_of(st.none(), st.integers(), text, st.lists(st.integers(), max_size=3)),
    ),
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    home = tmp_path_factory.mktemp("fuzz-home")
    client = PipeClient([sys.executable, "-m", "goldiff", "serve"], server_env(home))
    client.initialize({"capture": {"enabled": True}})
    yield client, home
    client.close()


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(messages=st.lists(message, min_size=1, max_size=25), garbage=st.binary(max_size=40))
def test_server_survives_random_messages(
    server: Any, messages: list[tuple[str, Any]], garbage: bytes
) -> None:
    client, _home = server
    for method, params in messages:
        client.notify(method, params)
    # A body that is not JSON, with a correct header: the server must skip it.
    client.write(b"Content-Length: %d\r\n\r\n" % len(garbage) + garbage)
    assert client.request("workspace/executeCommand", {"command": "goldiff.status"})["mode"] == "local"
    assert client.proc.poll() is None


def test_huge_payload_and_store_consistency(server: Any) -> None:
    client, home = server
    big = "x = 1  # padding\n" * 80_000  # 1.3 MB: over the capture limit, recorded as skipped
    client.notify(
        "textDocument/didOpen",
        {"textDocument": {"uri": "file:///fuzz/big.py", "languageId": "python", "version": 1, "text": big}},
    )
    client.notify("goldiff/terminalCommand", {"commandLine": "cat big", "output": big})
    stats = client.request("workspace/executeCommand", {"command": "goldiff.stats"})
    assert stats["sessions"] == 1
    db, _ = open_database(home / "traces.db")
    assert integrity(db) == "ok"
    skipped = [json.loads(r["detail"]) for r in db.table("events").rows_where("kind = 'skip'")]
    assert any("larger than" in s["reason"] for s in skipped)
    for (doc_id,) in db.execute("SELECT DISTINCT document_id FROM edits").fetchall():
        assert records.document_at(db, doc_id).verified  # every hash in the chain holds
    output = db.execute("SELECT output FROM terminal_commands WHERE command_line = 'cat big'").fetchone()[0]
    assert len(output) < 10_000  # bounded excerpt
