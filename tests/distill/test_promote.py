"""Promotion: a candidate becomes the default only when it beats the current one on held-out gold."""

from __future__ import annotations

from pathlib import Path

import pytest
from goldiff.distill.promote import decide, local_completer, promote_if_better
from goldiff.evaluate import EvalRow
from goldiff.metrics import gain_lower_bound
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


def test_a_gain_from_a_handful_of_rows_is_not_enough_to_switch() -> None:
    """A fine-tune promoted on a gain that is a row or two of luck can be worse on the next commits."""
    gold = [20] * 40
    current = {"chars_saved": 0.10, "requests": 40, "saved_by_row": [2] * 40, "gold_by_row": gold}
    lucky = [2] * 39 + [22]  # +2.5 points, all of it one row
    once = decide({"chars_saved": 0.125, "requests": 40, "saved_by_row": lucky, "gold_by_row": gold}, current)
    assert not once.promote
    assert once.reason.startswith("not surely better") and "95% lower bound" in once.reason
    steady = [4] * 30 + [2] * 10  # +7.5 points, from most rows
    taken = decide(
        {"chars_saved": 0.175, "requests": 40, "saved_by_row": steady, "gold_by_row": gold}, current
    )
    assert taken.promote and "95% lower bound +" in taken.reason
    # The bound is the bootstrap's: a gain on every row is sure, an equal split is not.
    assert gain_lower_bound([3] * 10, [1] * 10, [10] * 10) == pytest.approx(0.2)
    assert gain_lower_bound([3, 1] * 5, [1, 3] * 5, [10] * 10) < 0
