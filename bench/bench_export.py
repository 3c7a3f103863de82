"""Export and evaluation throughput on this machine (not part of the test suite).

    python bench/bench_export.py [--suggestions 100000] [--eval-rows 200]
    python bench/run.py export          # the same, onto the benchmark board

Builds a trace store of N settled suggestions whose contexts are cut from the standard
library's own files (so the second redaction pass sees real code), then times, side by
side in one run: a plain SQL read of the same rows (the floor), the sft, kto and
metrics-only exports. Then it evaluates the tiny GGUF on held-out rows and reports wall
time per 1,000 rows next to the time spent inside llama.cpp. Prints rows/s and ratios.
Nearly all of an export's time is the second redaction pass (detect-secrets, per unique
line); `--no-code` skips it and shows the cost of everything else.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from goldiff.evaluate import EvalRow, eval_rows, gguf_model, run_eval
from goldiff.export import ExportOptions, export, load_rows
from goldiff.store import open_database

from tests.tiny_models import write_tiny_gguf


def stdlib_texts(limit: int = 400) -> list[tuple[str, str]]:
    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in root.glob("*.py") if p.stat().st_size > 4000)[:limit]
    return [(p.name, p.read_text(encoding="utf-8", errors="replace")) for p in files]


def build_store(path: Path, n: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    texts = stdlib_texts()
    db, _ = open_database(path)
    db.execute("INSERT INTO sessions(id, started_at, workspace) VALUES ('s', 0, 'file:///ws')")
    for name, _ in texts:
        db.execute(
            "INSERT INTO documents(id, session_id, uri, workspace, path, language) "
            "VALUES (?, 's', ?, ?, ?, ?)",
            [name, f"file:///ws/{name}", "file:///ws", name, "python"],
        )
    rows = []
    for i in range(n):
        name, text = texts[rng.randrange(len(texts))]
        at = rng.randrange(200, len(text) - 200)
        end = text.find("\n", at)
        end = len(text) if end == -1 else end
        gold = text[at:end]
        outcome = rng.choice(["accepted", "accepted", "partial", "rejected", None])
        suggestion = gold if rng.random() < 0.5 else gold[: max(1, len(gold) // 2)] + "x"
        rows.append(
            (
                f"sug{i}", name, float(i), "frontier" if i % 3 else "local", "m",
                text[max(0, at - 1500) : at],
                text[end : end + 400], suggestion, gold if outcome else None, outcome,
                json.dumps({"30": 1.0, "600": rng.random()}), 50.0 + rng.random() * 100,
            )
        )  # fmt: skip
    with db.conn:
        db.conn.executemany(
            "INSERT INTO suggestions(id, document_id, ts, source, model, prefix, suffix, text, gold, "
            "outcome, survival, latency_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    db.conn.close()


def timed(label: str, n: int, fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - start
    print(f"{label:<28} {seconds:8.2f} s  {n / seconds:10.0f} suggestions/s  -> {out}", file=sys.stderr)
    return seconds


def run(
    suggestions: int = 100_000, held_out: int = 200, max_tokens: int = 16, quick: bool = False
) -> list[dict[str, Any]]:
    """Board entries (see bench/run.py): export rows/s and eval seconds per 1,000 rows."""
    if quick:
        suggestions, held_out = 20_000, 50
    entries: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        store = folder / "traces.db"
        start = time.perf_counter()
        build_store(store, suggestions)
        print(
            f"built a store of {suggestions} suggestions in {time.perf_counter() - start:.1f} s",
            file=sys.stderr,
        )
        db, _ = open_database(store)
        n = suggestions

        def raw() -> int:
            sql = "SELECT * FROM suggestions s LEFT JOIN documents d ON d.id = s.document_id"
            return sum(1 for _ in db.execute(sql))

        raw()  # warm the page cache, so the floor is SQLite's, not the disk's
        floor = timed("plain SQL read", n, raw)
        for fmt, no_code in (("sft", False), ("kto", False), ("sft", True)):
            label = f"export {fmt}{' --no-code' if no_code else ''}"
            opts = ExportOptions(format=fmt, no_code=no_code)
            out = folder / f"{fmt}-{no_code}.jsonl"
            seconds = timed(label, n, lambda o=opts, p=out: export(db, o, p).counts)  # type: ignore[misc]
            entries.append(
                {
                    "name": f"export_{fmt}{'_no_code' if no_code else ''}_{n // 1000}k_suggestions",
                    "value": round(n / seconds),
                    "unit": "suggestions/s",
                    "baseline": {"name": "plain SQL read of the same rows", "value": round(n / floor)},
                    "target": None,
                }
            )

        split = export(db, ExportOptions(format="sft", split=True, test_fraction=0.2), folder / "split")
        rows: list[EvalRow] = eval_rows(load_rows(split.paths["test"]))[:held_out]
        # One thread: llama.cpp's threads spin at barriers, and on a shared 2-core machine two
        # of them ran ~10x slower than one (measured 5.8-7.4 s vs 0.5-0.8 s a completion).
        tiny = write_tiny_gguf(folder / "tiny.gguf")
        model = gguf_model("tiny", "base", tiny, max_tokens=max_tokens, n_threads=1)
        inner = 0.0
        call = model.complete

        def counting(prefix: str, suffix: str, language: str = "") -> tuple[str, float]:
            nonlocal inner
            text, ms = call(prefix, suffix, language)
            inner += ms / 1000
            return text, ms

        model.complete = counting
        start = time.perf_counter()
        run_eval(rows, [model], folder / "eval")
        wall = time.perf_counter() - start
        print(
            f"eval: {len(rows)} held-out rows, tiny GGUF, {max_tokens} tokens: {wall:.1f} s "
            f"= {wall * 1000 / len(rows):.1f} s per 1,000 rows; inside the engine {inner / wall:.0%}",
            file=sys.stderr,
        )
        entries.append(
            {
                "name": f"eval_per_1000_rows_tiny_gguf_{max_tokens}_tokens_1_thread",
                "value": round(wall * 1000 / len(rows), 1),
                "unit": "s",
                "baseline": {
                    "name": "time inside the engine calls alone (worker process, IPC included)",
                    "value": round(inner * 1000 / len(rows), 1),
                },
                "target": None,
            }
        )
        db.conn.close()
    return entries


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--suggestions", type=int, default=100_000)
    parser.add_argument("--eval-rows", type=int, default=200)
    parser.add_argument("--max-tokens", type=int, default=16)
    args = parser.parse_args()
    for entry in run(args.suggestions, args.eval_rows, args.max_tokens):
        print(json.dumps(entry))


if __name__ == "__main__":
    main()
