"""How a team's pipeline scales on this machine: export and pool rows/s, training on 1 vs 2 processes.

Two synthetic developers' stores (`--rows` settled suggestions each, distinct contexts) are
exported as a hive-partitioned dataset (baseline: the same rows as one Parquet file, same
run) and pooled; then the tiny recipe fine-tunes on the pooled rows for `--steps` steps
with the same global batch under `accelerate launch --num_processes 1` and `2` (gloo on
the CPU), and each run's tokens/s (all processes together) is read from its result.json.
Numbers depend on the machine and on what else runs on it; nothing here is asserted.

    python bench/bench_teams.py [--rows 5000] [--steps 12] [--batch-size 8] [--seq-len 128]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def fill_store(home: Path, who: str, rows: int) -> Path:
    from goldiff.store import TraceStore

    home.mkdir(parents=True, exist_ok=True)
    store = TraceStore(home / "traces.db")
    ws = f"file:///home/{who}/app"
    store.record_session({"id": f"{who}-s", "started_at": 1.79e9, "workspace": ws, "mode": "local"})
    store.record_document(
        {"id": f"{who}-d", "session_id": f"{who}-s", "uri": f"{ws}/m.py", "workspace": ws, "path": "m.py"}
        | {"language": "python", "opened_at": 1.79e9}
    )
    for i in range(rows):
        prefix = f"def f_{who}_{i}(a, b):\n    total = a + b * {i}\n    return "
        store.record_suggestion(
            {
                "id": f"{who}-{i}",
                "session_id": f"{who}-s",
                "document_id": f"{who}-d",
                "version": 1,
                "ts": 1.79e9 + i * 30.0,  # ~2 days of work: a few date partitions
                "source": "local",
                "model": "m",
                "mode": "local",
                "offset": len(prefix),
                "prefix": prefix,
                "suffix": "\n",
                "text": "total",
                "shown": 1,
                "outcome": "accepted",
                "gold": "total",
                "settled_at": 1.79e9 + i * 30.0 + 10,
            }
        )
    store.close()
    return home


def measure_export(homes: list[Path], work: Path) -> dict[str, float]:
    from goldiff import pool
    from goldiff.export import ExportOptions, export
    from goldiff.store import open_database

    out: dict[str, float] = {}
    rows = 0
    # The single file first: it also warms what both share (imports, the redaction cache).
    for name in ("warm-up", "single"):
        start = time.perf_counter()
        for home in homes:
            db, _ = open_database(home / "traces.db")
            export(db, ExportOptions(format="parquet"), work / f"{home.name}-{name}.parquet")
            db.conn.close()
    single = time.perf_counter() - start
    start = time.perf_counter()
    for home in homes:
        db, _ = open_database(home / "traces.db")
        rows += pool.export_dataset(
            db, ExportOptions(format="parquet"), work / "shared", store=pool.store_id(home / "traces.db")
        ).rows
        db.conn.close()
    out["export_dataset_rows_per_s"] = rows / (time.perf_counter() - start)
    out["export_single_file_rows_per_s"] = rows / single
    start = time.perf_counter()
    result = pool.pool([str(work / "shared")], work / "pooled")
    out["pool_rows_per_s"] = result.rows / (time.perf_counter() - start)
    out["rows"] = rows
    return out


def tiny_base(folder: Path) -> Path:
    """A random model of the tiny recipe laid out as `goldiff bootstrap` leaves a base."""
    import sysconfig

    import torch
    from goldiff.distill.config import load_recipe
    from goldiff.distill.gguf_export import export_checked
    from goldiff.distill.model import build_model
    from goldiff.distill.tokenizer import save_tokenizer, train_tokenizer

    stdlib = sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))[:40]
    texts = [p.read_text(encoding="utf-8", errors="replace") for p in stdlib]
    hf = save_tokenizer(train_tokenizer(texts, vocab_size=512), folder / "goldiff-tiny-hf")
    torch.manual_seed(0)
    model = build_model(load_recipe("tiny"))
    model.save_pretrained(hf)
    return Path(export_checked(model, hf, folder / "goldiff-tiny.gguf", quantize_to=())[0].path)


def measure_training(work: Path, processes: int, args: argparse.Namespace) -> dict[str, Any]:
    base = work / "base" / "goldiff-tiny.gguf"
    if not base.exists():
        base = tiny_base(work / "base")
    home = work / f"home-{processes}"
    command = [str(Path(sys.executable).with_name("accelerate")), "launch"]
    # --multi_gpu picks accelerate's torch.distributed launcher; without a GPU it runs gloo on the CPU.
    command += ["--multi_gpu"] if processes > 1 else ["--cpu"]
    command += ["--num_processes", str(processes), "--num_machines", "1", "--mixed_precision", "no"]
    command += ["--dynamo_backend", "no", "-m", "goldiff", "distill", "--home", str(home)]
    command += ["--data", str(work / "pooled"), "--base", str(base), "--name", "bench", "--recipe", "tiny"]
    command += ["--steps", str(args.steps), "--batch-size", str(args.batch_size), "--seq-len"]
    # One torch thread per process in both runs: on cores other work shares, two threads in
    # one process spin-wait on each other (an earlier run of this benchmark: 224 tokens/s
    # with 2 threads against 5,541 with 1), which is not what this compares.
    command += [str(args.seq_len), "--threads", "1", "--quantize", "Q8_0", "--json"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "server"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    result = json.loads((home / "models" / "bench" / "distill" / "result.json").read_text())
    return {"tokens_per_s": result["tokens_per_s"], "train_loss": result["train_loss"]}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000, help="suggestions per developer")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=8, help="global batch")
    parser.add_argument("--seq-len", type=int, default=128)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        homes = [fill_store(work / who, who, args.rows) for who in ("alice", "bob")]
        report: dict[str, Any] = measure_export(homes, work)
        one = measure_training(work, 1, args)
        two = measure_training(work, 2, args)
    report |= {
        "train_tokens_per_s_1_process": one["tokens_per_s"],
        "train_tokens_per_s_2_processes": two["tokens_per_s"],
        "train_2_vs_1": two["tokens_per_s"] / one["tokens_per_s"],
        "train_loss_1_vs_2": [one["train_loss"], two["train_loss"]],
        "cpu_count": os.cpu_count(),
    }
    report = {k: round(v, 3) if isinstance(v, float) else v for k, v in report.items()}
    print(json.dumps(report, indent=1))
    return report


def run() -> list[dict[str, Any]]:
    """For bench/run.py."""
    r = main(["--rows", "2000", "--steps", "8"])
    return [
        {
            "name": "teams_export_dataset_rows_per_s",
            "value": round(r["export_dataset_rows_per_s"]),
            "unit": "rows/s",
            "baseline": {
                "name": "one Parquet file, rows/s",
                "value": round(r["export_single_file_rows_per_s"]),
            },
        },
        {"name": "teams_pool_rows_per_s", "value": round(r["pool_rows_per_s"]), "unit": "rows/s"},
        {
            "name": "teams_train_2_vs_1_processes",
            "value": r["train_2_vs_1"],
            "unit": "x",
            "baseline": {"name": "1 process, tokens/s", "value": r["train_tokens_per_s_1_process"]},
        },
    ]


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
