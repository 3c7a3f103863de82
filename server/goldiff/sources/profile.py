"""How a model is best served, decided by measurement and stored beside the model.

A GGUF `NAME.gguf` may have a sidecar `NAME.serve.json`:

    {"prompt": "prefix",        # "fim" or "prefix": how the local source asks it
     "heal": true,              # back the prompt up one token and make the answer start with it
     "min_token_prob": 0.0,     # stop a suggestion at the first token less likely than this
     "context_tokens": 1024,    # prompt + answer budget (a shorter prompt is a faster cold start)
     "gate": "NAME.gate.json",  # a learned show/hide gate (goldiff.gate), relative to the model
     "measured": {...}}         # the figures that decided the above, with the command

Without a sidecar a model with FIM tokens is asked with FIM prompts and one without is
asked left to right (the text after the cursor then only shapes the stop rule). The
shipped models' sidecars hold the rest-of-line benchmark figures that chose their
settings (bench/measure_rest_of_line.py). A model `goldiff distill` makes inherits its
base's (`distill.pipeline.inherit_profile`): it was trained in the same prompt shape.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServeProfile:
    prompt: str | None = None  # None: FIM when the model has FIM tokens, else prefix
    heal: bool = False
    min_token_prob: float = 0.0
    context_tokens: int | None = None  # None: the source's N_CTX
    gate: Path | None = None


def sidecar_path(model_path: Path) -> Path:
    return model_path.with_name(model_path.name.removesuffix(".gguf") + ".serve.json")


def load_profile(model_path: str | Path) -> ServeProfile:
    """The model's sidecar profile, or the defaults; a broken sidecar is logged, not fatal."""
    path = sidecar_path(Path(model_path))
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return ServeProfile()
    except (OSError, ValueError) as exc:
        log.warning("ignoring the unreadable serving profile %s: %s", path, exc)
        return ServeProfile()
    prompt = data.get("prompt")
    if prompt not in (None, "fim", "prefix"):
        log.warning("ignoring prompt=%r in %s (use fim or prefix)", prompt, path)
        prompt = None
    gate = data.get("gate")
    return ServeProfile(
        prompt=prompt,
        heal=bool(data.get("heal", False)),
        min_token_prob=float(data.get("min_token_prob", 0.0)),
        context_tokens=int(data["context_tokens"]) if data.get("context_tokens") else None,
        gate=(path.parent / gate) if isinstance(gate, str) and gate else None,
    )


def write_profile(model_path: str | Path, **fields: Any) -> Path:
    """Write (or update) the sidecar of `model_path` with `fields`."""
    path = sidecar_path(Path(model_path))
    try:
        data = json.loads(path.read_text("utf-8"))
    except (FileNotFoundError, ValueError):
        data = {}
    data.update(fields)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", "utf-8")
    return path
