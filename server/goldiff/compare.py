"""`goldiff.compare`: the current local model beside another on the user's recent gold.

The editor's "Compare Models" asks for two names (registered models or GGUF paths; the
second may be `frontier`, whose recorded suggestions are scored as they were shown) and
gets back `goldiff eval`'s report on the newest held-out rows of the store: shown accept
rate, characters saved, latency, empty rate and the accept proxy, per model. Evaluation
loads llama.cpp models, so it runs as `goldiff eval` in a child process, like
distillation: it must not weigh on, or crash, the server that completes as the user types.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from goldiff import protocol
from goldiff.errors import ConfigError, GoldiffError
from goldiff.home import exports_dir

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


async def compare_for_server(ls: Any, args: Sequence[Any]) -> dict[str, Any]:
    params = protocol.structure(list(args), protocol.CompareArgs)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    out = exports_dir(ls.home) / f"compare-{stamp}"
    command = eval_command(ls.home, params, out)
    ls.store.flush()  # the newest gold belongs in the comparison
    proc = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        _, err = await proc.communicate()
    except asyncio.CancelledError:
        proc.terminate()
        raise
    if proc.returncode != 0:
        message = (err.decode(errors="replace").strip().splitlines() or ["the evaluation failed"])[-1]
        raise GoldiffError(message.removeprefix("Error: "))
    report = json.loads((out / "eval.json").read_text("utf-8"))
    return {
        "current": label(params.current),
        "other": label(params.other),
        "report": report,
        "folder": str(out),
        "markdown": str(out / "report.md"),
    }
