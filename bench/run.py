"""The benchmark board: run every benchmark in bench/, write results/latest.json and a table.

Each `bench_*.py` module has `run(quick=False) -> list[dict]`; each entry holds `name`,
`value`, `unit`, `baseline` (what it was compared with, measured in the same call on the
same inputs, and its value, or None) and `target` (a string such as "<= 1.10", or None).
The board runs every module `--repeats` times (default 5) and reports, for each figure,
the median with its min and max; a baseline is aggregated the same way from the same
repeats. A figure with a target gets `met` (judged on the median); a figure without one is
a plain measurement, labelled so, with no `met`. A module that fails is reported as an
error row with its traceback's last line, and the board goes on.

    python bench/run.py [--quick] [--repeats N] [NAME ...]   # names without `bench_`

Naming benchmarks re-measures only those: their rows in the board are replaced, the others
kept, and `runs` says when each module's rows were measured.

`--quick` asks each module for its small workload (what 2 busy cores finish in minutes).
The README's performance section is generated from `results/latest.json` (cog).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import platform
import re
import statistics
import sys
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
sys.path[:0] = [str(ROOT.parent / "server"), str(ROOT.parent)]
RESULTS = ROOT / "results"
_TARGET = re.compile(r"^\s*(<=|>=|<|>)\s*([0-9.]+)")


def discover(names: list[str]) -> list[str]:
    found = sorted(p.stem for p in ROOT.glob("bench_*.py"))
    if names:
        found = [f for f in found if f.removeprefix("bench_") in names]
    return found


def met(value: float, target: str | None) -> bool | None:
    match = _TARGET.match(target or "")
    if match is None:
        return None
    op, bound = match.group(1), float(match.group(2))
    return {"<=": value <= bound, ">=": value >= bound, "<": value < bound, ">": value > bound}[op]


def _spread(values: list[float]) -> dict[str, float]:
    return {"value": statistics.median(values), "min": min(values), "max": max(values)}


def aggregate(runs: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One board entry per figure: median, min and max over the repeats that measured it."""
    order: list[tuple[str, str]] = []
    seen: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for entries in runs:
        for e in entries:
            key = (e["bench"], e["name"])
            if key not in seen:
                order.append(key)
                seen[key] = []
            seen[key].append(e)
    board = []
    for key in order:
        group = seen[key]
        first = group[0]
        values = [float(e["value"]) for e in group if isinstance(e.get("value"), int | float)]
        entry: dict[str, Any] = {"bench": key[0], "name": key[1], "unit": first.get("unit", "")}
        if not values:
            entry.update({"value": "error", "error": first.get("error"), "repeats": 0})
            board.append(entry)
            continue
        entry.update({k: round(v, 4) for k, v in _spread(values).items()})
        entry["repeats"] = len(values)
        bases = [e["baseline"] for e in group if isinstance(e.get("baseline"), dict)]
        if bases:
            base_values = [float(b["value"]) for b in bases]
            entry["baseline"] = {"name": bases[0]["name"]}
            entry["baseline"].update({k: round(v, 4) for k, v in _spread(base_values).items()})
        else:
            entry["baseline"] = None
        target = first.get("target")
        if target:
            entry["target"] = target
            entry["met"] = met(entry["value"], target)
        else:
            entry["kind"] = "measurement"  # no target: a plain figure, nothing to meet
        if first.get("detail"):
            entry["detail"] = first["detail"]
        board.append(entry)
    return board


def _num(value: Any) -> str:
    if not isinstance(value, int | float):
        return str(value)
    return f"{value:.4g}" if abs(value) < 1000 else f"{value:.0f}"


def markdown(entries: list[dict[str, Any]]) -> str:
    lines = [
        "| benchmark | median (min–max) | baseline, same run: median (min–max) | target | met |",
        "| --- | --- | --- | --- | --- |",
    ]
    for e in entries:
        if e.get("value") == "error":
            lines.append(f"| {e['name']} | error: {e.get('error') or ''} |  |  |  |")
            continue
        value = (
            f"{_num(e['value'])} ({_num(e['min'])}–{_num(e['max'])}) {e.get('unit', '')}, n={e['repeats']}"
        )
        base = e.get("baseline")
        base_text = (
            f"{base['name']}: {_num(base['value'])} ({_num(base['min'])}–{_num(base['max'])})" if base else ""
        )
        if e.get("kind") == "measurement":
            target_text, met_text = "measurement", ""
        else:
            target_text = e.get("target", "")
            met_text = {True: "yes", False: "**no**", None: ""}[e.get("met")]
        lines.append(f"| {e['name']} | {value} | {base_text} | {target_text} | {met_text} |")
    return "\n".join(lines) + "\n"


def run_module(module_name: str, quick: bool) -> list[dict[str, Any]]:
    try:
        module = importlib.import_module(f"bench.{module_name}")
        run = module.run
        kwargs = {"quick": quick} if "quick" in inspect.signature(run).parameters else {}
        entries = list(run(**kwargs))
    except Exception as exc:
        traceback.print_exc()
        last = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
        return [{"bench": module_name, "name": module_name, "value": "error", "error": last}]
    for entry in entries:
        entry["bench"] = module_name
    return entries


def write_board(
    runs: list[list[dict[str, Any]]],
    args: argparse.Namespace,
    seconds: dict[str, float],
    *,
    complete: bool,
    previous: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    entries = aggregate(runs)
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    measured = {"when": when, "repeats": args.repeats, "quick": args.quick}
    runs_of = {m: measured for m in seconds}
    if previous is not None:
        # A run of some benchmarks updates their rows and keeps the others' (each module's
        # rows say when and how they were measured, under "runs").
        kept = [e for e in previous.get("entries", []) if e.get("bench") not in seconds]
        entries = kept + entries
        runs_of = {**previous.get("runs", {}), **runs_of}
        seconds = {**previous.get("seconds_per_benchmark", {}), **seconds}
        complete = complete and bool(previous.get("complete"))
    board = {
        "machine": f"{platform.machine()} {os.cpu_count()} cores",
        "python": platform.python_version(),
        "when": when,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "repeats": args.repeats,
        "quick": args.quick,
        "complete": complete,  # false while running: the board so far
        "seconds_per_benchmark": {k: round(v, 1) for k, v in seconds.items()},
        "runs": runs_of,
        "entries": entries,
    }
    if previous is not None:
        # The board's own date and load stay those of the run that measured everything.
        header = ("when", "load_average_at_end", "repeats", "quick")
        board.update({k: previous[k] for k in header if k in previous})
    (RESULTS / "latest.json").write_text(json.dumps(board, indent=2) + "\n")
    (RESULTS / "latest.md").write_text(markdown(entries))
    return entries


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="each module's small workload")
    args = parser.parse_args(argv)
    RESULTS.mkdir(exist_ok=True)
    board = RESULTS / "latest.json"
    previous = json.loads(board.read_text()) if args.names and board.is_file() else None
    runs: list[list[dict[str, Any]]] = []
    seconds: dict[str, float] = {}
    for module_name in discover(args.names):
        for repeat in range(args.repeats):
            started = time.perf_counter()
            print(f"running {module_name} ({repeat + 1}/{args.repeats}) ...", file=sys.stderr, flush=True)
            entries = run_module(module_name, args.quick)
            runs.append(entries)
            seconds[module_name] = seconds.get(module_name, 0.0) + time.perf_counter() - started
            print(f"  {time.perf_counter() - started:.1f}s", file=sys.stderr, flush=True)
            if any(e.get("value") == "error" for e in entries):
                break  # a broken benchmark stays broken: do not spend the repeats on it
        # What is done so far survives a stop.
        write_board(runs, args, seconds, complete=False, previous=previous)
    entries = write_board(runs, args, seconds, complete=True, previous=previous)
    print(markdown(entries))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
