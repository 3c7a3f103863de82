"""The parity check: torch vs llama.cpp logits after export and after quantization."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from goldiff.distill.gguf_export import export_model
from goldiff.distill.parity import DEFAULT_TOLERANCES, Tolerance, check_parity
from goldiff.distill.quantize import quantize
from goldiff.errors import DistillError, ParityError

from tests.tiny_models import tiny_transformers_model, tiny_vocab

pytest.importorskip("torch", reason="needs the goldiff[train] extra")
pytest.importorskip("transformers", reason="needs the goldiff[train] extra")

PROMPTS = [
    "def f(x):\n    return x",
    "import os\nclass A:\n    def g(self):\n        return self.",
    "for i in range(10):\n    print(i)",
]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    """A qwen2 model of width 256 (K-quant rows) and its F16 export."""
    model = tiny_transformers_model("qwen2", width=256, n_head=4, n_head_kv=2)
    folder = tmp_path_factory.mktemp("parity")
    return model, export_model(model, tiny_vocab(), folder / "m-f16.gguf", dtype="f16")


def test_f16_export_report(exported: tuple[Any, Path]) -> None:
    model, path = exported
    report = check_parity(model, path, PROMPTS, tolerance="F16")
    assert report.passed and report.tolerance == DEFAULT_TOLERANCES["F16"]
    assert report.n_prompts == 3 and report.n_positions >= 40
    assert 0 < report.mean_abs_diff <= report.max_abs_diff
    assert report.max_rel_diff == report.max_abs_diff / report.logit_std <= 0.01
    assert report.argmax_agreement >= 0.95
    assert path.name in report.summary() and "argmax agreement" in report.summary()


@pytest.mark.parametrize("qtype", ["Q8_0", "Q4_K_M"])
def test_quantized_export_stays_within_its_tolerance(
    exported: tuple[Any, Path], tmp_path: Path, qtype: str
) -> None:
    model, path = exported
    quantized = quantize(path, tmp_path / f"m-{qtype}.gguf", qtype, n_threads=1).dst
    report = check_parity(model, quantized, PROMPTS, tolerance=qtype)
    # Quantization must cost precision (else the file was not quantized) within the limit.
    f16 = check_parity(model, path, PROMPTS, tolerance="F16")
    assert f16.max_rel_diff < report.max_rel_diff <= DEFAULT_TOLERANCES[qtype].max_rel_diff


def test_a_gguf_from_another_model_fails_parity(exported: tuple[Any, Path]) -> None:
    _, path = exported
    other = tiny_transformers_model("qwen2", width=256, seed=1)
    with pytest.raises(ParityError, match="disagrees with torch") as caught:
        check_parity(other, path, PROMPTS, tolerance="F16")
    assert isinstance(caught.value, DistillError)
    report = check_parity(other, path, PROMPTS, tolerance="F16", raise_on_failure=False)
    # Both random models mostly echo their input token (tied embeddings), so the argmax can
    # agree; the logits themselves are far apart.
    assert not report.passed and report.max_rel_diff > 10 * report.tolerance.max_rel_diff


def test_prompts_as_token_ids_and_custom_tolerances(exported: tuple[Any, Path]) -> None:
    model, path = exported
    report = check_parity(model, path, [[5, 6, 7, 270, 8]], tolerance=Tolerance(0.01, 1.0))
    assert report.n_positions == 5
    strict = check_parity(model, path, [[5, 6, 7]], tolerance=1e-9, raise_on_failure=False)
    assert not strict.passed  # F16 weights cannot match F32 torch to 1e-9
    with pytest.raises(ValueError, match="no default tolerance for 'Q1'"):
        check_parity(model, path, PROMPTS, tolerance="Q1")
    with pytest.raises(ValueError, match="at least one prompt"):
        check_parity(model, path, [])


def test_wrong_vocabulary_size_is_reported(tmp_path: Path) -> None:
    model = tiny_transformers_model("qwen2")
    path = export_model(model, tiny_vocab(), tmp_path / "m.gguf", dtype="f32")
    model.resize_token_embeddings(len(tiny_vocab().tokens) + 8)
    with pytest.raises(ParityError, match="not exported from this model"):
        check_parity(model, path, PROMPTS)
