"""Server start time and idle memory, against a bare pygls server started the same way."""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.lsp_client import server_env
from tests.pipe_client import PipeClient

BARE = """
from pygls.lsp.server import LanguageServer
LanguageServer("bare", "1").start_io()
"""


def _start(command: list[str], env: dict[str, str]) -> tuple[float, int]:
    started = time.perf_counter()
    client = PipeClient(command, env)
    client.initialize({"capture": {"enabled": True}})
    elapsed = time.perf_counter() - started
    rss_kb = 0
    for line in Path(f"/proc/{client.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss_kb = int(line.split()[1])
    client.close()
    return elapsed, rss_kb


def run(repeats: int = 5, quick: bool = False) -> list[dict[str, Any]]:
    if quick:
        repeats = 2
    with tempfile.TemporaryDirectory() as tmp:
        bare = Path(tmp) / "bare.py"
        bare.write_text(BARE)
        ours, theirs = [], []
        for i in range(repeats):
            ours.append(_start([sys.executable, "-m", "goldiff", "serve"], server_env(Path(tmp) / f"h{i}")))
            theirs.append(_start([sys.executable, str(bare)], server_env(Path(tmp) / f"b{i}")))
    start = statistics.median(t for t, _ in ours)
    bare_start = statistics.median(t for t, _ in theirs)
    rss = statistics.median(r for _, r in ours) / 1024
    bare_rss = statistics.median(r for _, r in theirs) / 1024
    return [
        {
            "name": "server_start_to_initialized",
            "value": round(start * 1000),
            "unit": "ms",
            "baseline": {"name": "bare pygls server", "value": round(bare_start * 1000)},
            "ratio": round(start / bare_start, 2),
            "target": "< 1000 ms",
            "met": start < 1.0,
        },
        {
            "name": "server_idle_rss",
            "value": round(rss, 1),
            "unit": "MiB",
            "baseline": {"name": "bare pygls server", "value": round(bare_rss, 1)},
            "ratio": round(rss / bare_rss, 2),
            "target": None,
            "met": None,
        },
    ]


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
