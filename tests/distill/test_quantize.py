"""Quantizing exported GGUFs with llama.cpp's own quantizer."""

from __future__ import annotations

from pathlib import Path

import gguf
import pytest
from goldiff.distill.quantize import quantize
from goldiff.errors import QuantizeError
from goldiff.sources.llamacpp import load_llama

from tests.tiny_models import write_tiny_gguf, write_tiny_lora_gguf


@pytest.fixture(scope="module")
def f32_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Width and FFN are multiples of 256, so K-quants apply to every matrix.
    return write_tiny_gguf(tmp_path_factory.mktemp("q") / "tiny-f32.gguf", dtype="f32")


def _tensor_types(path: Path) -> set[str]:
    return {t.tensor_type.name for t in gguf.GGUFReader(str(path)).tensors if len(t.shape) == 2}


@pytest.mark.parametrize(
    ("qtype", "expected_types", "max_ratio"),
    [
        ("F16", {"F16"}, 0.51),
        ("Q8_0", {"Q8_0"}, 0.28),
        ("Q4_K_M", {"Q4_K", "Q6_K"}, 0.20),
    ],
)
def test_quantized_files_are_smaller_and_serve(
    f32_model: Path, tmp_path: Path, qtype: str, expected_types: set[str], max_ratio: float
) -> None:
    result = quantize(f32_model, tmp_path / f"tiny-{qtype}.gguf", qtype, n_threads=1)
    assert result.src_bytes == f32_model.stat().st_size
    assert result.dst_bytes == result.dst.stat().st_size
    assert result.dst_bytes / result.src_bytes < max_ratio
    assert _tensor_types(result.dst) <= expected_types
    llm = load_llama(str(result.dst), n_ctx=128, n_threads=1, verbose=False)
    out = llm.create_completion("def f(", max_tokens=8, temperature=0)
    assert out["usage"]["completion_tokens"] == 8  # type: ignore[index]


def test_quantized_model_keeps_its_tokenizer(f32_model: Path, tmp_path: Path) -> None:
    result = quantize(f32_model, tmp_path / "q8.gguf", "q8_0", n_threads=1)
    reader = gguf.GGUFReader(str(result.dst))
    assert reader.get_field("tokenizer.ggml.pre").contents() == "qwen2"  # type: ignore[union-attr]
    assert reader.get_field("tokenizer.ggml.fim_mid_token_id").contents() == 3  # type: ignore[union-attr]


def test_quantize_errors_say_what_to_do(f32_model: Path, tmp_path: Path) -> None:
    with pytest.raises(QuantizeError, match="unknown quantization 'Q3_XYZ'; use one of"):
        quantize(f32_model, tmp_path / "x.gguf", "Q3_XYZ")
    with pytest.raises(QuantizeError, match="no such file"):
        quantize(tmp_path / "missing.gguf", tmp_path / "x.gguf")
    with pytest.raises(QuantizeError, match="must not overwrite its source"):
        quantize(f32_model, f32_model)
    adapter = write_tiny_lora_gguf(f32_model, tmp_path / "adapter.gguf")
    with pytest.raises(QuantizeError, match="not an adapter"):
        quantize(adapter, tmp_path / "adapter-q8.gguf", n_threads=1)
    assert not (tmp_path / "adapter-q8.gguf").exists()
    garbage = tmp_path / "garbage.gguf"
    garbage.write_bytes(b"not a gguf file at all")
    with pytest.raises(QuantizeError, match="failed to quantize"):
        quantize(garbage, tmp_path / "g.gguf", n_threads=1)
