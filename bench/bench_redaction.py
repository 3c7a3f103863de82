"""Redaction precision: lines of real Python the redactor masks, per 10,000 lines.

Real code holds almost no secrets, so nearly every line the redactor changes in it is a
line Goldiff would record wrongly (and train on). Runs `redact` over every `.py` file under
the given roots (default: the standard library and the installed packages of the running
interpreter, plus any extra folders), counts the lines that changed, and prints each one so
a reader can tell a real secret (a test key in a package's test suite) from a false alarm.
Target: at most 1 masked line per 10,000.

    PYTHONPATH=server python bench/bench_redaction.py [--max-lines 60000] [ROOT ...]
"""

from __future__ import annotations

import argparse
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from goldiff.capture.redaction import redact


def python_files(roots: list[Path]) -> Iterator[Path]:
    for root in roots:
        if root.is_file():
            yield root
            continue
        # The standard library's folder holds site-packages too: count each file once.
        nested = "site-packages" not in root.parts
        yield from sorted(
            p
            for p in root.rglob("*.py")
            if p.is_file() and not (nested and "site-packages" in p.relative_to(root).parts)
        )


def measure(roots: list[Path], max_lines: int) -> dict[str, Any]:
    lines = 0
    masked: list[tuple[str, str]] = []
    started = time.perf_counter()
    for path in python_files(roots):
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        out = redact(text)
        before, after = text.splitlines(), out.splitlines()
        lines += len(before)
        if out != text:
            masked += [
                (f"{path}:{i + 1}", a) for i, (b, a) in enumerate(zip(before, after, strict=False)) if a != b
            ]
        if lines >= max_lines:
            break
    seconds = time.perf_counter() - started
    return {
        "lines": lines,
        "masked": masked,
        "per_10k": 10_000 * len(masked) / max(lines, 1),
        "seconds": seconds,
    }


def default_roots() -> list[Path]:
    return [Path(sysconfig.get_paths()["stdlib"]), Path(sysconfig.get_paths()["purelib"])]


def run() -> list[dict[str, Any]]:
    result = measure(default_roots(), 60_000)
    return [
        {
            "name": "redaction: masked lines in real Python",
            "value": round(result["per_10k"], 2),
            "unit": f"per 10,000 lines ({result['lines']} lines)",
            "baseline": None,
            "target": "<= 1",
            "met": result["per_10k"] <= 1,
        }
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("roots", nargs="*", type=Path)
    parser.add_argument("--max-lines", type=int, default=60_000)
    args = parser.parse_args()
    result = measure(args.roots or default_roots(), args.max_lines)
    for where, line in result["masked"]:
        print(f"{where}: {line.strip()[:160]}")
    print(
        f"{len(result['masked'])} masked lines in {result['lines']} lines of Python: "
        f"{result['per_10k']:.2f} per 10,000 ({result['seconds']:.1f} s)",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
