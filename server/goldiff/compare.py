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
from pathlib import Path

from goldiff import protocol
from goldiff.errors import ConfigError

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
