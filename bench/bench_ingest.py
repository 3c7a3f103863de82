"""Ingest: how fast the server records a burst of typing, against a bare pygls server.

A real LSP client sends 20,000 incremental edits as fast as it can to `goldiff serve`
(capture on) and, in the same run, to a pygls server that handles didChange by doing
nothing. Reported: edits/s recorded (until the store has written them all), the
server-side p50/p99 handling time per notification, the server's peak RSS, and the
store's size against the bytes typed plus snapshots.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from goldiff.store import open_database

from tests.lsp_client import server_env
from tests.pipe_client import PipeClient

EDITS = 20_000
BARE_SERVER = """
from lsprotocol import types
from pygls.lsp.server import LanguageServer
server = LanguageServer("bare", "1")
@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls, params):
    pass
@server.command("bench.done")
def done(ls, *args):
    return {}
server.start_io()
"""

TEXT = "def handler(request):\n    return respond(request.body, status=200)  # ok\n"


def _drive(command: list[str], env: dict[str, str], done: str, edits: int) -> dict[str, Any]:
    client = PipeClient(command, env)
    client.initialize({"capture": {"enabled": True}})
    uri = "file:///bench/ingest.py"
    client.notify(
        "textDocument/didOpen",
        {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": ""}},
    )
    # Pre-encode the burst: the client must not be what is measured.
    messages = []
    line, col, typed = 0, 0, 0
    for i in range(edits):
        ch = TEXT[i % len(TEXT)]
        pos = {"line": line, "character": col}
        messages.append(
            PipeClient.encode(
                {
                    "jsonrpc": "2.0",
                    "method": "textDocument/didChange",
                    "params": {
                        "textDocument": {"uri": uri, "version": i + 2},
                        "contentChanges": [{"range": {"start": pos, "end": pos}, "text": ch}],
                    },
                }
            )
        )
        typed += len(ch.encode())
        line, col = (line + 1, 0) if ch == "\n" else (line, col + 1)
    started = time.perf_counter()
    for k in range(0, len(messages), 200):
        client.write(b"".join(messages[k : k + 200]))
    result = client.request("workspace/executeCommand", {"command": done})
    elapsed = time.perf_counter() - started
    server_stats = None
    if done == "goldiff.stats":
        server_stats = client.request("workspace/executeCommand", {"command": "goldiff.serverStats"})
    client.close()
    return {"elapsed": elapsed, "typed_bytes": typed, "stats": result, "server": server_stats}


def _store_growth(path: Path, empty: Path) -> tuple[int, int]:
    """Snapshot bytes, and how much the store grew over an empty one (WAL checkpointed)."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    snapshot_bytes = int(conn.execute("SELECT COALESCE(SUM(bytes), 0) FROM snapshots").fetchone()[0])
    conn.close()
    open_database(empty)[0].conn.close()
    return snapshot_bytes, path.stat().st_size - empty.stat().st_size


def run(edits: int = EDITS, quick: bool = False) -> list[dict[str, Any]]:
    if quick:
        edits = min(edits, 2000)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        goldiff = _drive([sys.executable, "-m", "goldiff", "serve"], server_env(home), "goldiff.stats", edits)
        bare_file = Path(tmp) / "bare.py"
        bare_file.write_text(BARE_SERVER)
        bare = _drive([sys.executable, str(bare_file)], server_env(home), "bench.done", edits)
        snapshot_bytes, store_growth = _store_growth(home / "traces.db", Path(tmp) / "empty.db")
    rate = edits / goldiff["elapsed"]
    bare_rate = edits / bare["elapsed"]
    server = goldiff["server"]
    store_ratio = store_growth / (goldiff["typed_bytes"] + snapshot_bytes)
    return [
        {
            "name": "ingest_edits_per_second",
            "value": round(rate),
            "unit": "edits/s",
            "baseline": {"name": "bare pygls server, same client", "value": round(bare_rate)},
            "target": ">= 5000",
        },
        {
            "name": "ingest_vs_bare_pygls",
            "value": round(rate / bare_rate, 3),
            "unit": "x",
            "baseline": {"name": "bare pygls server, same client, edits/s", "value": round(bare_rate)},
            "target": ">= 0.95",
        },
        {
            "name": "ingest_p99_handling_ms",
            "value": round(server["didChangeP99Ms"], 3),
            "unit": "ms",
            "baseline": None,
            "detail": {"p50_ms": round(server["didChangeP50Ms"], 3)},
            "target": "< 2",
        },
        {
            "name": "ingest_peak_rss",
            "value": round(server["peakRssKb"] / 1024, 1),
            "unit": "MiB",
            "baseline": None,
            "target": None,
            "met": None,
        },
        {
            "name": "store_bytes_per_typed_plus_snapshot_byte",
            "value": round(store_ratio, 2),
            "unit": "x",
            "baseline": None,
            "detail": {"typed_plus_snapshot_bytes": goldiff["typed_bytes"] + snapshot_bytes},
            "target": "<= 3",
        },
    ]


if __name__ == "__main__":
    print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else EDITS), indent=2))
