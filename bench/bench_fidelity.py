"""Fidelity: a replayed slice of a real project's history, rebuilt from the store, file by file.

Replays the last N commits of REPO (a git clone; `git clone X.bundle` works) through the
real server with `goldiff replay`, then rebuilds each recorded file from the store and
compares it, byte for byte, with the file as the last replayed commit holds it. Prints the
files that differ and the lines that differ in them (each one a line the redactor changed,
or a capture bug). Target: every file exact.

    PYTHONPATH=server python bench/bench_fidelity.py REPO [--commits 5] [--include '*.py']
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from goldiff import records
from goldiff.replay import ReplayOptions, replay_async
from goldiff.store import open_database


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def measure(repo: Path, commits: int, include: list[str]) -> dict[str, Any]:
    shas = _git(repo, "rev-list", "--first-parent", f"--max-count={commits + 1}", "HEAD").split()
    first, last = shas[-1], shas[0]
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        options = ReplayOptions(
            seed=0, rev_range=f"{first}..{last}", include=tuple(include), max_requests_per_commit=20
        )
        result = asyncio.run(replay_async(repo, home, options))
        db, _ = open_database(home / "traces.db")
        latest: dict[str, records.DocumentText] = {}
        for doc_id, uri, path in db.execute(
            "SELECT id, uri, path FROM documents WHERE skipped IS NULL ORDER BY rowid"
        ).fetchall():
            latest[path] = records.document_at(db, doc_id, uri=uri)
        db.conn.close()
    differ: dict[str, list[str]] = {}
    for path, rebuilt in sorted(latest.items()):
        try:
            want = _git(repo, "show", f"{last}:{path}")
        except subprocess.CalledProcessError:
            continue  # deleted by a later commit in the slice
        if rebuilt.text != want:
            got_lines = rebuilt.text.splitlines()
            differ[path] = [g for g, w in zip(got_lines, want.splitlines(), strict=False) if g != w]
    return {"commits": result.commits, "files": len(latest), "differ": differ}


def run() -> list[dict[str, Any]]:
    """For the benchmark board: the last 5 commits of toolz (the shared history bundle)."""
    default = Path(__file__).resolve().parents[2] / "shared" / "histories" / "toolz.bundle"
    bundle = Path(os.environ.get("GOLDIFF_FIDELITY_BUNDLE", default))
    if not bundle.exists():
        return []
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "toolz"
        subprocess.run(["git", "clone", "-q", str(bundle), str(repo)], check=True)
        out = measure(repo, 5, ["*.py"])
    exact = out["files"] - len(out["differ"])
    return [
        {
            "name": "fidelity: files rebuilt exactly after replaying toolz (5 commits)",
            "value": exact,
            "unit": f"of {out['files']} files",
            "baseline": None,
            "target": "all",
            "met": not out["differ"],
        }
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo", type=Path)
    parser.add_argument("--commits", type=int, default=5)
    parser.add_argument("--include", action="append", default=None)
    args = parser.parse_args()
    out = measure(args.repo.resolve(), args.commits, args.include or ["*.py"])
    for path, lines in out["differ"].items():
        print(f"{path}: {len(lines)} lines differ")
        for line in lines[:10]:
            print(f"    {line[:160]}")
    exact = out["files"] - len(out["differ"])
    print(f"{out['commits']} commits, {exact} of {out['files']} files rebuilt exactly", file=sys.stderr)


if __name__ == "__main__":
    main()
