"""GGUF writing: the tiny fixture model and adapter, and exports of real transformers models,
all loaded by real llama.cpp."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Literal

import gguf
import llama_cpp
import numpy as np
import pytest
from goldiff.distill.gguf_export import (
    ModelHParams,
    export_checked,
    export_lora_adapter,
    export_lora_checked,
    export_model,
    file_type_name,
    read_hparams,
    write_gguf,
)
from goldiff.distill.parity import DEFAULT_TOLERANCES, check_parity
from goldiff.distill.quantize import quantize
from goldiff.distill.tokenizer import (
    SPECIAL_TOKENS,
    GgufVocab,
    save_tokenizer,
    train_tokenizer,
)
from goldiff.errors import GgufExportError, ParityError
from goldiff.sources.llamacpp import load_llama

from tests.tiny_models import (
    TINY_SPECIAL_IDS,
    tiny_transformers_model,
    tiny_vocab,
    write_tiny_gguf,
    write_tiny_lora_gguf,
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_gguf(tmp_path_factory.mktemp("tiny") / "tiny.gguf")


def _llama(path: Path, **kwargs: object) -> llama_cpp.Llama:
    return load_llama(str(path), n_ctx=256, n_threads=1, verbose=False, **kwargs)


def tensor_names(gguf_path: Path) -> list[str]:
    return [t.name for t in gguf.GGUFReader(str(gguf_path)).tensors]


def from_pretrained_dir(hf_dir: Path, out_path: Path, dtype: Literal["f32", "f16"] = "f16") -> Path:
    """Export a model saved with ``save_pretrained`` (its tokenizer in the same folder)."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(hf_dir), dtype=torch.float32)
    return export_model(model, hf_dir, out_path, dtype)


def test_tiny_gguf_loads_and_generates_deterministically(tiny: Path) -> None:
    llm = _llama(tiny)
    first = llm.create_completion("def f():", max_tokens=16, temperature=0)
    second = llm.create_completion("def f():", max_tokens=16, temperature=0)
    text = first["choices"][0]["text"]  # type: ignore[index]
    assert first["usage"]["completion_tokens"] == 16  # type: ignore[index]
    assert text == second["choices"][0]["text"]  # type: ignore[index]
    assert text.isascii() and all(c.isprintable() or c == "\n" for c in text)


def test_tiny_gguf_is_byte_identical_for_the_same_seed(tmp_path: Path) -> None:
    def digest(path: Path) -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest()

    a = write_tiny_gguf(tmp_path / "a.gguf", seed=3)
    b = write_tiny_gguf(tmp_path / "b.gguf", seed=3)
    c = write_tiny_gguf(tmp_path / "c.gguf", seed=4)
    assert digest(a) == digest(b) != digest(c)


def test_tiny_fim_tokens_are_single_control_tokens(tiny: Path) -> None:
    llm = _llama(tiny)
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    assert [
        llm.token_eos(),
        llama_cpp.llama_vocab_fim_pre(vocab),
        llama_cpp.llama_vocab_fim_suf(vocab),
        llama_cpp.llama_vocab_fim_mid(vocab),
        llama_cpp.llama_vocab_fim_pad(vocab),
    ] == list(TINY_SPECIAL_IDS.values())
    for token_id, text in enumerate(SPECIAL_TOKENS):
        assert llm.tokenize(text.encode(), add_bos=False, special=True) == [token_id]
        assert llama_cpp.llama_vocab_is_control(vocab, token_id)
        # User text must never turn into a control token.
        assert token_id not in llm.tokenize(text.encode(), add_bos=False, special=False)


def test_tiny_tokenizer_round_trips_and_uses_merges(tiny: Path) -> None:
    llm = _llama(tiny)
    text = "def f(x):\n    return self.x  # é ✓\n"
    tokens = llm.tokenize(text.encode(), add_bos=False, special=False)
    assert llm.detokenize(tokens).decode() == text
    assert len(tokens) < len(text.encode())  # merges such as " return" applied
    assert llm.tokenize(b" return", add_bos=False, special=False) == [
        llm.tokenize(b" return", add_bos=False, special=False)[0]
    ]


def test_tiny_lora_adapter_loads_and_changes_the_output(tiny: Path, tmp_path: Path) -> None:
    adapter = write_tiny_lora_gguf(tiny, tmp_path / "lora.gguf")
    reader = gguf.GGUFReader(str(adapter))
    assert reader.get_field("general.type").contents() == "adapter"  # type: ignore[union-attr]
    assert reader.get_field("adapter.type").contents() == "lora"  # type: ignore[union-attr]
    assert "blk.0.attn_q.weight.lora_a" in tensor_names(adapter)
    prompt = b"import os\nclass A:\n"
    base = _llama(tiny, logits_all=True)
    base.eval(base.tokenize(prompt, add_bos=False))
    adapted = _llama(tiny, lora_path=str(adapter), logits_all=True)
    adapted.eval(adapted.tokenize(prompt, add_bos=False))
    diff = np.abs(np.asarray(base.scores[base.n_tokens - 1]) - adapted.scores[adapted.n_tokens - 1])
    assert diff.max() > 0.1


def test_hparams_round_trip_through_the_file(tiny: Path) -> None:
    hp = read_hparams(tiny)
    assert (hp.arch, hp.hidden_size, hp.num_hidden_layers, hp.num_key_value_heads) == (
        "qwen2",
        256,
        2,
        2,
    )
    assert hp.tie_word_embeddings and "output.weight" not in tensor_names(tiny)
    assert "blk.1.attn_k.bias" in tensor_names(tiny)


def test_unknown_lora_target_is_refused(tiny: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown LoRA target"):
        write_tiny_lora_gguf(tiny, tmp_path / "bad.gguf", targets=("qkv",))
    assert not (tmp_path / "bad.gguf").exists()


def test_reading_hparams_of_a_non_model_file_says_so(tmp_path: Path) -> None:
    adapter = write_tiny_lora_gguf(write_tiny_gguf(tmp_path / "m.gguf"), tmp_path / "a.gguf")
    with pytest.raises(GgufExportError, match="is it a model GGUF"):
        read_hparams(adapter)


# --- exports of real transformers / peft models (the goldiff[train] extra) ---------------

PROMPTS = ["def f(x):\n    return x", "import os\nclass A:\n    def g(self):", "x = [i for i in"]


@pytest.fixture(scope="module")
def torch_stack() -> None:
    pytest.importorskip("torch", reason="needs the goldiff[train] extra")
    pytest.importorskip("transformers", reason="needs the goldiff[train] extra")


@pytest.mark.parametrize("arch", ["qwen2", "llama"])
@pytest.mark.parametrize("dtype", ["f32", "f16"])
def test_exported_model_matches_torch(
    torch_stack: None, tmp_path: Path, arch: str, dtype: Literal["f32", "f16"]
) -> None:
    model = tiny_transformers_model(arch)
    path = export_model(model, tiny_vocab(), tmp_path / "m.gguf", dtype=dtype)
    report = check_parity(model, path, PROMPTS, tolerance=dtype.upper())
    assert report.passed and report.n_positions > 30
    if dtype == "f32":
        assert report.max_abs_diff < 1e-3  # same weights, F32 KV cache: only float noise
    names = set(tensor_names(path))
    assert {"blk.1.attn_q.bias", "blk.1.attn_k.bias", "blk.1.attn_v.bias"} <= names
    # qwen2 ties its embeddings (written once); the llama model here does not.
    assert ("output.weight" in names) == (arch == "llama")


def test_parity_fails_loudly_on_a_wrong_export(torch_stack: None, tmp_path: Path) -> None:
    """The two mapping bugs the notes measured: unpermuted Q/K and dropped biases."""
    model = tiny_transformers_model("llama")
    hparams = ModelHParams.from_config(model.config)
    tensors = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    as_qwen2 = dataclasses.replace(hparams, arch="qwen2")  # NEOX rope, no Q/K permutation
    qwen2_tensors = {k: v for k, v in tensors.items() if "o_proj.bias" not in k}
    wrong_rope = write_gguf(tmp_path / "rope.gguf", as_qwen2, qwen2_tensors, tiny_vocab(), dtype="f32")
    with pytest.raises(ParityError, match="disagrees with torch"):
        check_parity(model, wrong_rope, PROMPTS, tolerance="F32")
    # qwen2 has no o_proj bias: llama.cpp refuses the extra tensor, and parity says so.
    extra = write_gguf(tmp_path / "extra.gguf", as_qwen2, tensors, tiny_vocab(), dtype="f32")
    with pytest.raises(ParityError, match="cannot load"):
        check_parity(model, extra, PROMPTS)
    no_bias = {k: v for k, v in tensors.items() if not k.endswith("_proj.bias")}
    assert len(no_bias) < len(tensors)
    dropped = write_gguf(tmp_path / "bias.gguf", hparams, no_bias, tiny_vocab(), dtype="f32")
    report = check_parity(model, dropped, PROMPTS, tolerance="F32", raise_on_failure=False)
    assert not report.passed and report.max_abs_diff > 0.1


def test_peft_model_is_merged_on_export_and_left_untouched(torch_stack: None, tmp_path: Path) -> None:
    peft = pytest.importorskip("peft")
    base = tiny_transformers_model("qwen2")
    config = peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"])
    lora = peft.get_peft_model(base, config, low_cpu_mem_usage=False)
    _randomise_lora(lora)
    path = export_model(lora, tiny_vocab(), tmp_path / "merged.gguf", dtype="f32")
    assert check_parity(lora, path, PROMPTS, tolerance="F32").passed
    assert any("lora_A" in name for name, _ in lora.named_parameters())  # still a peft model


@pytest.mark.parametrize("arch", ["qwen2", "llama"])
def test_lora_adapter_gguf_matches_peft(torch_stack: None, tmp_path: Path, arch: str) -> None:
    peft = pytest.importorskip("peft")
    base = tiny_transformers_model(arch)
    base_gguf = export_model(base, tiny_vocab(), tmp_path / "base.gguf", dtype="f32")
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    config = peft.LoraConfig(r=8, lora_alpha=16, target_modules=targets)
    lora = peft.get_peft_model(base, config, low_cpu_mem_usage=False)
    _randomise_lora(lora)
    adapter = export_lora_adapter(lora, base_gguf, tmp_path / "adapter.gguf")
    assert "blk.0.attn_k.weight.lora_b" in tensor_names(adapter)
    report = check_parity(lora, base_gguf, PROMPTS, tolerance="F32", lora_path=adapter)
    assert report.max_abs_diff < 1e-3
    # ... and the adapter matters: without it llama.cpp's logits differ from peft's.
    without = check_parity(lora, base_gguf, PROMPTS, tolerance="F32", raise_on_failure=False)
    assert not without.passed


def test_adapter_export_checks_the_base(torch_stack: None, tmp_path: Path) -> None:
    peft = pytest.importorskip("peft")
    other_base = write_tiny_gguf(tmp_path / "tiny.gguf")  # width 256, the model has 64
    lora = peft.get_peft_model(
        tiny_transformers_model("qwen2"),
        peft.LoraConfig(r=4, target_modules=["q_proj"]),
        low_cpu_mem_usage=False,
    )
    with pytest.raises(GgufExportError, match="pass the GGUF of the adapter's base model"):
        export_lora_adapter(lora, other_base, tmp_path / "a.gguf")
    dora = peft.get_peft_model(
        tiny_transformers_model("qwen2"),
        peft.LoraConfig(r=4, target_modules=["q_proj"], use_dora=True),
        low_cpu_mem_usage=False,
    )
    with pytest.raises(GgufExportError, match="DoRA"):
        export_lora_adapter(dora, other_base, tmp_path / "a.gguf")


def test_from_pretrained_dir_exports_a_saved_model_with_its_tokenizer(
    torch_stack: None, tmp_path: Path
) -> None:
    pytest.importorskip("tokenizers")
    texts = ["def f(x):\n    return x + 1\n", "import os\nprint(os.getcwd())\n"] * 20
    folder = save_tokenizer(train_tokenizer(texts, vocab_size=300, min_frequency=1), tmp_path)
    vocab = GgufVocab.from_tokenizer_json(folder)
    model = tiny_transformers_model("qwen2")
    model.resize_token_embeddings(len(vocab.tokens) + 3)  # a padded vocabulary
    model.save_pretrained(folder)
    path = from_pretrained_dir(folder, tmp_path / "m.gguf", dtype="f32")
    reader = gguf.GGUFReader(str(path))
    tokens = reader.get_field("tokenizer.ggml.tokens").contents()  # type: ignore[union-attr]
    assert len(tokens) == len(vocab.tokens) + 3 and tokens[-1] == f"[PAD{len(vocab.tokens) + 2}]"
    assert check_parity(model, path, PROMPTS, tolerance="F32").passed


def test_unsupported_architectures_are_refused_with_a_hint() -> None:
    with pytest.raises(GgufExportError, match="use one of"):
        ModelHParams.from_config({"model_type": "gpt2"})
    with pytest.raises(GgufExportError, match="rope scaling 'yarn'"):
        ModelHParams.from_config(
            {"model_type": "llama", "rope_parameters": {"rope_type": "yarn", "factor": 4.0}}
        )


def _randomise_lora(model: object) -> None:
    """peft starts B at zero (a no-op adapter); give both matrices real values."""
    import torch

    torch.manual_seed(1)
    with torch.no_grad():
        for name, param in model.named_parameters():  # type: ignore[attr-defined]
            # The size of a trained adapter's update: comparable to the base weights.
            if "lora_A" in name:
                param.normal_(0.0, 1.0 / param.shape[1] ** 0.5)
            elif "lora_B" in name:
                param.normal_(0.0, 0.05)


def test_export_checked_writes_quantized_files_that_passed_parity(torch_stack: None, tmp_path: Path) -> None:
    model = tiny_transformers_model("qwen2", width=256)
    files = export_checked(
        model, tiny_vocab(), tmp_path / "m.gguf", dtype="f16", quantize_to=["Q8_0", "Q4_K_M"]
    )
    assert [(f.path.name, f.qtype) for f in files] == [
        ("m.gguf", "F16"),
        ("m-Q8_0.gguf", "Q8_0"),
        ("m-Q4_K_M.gguf", "Q4_K_M"),
    ]
    assert all(f.parity.passed for f in files)
    assert files[0].size_bytes > files[1].size_bytes > files[2].size_bytes
    assert [file_type_name(f.path) for f in files] == ["F16", "Q8_0", "Q4_K_M"]


def test_export_lora_checked_holds_a_quantized_base_to_its_tolerance(
    torch_stack: None, tmp_path: Path
) -> None:
    peft = pytest.importorskip("peft")
    base = tiny_transformers_model("qwen2", width=256)
    f16 = export_model(base, tiny_vocab(), tmp_path / "base.gguf", dtype="f16")
    q8 = quantize(f16, tmp_path / "base-q8.gguf", "Q8_0", n_threads=1).dst
    lora = peft.get_peft_model(base, peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    _randomise_lora(lora)
    exported = export_lora_checked(lora, q8, tmp_path / "adapter.gguf")
    assert exported.parity.passed and exported.parity.tolerance == DEFAULT_TOLERANCES["Q8_0"]


def test_every_weight_type_a_base_may_declare_has_a_parity_tolerance() -> None:
    """A pulled base (SmolLM2 ships Q4_1) is named by its type and held to that type's limits."""
    from goldiff.distill.gguf_export import _FILE_TYPE_NAMES

    assert _FILE_TYPE_NAMES[3] == "Q4_1" and _FILE_TYPE_NAMES[2] == "Q4_0"
    assert set(_FILE_TYPE_NAMES.values()) <= set(DEFAULT_TOLERANCES)
    assert DEFAULT_TOLERANCES["Q4_1"] == DEFAULT_TOLERANCES["Q4_K_M"]
