"""`goldiff distill` end to end on tiny sizes: the store's gold → fine-tuned GGUF → registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
llama_cpp = pytest.importorskip("llama_cpp")

from goldiff.distill.pipeline import FinetuneOptions, distill_from_store  # noqa: E402
from goldiff.errors import NotEnoughDataError  # noqa: E402
from goldiff.sources.llamacpp import load_llama  # noqa: E402
from goldiff.sources.registry import Registry  # noqa: E402

from tests.test_export import fill_store  # noqa: E402


@pytest.mark.slow
def test_distill_from_the_store_registers_a_model_llama_cpp_loads(tmp_path: Path, tiny_base: Any) -> None:
    base = tiny_base
    home = tmp_path / "home"
    fill_store(home)
    said: list[str] = []
    options = FinetuneOptions(recipe="tiny", steps=2, batch_size=2, seq_len=64, threads=1, quantize_to="Q8_0")
    result = distill_from_store(
        home, name="mine", base=Path(base.gguf_path), options=options, min_rows=2, say=said.append
    )
    entry = Registry(home).get("mine")
    assert entry is not None and Path(entry.path) == Path(result["gguf"])
    assert entry.lineage["base"] == base.gguf_path and entry.lineage["export_id"]
    assert entry.lineage["train_rows"] >= 2 and result["steps"] == 2
    assert any("Registered" in m for m in said)
    llm = load_llama(result["gguf"], n_ctx=128, verbose=False)
    assert (
        llm.create_completion("def add(a, b):", max_tokens=4, temperature=0.0)["usage"]["completion_tokens"]
        >= 1
    )


def test_too_little_gold_says_how_much_is_needed(tmp_path: Path) -> None:
    with pytest.raises(NotEnoughDataError, match="no trace store"):
        distill_from_store(tmp_path / "empty")
    home = tmp_path / "home"
    fill_store(home)
    with pytest.raises(NotEnoughDataError, match="needs at least 500"):
        distill_from_store(home, min_rows=500, say=lambda _m: None)
