"""Held-out rest-of-line cases from a git history: what a developer would see while typing.

For the last commits of a repository, every added, non-blank line of a Python file is a
line someone typed. At a natural cursor stop in it (`metrics.cursor_stops`: after the
indentation, after `.`, `(`, `,`, `=`, a space) the context is the file as committed up to
the cursor (prefix) and after the line (suffix: the rest of the line is not typed yet), and
the gold is the rest of the line. One stop per line, chosen by a seeded generator, keeps
the cases spread over many lines.

`score_cases` asks any completion source (the server's own `LocalSource`, with its prompt
building and stop rules) for each case through the same `CompletionRequest` the language
server builds, and tallies the user-facing metrics (`metrics.ByTrigger`).
"""

from __future__ import annotations

import json
import random
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from goldiff.metrics import ByTrigger, cursor_stops
from unidiff.patch import PatchSet

MIN_GOLD_CHARS = 2  # a one-character rest of line (`)`) says little about a model


@dataclass(frozen=True)
class Case:
    repo: str
    commit: str
    path: str
    line: int  # 1-based, in the file at `commit`
    prefix: str
    suffix: str
    gold: str


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, errors="replace"
    ).stdout


def _added_lines(repo: Path, commit: str) -> Iterator[tuple[str, int]]:
    """(path, 1-based line number) of every line `commit` added to a .py file."""
    diff = _git(repo, "show", "--format=", "--unified=0", "--no-renames", commit, "--", "*.py")
    for patched in PatchSet(diff):
        for hunk in patched:
            for line in hunk:
                if line.is_added and line.target_line_no is not None:
                    yield patched.path, line.target_line_no


def build_cases(
    repo: str | Path, *, commits: int = 40, per_repo: int = 100, seed: int = 0, max_prefix: int = 8000
) -> list[Case]:
    """Up to `per_repo` cases from the added lines of the last `commits` first-parent commits."""
    repo = Path(repo)
    rng = random.Random(seed)
    shas = _git(repo, "rev-list", "--first-parent", "--no-merges", f"-{commits}", "HEAD").split()
    candidates: list[tuple[str, str, int]] = []
    for sha in shas:
        for path, line in _added_lines(repo, sha):
            candidates.append((sha, path, line))
    rng.shuffle(candidates)
    files: dict[tuple[str, str], list[str]] = {}
    cases: list[Case] = []
    seen: set[tuple[str, str]] = set()
    for sha, path, line in candidates:
        if len(cases) >= per_repo:
            break
        key = (sha, path)
        if key not in files:
            try:
                files[key] = _git(repo, "show", f"{sha}:{path}").split("\n")
            except subprocess.CalledProcessError:
                files[key] = []
        lines = files[key]
        if not 0 < line <= len(lines):
            continue
        text = lines[line - 1]
        if text.lstrip().startswith("#") or (path, text.strip()) in seen:
            continue
        stops = [s for s in cursor_stops(text) if len(text[s:].rstrip()) >= MIN_GOLD_CHARS]
        if not stops:
            continue
        seen.add((path, text.strip()))
        col = rng.choice(stops)
        before = "\n".join(lines[: line - 1])
        prefix = (before + "\n" if line > 1 else "") + text[:col]
        suffix = "\n" + "\n".join(lines[line:])
        cases.append(
            Case(repo.name, sha[:12], path, line, prefix[-max_prefix:], suffix[:2000], text[col:].rstrip())
        )
    return cases


def write_cases(cases: list[Case], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for case in cases:
            fh.write(json.dumps(asdict(case), ensure_ascii=False) + "\n")


def read_cases(path: Path) -> list[Case]:
    with path.open(encoding="utf-8") as fh:
        return [Case(**json.loads(line)) for line in fh if line.strip()]


Complete = Callable[[Case], tuple[str, float]]


def score_cases(
    cases: list[Case], complete: Complete, *, record: Callable[[dict[str, Any]], None] | None = None
) -> dict[str, Any]:
    """Ask `complete` for every case and tally what a user would have seen."""
    tally = ByTrigger()
    for case in cases:
        text, latency = complete(case)
        ok = tally.add(case.prefix, text, case.gold, latency)
        if record is not None:
            record(
                {
                    "repo": case.repo,
                    "path": case.path,
                    "line": case.line,
                    "gold": case.gold,
                    "text": text,
                    "accepted": ok,
                    "latency_ms": latency,
                }
            )
    return tally.summary()
