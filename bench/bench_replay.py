"""Replay throughput through the real server, and the demo's headline, as JSON.

    python bench/bench_replay.py [--commits 6] [--demo none|tiny|full] [--out FILE]

Throughput: a history generated from standard-library modules (each commit adds the next
part of a few files) is replayed twice, side by side in one run: with capture only (no
completion source: the cost of typing through LSP into the store) and with the
deterministic test source answering every completion request (the cost of the requests,
the outcome notifications and the settle at each commit). Reported: typed characters per
second, keystrokes per second, commits per minute, and the ratio of the two runs.

The demo's headline (distilled vs base accept proxy and exact match on held-out commits)
comes from running `goldiff demo` in the asked size (`tiny`: the test-suite configuration;
`full`: the real one, minutes) or from an earlier run's `demo.json` (`--demo-json`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))

from goldiff.replay.developer import DeveloperProfile
from goldiff.replay.driver import ReplayOptions, replay_async

MODULES = ("textwrap", "fnmatch", "colorsys")
TEST_SOURCE = "test:" + json.dumps({"rules": [], "default": "pass"})


def _git(repo: Path, *args: str) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Bench",
        "GIT_AUTHOR_EMAIL": "bench@example.com",
        "GIT_COMMITTER_NAME": "Bench",
        "GIT_COMMITTER_EMAIL": "bench@example.com",
    }
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, env=env)


def make_history(root: Path, commits: int) -> int:
    """Each commit grows every module file by its next slice of lines; returns chars added."""
    import importlib

    sources = {
        m: Path(importlib.import_module(m).__file__ or "").read_text().splitlines(True) for m in MODULES
    }
    root.mkdir(parents=True)
    _git(root, "init", "-q", "-b", "main")
    total = 0
    for i in range(1, commits + 1):
        for name, lines in sources.items():
            cut = len(lines) * i // commits
            text = "".join(lines[:cut])
            target = root / f"{name}.py"
            total += len(text) - (len(target.read_text()) if target.exists() else 0)
            target.write_text(text)
        _git(root, "add", "-A")
        _git(root, "commit", "-q", "-m", f"step {i}")
    return total


async def measure(repo: Path, home: Path, *, completions: bool) -> dict[str, Any]:
    settings: dict[str, Any] = {"mode": "local", "local": {"model": TEST_SOURCE}} if completions else {}
    options = ReplayOptions(
        seed=0, settings=settings, profile=DeveloperProfile(), ask_completions=completions
    )
    result = await replay_async(repo, home, options)
    minutes = result.wall_seconds / 60
    return {
        "commits": result.commits,
        "keystrokes": result.keystrokes,
        "chars": result.chars_typed + result.chars_accepted,
        "requests": result.requests,
        "wall_seconds": round(result.wall_seconds, 2),
        "chars_per_second": round(result.chars_per_second, 1),
        "keystrokes_per_second": round(result.keystrokes / result.wall_seconds, 1),
        "commits_per_minute": round(result.commits / minutes, 2) if minutes else None,
    }


def demo_headline(size: str, json_path: str | None) -> dict[str, Any] | None:
    if json_path:
        data = json.loads(Path(json_path).read_text())
        return {"source": json_path, **data["headline"], "stage_seconds": data.get("stage_seconds")}
    if size == "none":
        return None
    from goldiff.demo import DemoConfig, run_demo

    with tempfile.TemporaryDirectory() as tmp:
        if size == "tiny":
            repo = Path(tmp) / "history"
            make_history(repo, 4)
            config = DemoConfig.for_tests(repo, paste_over=400)
        else:
            config = DemoConfig()
        result = run_demo(config, home=Path(tmp) / "home", out=Path(tmp) / "report", say=lambda s: None)
        return {"size": size, **result.headline, "stage_seconds": result.stage_seconds}


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Board entries (see bench/run.py): replay with completions vs capture only."""
    commits = 2 if quick else 3
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "history"
        make_history(repo, commits)
        capture = asyncio.run(measure(repo, Path(tmp) / "capture", completions=False))
        suggesting = asyncio.run(measure(repo, Path(tmp) / "suggest", completions=True))
    return [
        {
            "name": f"replay_chars_per_second_with_completions ({commits} commits, test source)",
            "value": suggesting["chars_per_second"],
            "unit": "chars/s",
            "baseline": {
                "name": "the same replay, capture only, chars/s",
                "value": capture["chars_per_second"],
            },
            "target": None,
        },
        {
            "name": "replay_commits_per_minute_with_completions",
            "value": suggesting["commits_per_minute"],
            "unit": "commits/min",
            "baseline": {"name": "capture only", "value": capture["commits_per_minute"]},
            "target": None,
        },
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commits", type=int, default=3)
    parser.add_argument("--demo", choices=("none", "tiny", "full"), default="none")
    parser.add_argument("--demo-json", help="take the headline from an earlier demo.json")
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "history"
        added = make_history(repo, args.commits)
        capture = asyncio.run(measure(repo, Path(tmp) / "capture", completions=False))
        suggesting = asyncio.run(measure(repo, Path(tmp) / "suggest", completions=True))
    report: dict[str, Any] = {
        "history": {"commits": args.commits, "chars_added": added, "modules": list(MODULES)},
        "capture_only": capture,
        "with_completions": suggesting,
        "ratio_chars_per_second_with_vs_without_completions": round(
            suggesting["chars_per_second"] / capture["chars_per_second"], 3
        ),
        "demo": demo_headline(args.demo, args.demo_json),
    }
    text = json.dumps(report, indent=2, sort_keys=True)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
