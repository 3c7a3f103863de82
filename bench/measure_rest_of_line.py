"""Rest-of-line quality of local models on code they never saw, through the server's own source.

A measurement run by hand (minutes to tens of minutes), not part of the board (bench/run.py).

Cases come from the last commits of real histories (`build_cases` in `bench/restofline.py`: added
lines, one natural cursor stop per line, gold = the rest of the line). Each model config is
a `LocalSource` with a serving profile, asked with the `CompletionRequest` the language
server builds (same excerpts, `MAX_TOKENS`, stop rules, `finish_text`), so the figures are
what a user would see. Reported per config: accept proxy, share of shown suggestions that
are a prefix of the gold, chars saved, exact, empty rate, latency p50/p95, and per trigger
kind; and, from the per-token log-probabilities, what stopping at the first token below a
probability threshold would have shown.

    python bench/measure_rest_of_line.py --repo /tmp/toolz --repo /tmp/boltons \\
        --config default-fim=models/goldiff-default-Q6_K.gguf:fim \\
        --config smollm2-heal=PATH/SmolLM2-135M-Instruct.Q4_1.gguf:prefix:heal --out results/rol

A config is NAME=PATH[:fim|:prefix][:heal][:ctx=TOKENS]; NAME=PATH alone serves the model with
its own profile (`PATH` minus `.gguf` plus `.serve.json`), as the server would. `--seconds` is
the per-request budget (the server's is 2 s; a busy shared machine needs more to measure
quality rather than load). Use `--threads 1` on a shared machine: llama.cpp threads that
outnumber the free cores spin against each other.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from goldiff.metrics import Tally
from goldiff.sources.base import CompletionRequest, finish_text
from goldiff.sources.completion import MAX_TOKENS, prefix_excerpt, suffix_excerpt
from goldiff.sources.local import LocalSource
from goldiff.sources.profile import ServeProfile
from restofline import (  # beside this script: bench/ is run as scripts
    Case,
    build_cases,
    read_cases,
    score_cases,
    write_cases,
)

TRUNCATE_AT = (0.05, 0.1, 0.2, 0.3, 0.5)


def parse_config(spec: str) -> tuple[str, Path, ServeProfile | None]:
    name, _, rest = spec.partition("=")
    path, *flags = rest.split(":")
    if not flags:
        return name, Path(path), None  # the model's own serving profile (NAME.serve.json)
    prompt = next((f for f in flags if f in ("fim", "prefix")), None)
    ctx = next((int(f[4:]) for f in flags if f.startswith("ctx=")), None)
    return name, Path(path), ServeProfile(prompt=prompt, heal="heal" in flags, context_tokens=ctx)


def request_for(case: Case, seconds: float) -> CompletionRequest:
    return CompletionRequest(
        prefix=prefix_excerpt(case.prefix),
        suffix=suffix_excerpt(case.suffix),
        language="python",
        path=case.path,
        max_tokens=MAX_TOKENS,
        max_seconds=seconds,
    )


def run_config(
    name: str,
    path: Path,
    profile: ServeProfile | None,
    cases: list[Case],
    seconds: float,
    threads: int,
    out: Path,
) -> dict[str, Any]:
    source = LocalSource(path, profile=profile, n_threads=threads)
    truncated = {t: Tally() for t in TRUNCATE_AT}
    records: list[dict[str, Any]] = []

    def complete(case: Case) -> tuple[str, float]:
        request = request_for(case, seconds)
        completion = source.complete(request)
        # What stopping at the first unsure token would have shown, from the same answer.
        pieces = [bytes(source.llm.detokenize([t])) for t in source.last_tokens]
        heal = source.build_prompt(request)[1]
        for t in TRUNCATE_AT:
            keep = next(
                (i for i, lp in enumerate(completion.token_logprobs) if lp < math.log(t)), len(pieces)
            )
            raw = b"".join(pieces[:keep])[len(heal) :].decode("utf-8", "replace")
            truncated[t].add(finish_text(raw, request), case.gold)
        records.append({"logprobs": completion.token_logprobs, "stop": completion.stop_reason})
        return completion.text, completion.latency_ms

    out.mkdir(parents=True, exist_ok=True)
    with (out / f"{name}.jsonl").open("w", encoding="utf-8") as fh:

        def record(row: dict[str, Any]) -> None:
            fh.write(json.dumps(row | records[-1], ensure_ascii=False) + "\n")
            fh.flush()

        started = time.perf_counter()
        summary = score_cases(cases, complete, record=record)
    source.close()
    return {
        "model": str(path),
        "prompt": source.prompt_mode,
        "heal": source.profile.heal,
        "min_token_prob": source.profile.min_token_prob,
        "context_tokens": source.n_ctx,
        "wall_s": time.perf_counter() - started,
        **summary,
        "truncate_below": {str(t): truncated[t].summary() for t in TRUNCATE_AT},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", action="append", default=[], help="a git clone (repeatable)")
    ap.add_argument("--cases", type=Path, help="read (or, with --repo, write) the cases here")
    ap.add_argument("--per-repo", type=int, default=100)
    ap.add_argument("--commits", type=int, default=40)
    ap.add_argument("--config", action="append", default=[], help="NAME=PATH[:fim|:prefix][:heal]")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("bench/results/rest_of_line"))
    args = ap.parse_args(argv)
    if args.repo:
        cases = [c for r in args.repo for c in build_cases(r, commits=args.commits, per_repo=args.per_repo)]
        if args.cases:
            write_cases(cases, args.cases)
    elif args.cases:
        cases = read_cases(args.cases)
    else:
        ap.error("give --repo or --cases")
    results = {}
    for spec in args.config:
        name, path, profile = parse_config(spec)
        results[name] = run_config(name, path, profile, cases, args.seconds, args.threads, args.out)
        r = results[name]
        print(
            f"{name:24} accept {r['accept_proxy']:.3f}  shown-acc {r['shown_accept_rate'] or 0:.3f}  "
            f"chars {r['chars_saved']:.3f}  exact {r['exact']:.3f}  empty {r['empty_rate']:.3f}  "
            f"p50 {r['latency_p50_ms'] or 0:.0f} ms  p95 {r['latency_p95_ms'] or 0:.0f} ms",
            flush=True,
        )
    (args.out / "summary.json").write_text(
        json.dumps({"cases": len(cases), "results": results}, indent=2) + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
