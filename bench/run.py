"""The benchmark board: run every benchmark in bench/, write results/latest.json and a table.

Each `bench_*.py` module has `run() -> list[dict]`; each entry holds `name`, `value`,
`unit`, `baseline` (what it was compared with in the same run, and its value), `target`
and `met`. The README's performance section is generated from `results/latest.json`.
Usage: `python bench/run.py [NAME ...]` (names without the `bench_` prefix).
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))
RESULTS = ROOT / "results"


def discover(names: list[str]) -> list[str]:
    found = sorted(p.stem for p in ROOT.glob("bench_*.py"))
    if names:
        found = [f for f in found if f.removeprefix("bench_") in names]
    return found


def markdown(entries: list[dict[str, Any]]) -> str:
    lines = ["| benchmark | value | baseline (same run) | target | met |", "| --- | --- | --- | --- | --- |"]
    for e in entries:
        base = e.get("baseline") or {}
        base_text = f"{base.get('name', '')}: {base.get('value', '')}" if base else ""
        met = {True: "yes", False: "**no**", None: ""}[e.get("met")]
        value = f"{e['value']} {e.get('unit', '')}"
        lines.append(f"| {e['name']} | {value} | {base_text} | {e.get('target') or ''} | {met} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    RESULTS.mkdir(exist_ok=True)
    entries: list[dict[str, Any]] = []
    for module_name in discover(argv):
        started = time.perf_counter()
        print(f"running {module_name} ...", file=sys.stderr, flush=True)
        try:
            module = importlib.import_module(f"bench.{module_name}")
            for entry in module.run():
                entry.setdefault("bench", module_name)
                entries.append(entry)
        except Exception:
            traceback.print_exc()
            entries.append(
                {
                    "name": module_name,
                    "value": "error",
                    "unit": "",
                    "baseline": None,
                    "target": None,
                    "met": False,
                    "bench": module_name,
                }
            )
        print(f"  {time.perf_counter() - started:.1f}s", file=sys.stderr, flush=True)
    board = {
        "machine": f"{platform.machine()} {os.cpu_count()} cores",
        "python": platform.python_version(),
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "entries": entries,
    }
    (RESULTS / "latest.json").write_text(json.dumps(board, indent=2) + "\n")
    (RESULTS / "latest.md").write_text(markdown(entries))
    print(markdown(entries))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
