"""A fine-tune must lower held-out loss: `goldiff distill` measures base and fine-tune on the
export's held-out rows, and a no-op or a worse fine-tune would fail here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("llama_cpp")

from goldiff.distill.pipeline import FinetuneOptions, distill_from_store
from goldiff.sources.registry import Registry

from tests.test_export import fill_store

# One idiom of this "repository", 30 times: what a user's gold teaches a model.
SPECS = [
    (
        f"g{i}",
        i,
        "app.py",
        "python",
        "frontier",
        "gpt-x",
        "accepted",
        f"total_{i} = compute(",
        "\n",
        "alpha, beta)",
        "alpha, beta)",
        {"30": 1.0},
    )
    for i in range(30)
]


@pytest.mark.slow
def test_the_fine_tune_lowers_held_out_loss(tmp_path: Path, tiny_base: Any) -> None:
    base = tiny_base
    home = tmp_path / "home"
    fill_store(home, SPECS)
    said: list[str] = []
    options = FinetuneOptions(
        recipe="tiny", steps=8, batch_size=4, seq_len=64, learning_rate=2e-3, threads=1, quantize_to="Q8_0"
    )
    result = distill_from_store(
        home, name="tuned", base=Path(base.gguf_path), options=options, min_rows=2, say=said.append
    )
    losses = result["lineage"]["heldout_loss"]
    assert losses["rows"] >= 1
    assert losses["base"] is not None and losses["tuned"] is not None
    assert losses["tuned"] < losses["base"] - 0.1, losses  # learned, not a no-op
    assert losses["improved"] is True
    entry = Registry(home).get("tuned")
    assert entry is not None and entry.lineage["heldout_loss"] == losses
    assert "promotion" in entry.lineage  # compared with the default on the held-out gold
    assert any("held-out loss" in m for m in said)


@pytest.mark.slow
def test_suggestions_typed_over_teach_a_preference_stage_that_must_not_hurt(
    tmp_path: Path, tiny_base: Any
) -> None:
    # The developer kept `alpha, beta)` where a model suggested `alpha, gamma)`; the
    # deterministic test source's suggestions (the demo's placeholder) are no model's answers.
    typed_over = [
        (
            f"r{i}",
            30 + i,
            "app.py",
            "python",
            src,
            "m",
            "rejected",
            f"x_{i} = compute(",
            "\n",
            "alpha, gamma)",
            "alpha, beta)",
            {"30": 1.0},
        )
        for i, src in enumerate(["local", "test"] * 16)
    ]
    home = tmp_path / "home"
    fill_store(home, SPECS + typed_over)
    said: list[str] = []
    options = FinetuneOptions(
        recipe="tiny",
        steps=8,
        batch_size=4,
        seq_len=64,
        learning_rate=2e-3,
        threads=1,
        preference_steps=4,
        min_preference_rows=8,
    )
    result = distill_from_store(
        home, name="tuned", base=Path(tiny_base.gguf_path), options=options, min_rows=2, say=said.append
    )
    stage = result["preference"]
    assert stage["steps"] == 4
    pairs = [json.loads(line) for line in (home / "models" / "tuned" / "data" / "pairs.jsonl").open()]
    assert len(pairs) == stage["rows"] >= 8
    assert {p["source"] for p in pairs} == {"local"}  # no placeholder's
    assert max(p["ts"] for p in pairs) < min(r["ts"] for r in _validation_rows(home))
    before, after = stage["val_loss"]
    assert stage["kept"] is (after <= before)
    assert (Path(result["final_dir"]).parent.name == "preference") is stage["kept"]
    assert any("Preference stage (DPO)" in m for m in said)
    entry = Registry(home).get("tuned")
    assert entry is not None and entry.lineage["preference"] == stage  # the registry keeps what it did


def _validation_rows(home: Path) -> list[dict[str, Any]]:
    adapt = home / "models" / "tuned" / "data" / "adapt.jsonl"
    return [r for r in map(json.loads, adapt.open()) if r.get("split") == "val"]
