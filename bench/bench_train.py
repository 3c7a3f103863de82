"""Training throughput of the default recipe's model on this machine, side by side.

Runs the same optimizer steps (default model: qwen2, ~30M params) in fp32 and with bf16
autocast, and with 1 and 2 torch threads, in one process, on random token windows (speed does not
depend on the text), and prints tokens/s for each plus the ratios as JSON. Not part of the
test suite: numbers depend on the machine and on what else runs on it.

    python bench/bench_train.py [--seq-len 256] [--batch-size 4] [--steps 5]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import torch
from goldiff.distill.config import load_recipe
from goldiff.distill.model import build_model, count_parameters
from goldiff.distill.train import _loss


def tokens_per_second(config, *, bf16: bool, threads: int, steps: int, warmup: int = 2) -> float:  # type: ignore[no-untyped-def]
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build_model(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(0)
    shape = (config.batch_size, config.seq_len)
    elapsed = 0.0
    for step in range(warmup + steps):
        ids = torch.randint(0, config.vocab_size, shape, generator=g)
        batch = {"input_ids": ids, "labels": torch.roll(ids, -1, dims=1)}
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = _loss(model, batch, config.vocab_size)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step >= warmup:
            elapsed += time.perf_counter() - start
    return steps * shape[0] * shape[1] / elapsed


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="default")
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args(argv)
    config = load_recipe(args.recipe, seq_len=args.seq_len, batch_size=args.batch_size)
    runs = {
        "fp32_1thread": tokens_per_second(config, bf16=False, threads=1, steps=args.steps),
        "fp32_2threads": tokens_per_second(config, bf16=False, threads=2, steps=args.steps),
        "bf16_2threads": tokens_per_second(config, bf16=True, threads=2, steps=args.steps),
    }
    report = {
        "recipe": args.recipe,
        "parameters": count_parameters(build_model(config)),
        "tokens_per_step": config.batch_size * config.seq_len,
        "tokens_per_s": {k: round(v, 1) for k, v in runs.items()},
        "ratio_2threads_vs_1": round(runs["fp32_2threads"] / runs["fp32_1thread"], 3),
        "ratio_bf16_vs_fp32": round(runs["bf16_2threads"] / runs["fp32_2threads"], 3),
        "cpu_threads_available": torch.get_num_threads(),
    }
    print(json.dumps(report, indent=1))
    return report


def run(quick: bool = False) -> list[dict[str, Any]]:
    """For bench/run.py: the default recipe, fp32 one thread vs two, bf16 vs fp32."""
    report = main(["--steps", "2" if quick else "3"])
    tps = report["tokens_per_s"]
    return [
        {
            "name": "train_tokens_per_second_default_recipe",
            "value": tps["fp32_2threads"],
            "unit": "tokens/s",
            "baseline": {"name": "fp32, 1 thread", "value": tps["fp32_1thread"]},
            "ratio": report["ratio_2threads_vs_1"],
            "target": None,
            "met": None,
        },
        {
            "name": "train_bf16_vs_fp32",
            "value": report["ratio_bf16_vs_fp32"],
            "unit": "x",
            "baseline": {"name": "fp32, 2 threads", "value": tps["fp32_2threads"]},
            "target": None,
            "met": None,
        },
    ]


if __name__ == "__main__":
    main()
