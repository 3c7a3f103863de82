"""Promotion: a candidate becomes the default only when it beats the current one on held-out gold."""

from __future__ import annotations

from pathlib import Path

import pytest
from goldiff.distill.promote import decide, local_completer, promote_if_better
from goldiff.evaluate import EvalRow
from goldiff.sources.registry import Registry

from tests.tiny_models import write_tiny_gguf, write_tiny_lora_gguf

PREFIXES = [
    "x = ",
    "def f",
    "class A:\n    ",
    "import os\nimport ",
    "for i in range(",
    "total = sum(",
    "y = x.",
]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("models")
    base = write_tiny_gguf(folder / "goldiff-tiny.gguf")
    return base, write_tiny_lora_gguf(base, folder / "goldiff-tiny-lora.gguf")


def gold_from(path: Path, adapter: Path | None = None) -> list[EvalRow]:
    """Held-out rows whose gold is what this model writes (plus more of the line)."""
    complete, close = local_completer(path, adapter=adapter, threads=1)
    rows = []
    for prefix in PREFIXES:
        text, _ = complete(prefix, "\n")
        rows.append(EvalRow(str(len(rows)), prefix, "\n", text + " # rest"))
    close()
    return rows


def test_promotion_refuses_a_worse_model_and_takes_a_better_one(
    models: tuple[Path, Path], tmp_path: Path
) -> None:
    base, lora = models
    home = tmp_path / "home"
    registry = Registry(home)
    registry.register("current", base)
    registry.use("current")
    registry.register("candidate", lora, kind="adapter", base="current")

    # Gold the current model gets right and the candidate does not: refused, default kept.
    refused = promote_if_better(home, "candidate", gold_from(base), threads=1)
    assert not refused.promote
    assert refused.reason.startswith("worse") and "chars saved" in refused.reason
    assert refused.candidate["chars_saved"] < refused.current["chars_saved"]
    assert registry.default() == "current"
    assert registry.get("candidate").lineage["promotion"]["promoted"] is False  # type: ignore[union-attr]

    # Gold the candidate gets right: promoted.
    taken = promote_if_better(home, "candidate", gold_from(base, lora), threads=1)
    assert taken.promote and taken.candidate["chars_saved"] > taken.current["chars_saved"]
    assert registry.default() == "candidate"


def test_decide_needs_a_real_gain() -> None:
    current = {"chars_saved": 0.10, "requests": 40}
    assert not decide({"chars_saved": 0.10, "requests": 40}, current).promote
    assert not decide({"chars_saved": 0.102, "requests": 40}, current).promote
    assert decide({"chars_saved": 0.12, "requests": 40}, current).promote
    assert not decide({"chars_saved": 0.5, "requests": 0}, current).promote
