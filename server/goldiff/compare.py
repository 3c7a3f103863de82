"""`goldiff.compare`: the current local model beside another on the user's recent gold.

The editor's "Compare Models" asks for two names (registered models or GGUF paths; the
second may be `frontier`, whose recorded suggestions are scored as they were shown) and
gets back `goldiff eval`'s report on the newest held-out rows of the store: shown accept
rate, characters saved, latency, empty rate and the accept proxy, per model. Evaluation
loads llama.cpp models, so it runs as `goldiff eval` in a child process, like
distillation: it must not weigh on, or crash, the server that completes as the user types.
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import sqlite_utils

from goldiff import protocol
from goldiff.errors import ConfigError
from goldiff.records import outcome_stats, shadow_tally

FRONTIER = "frontier"


def label(model: str) -> str:
    """The name a model has in the report: a registry name as is, a path by its file stem."""
    return Path(model).stem if model.endswith(".gguf") or "/" in model else model


def eval_command(home: Path, args: protocol.CompareArgs, out: Path) -> list[str]:
    """The `goldiff eval` line that compares `current` with `other` on the newest rows."""
    current, other = args.current.strip(), args.other.strip()
    if not current:
        raise ConfigError("goldiff.compare needs the current model's name (or GGUF path)")
    command = [sys.executable, "-m", "goldiff", "eval", "--home", str(home), "--out", str(out)]
    command += ["--limit", str(args.limit), "--model", f"{label(current)}={current}"]
    if other != FRONTIER:
        if not other or label(other) in (label(current), FRONTIER):
            raise ConfigError(f"compare {current} with another model, not {other or 'nothing'}")
        command += ["--model", f"{label(other)}={other}", "--no-frontier"]
    return command


def recorded_figures(db: sqlite_utils.Database) -> dict[str, Any]:
    """What the user was really shown, beside the evaluation: per source and model, and shadow.

    From the recorded outcomes (acceptance, mean survival at the last checkpoint) and, in
    shadow mode, the hidden local answers computed beside the shown ones: how often one
    was empty, equal to the shown suggestion, or a prefix of what the user finally kept.
    """
    last = str(protocol.CHECKPOINTS[-1])
    sources = [
        {
            "source": e["source"],
            "model": e["model"],
            "shown": e["shown"],
            "acceptance_rate": e["acceptance_rate"],
            "survival": e["mean_survival"].get(last),
        }
        for e in outcome_stats(db)["by_source"]
    ]
    return {"survival_after_seconds": int(last), "by_source": sources, "shadow": asdict(shadow_tally(db))}
