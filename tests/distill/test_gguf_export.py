"""GGUF writing: the tiny fixture model and adapter, and exports of real transformers models,
all loaded by real llama.cpp."""

from __future__ import annotations

import hashlib
from pathlib import Path

import gguf
import llama_cpp
import numpy as np
import pytest
from goldiff.distill.gguf_export import GgufExportError, read_hparams, tensor_names
from goldiff.distill.tiny import TINY_SPECIAL_IDS, write_tiny_gguf, write_tiny_lora_gguf
from goldiff.distill.tokenizer import SPECIAL_TOKENS


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_gguf(tmp_path_factory.mktemp("tiny") / "tiny.gguf")


def _llama(path: Path, **kwargs: object) -> llama_cpp.Llama:
    return llama_cpp.Llama(model_path=str(path), n_ctx=256, n_threads=1, verbose=False, **kwargs)


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
