"""A tiny random-weight qwen2 GGUF (and LoRA adapter) for tests and benchmarks.

The whole test suite serves this file through real llama.cpp, so it is written with numpy
and gguf only (no torch, no tokenizers), in well under a second, byte-for-byte the same for
the same arguments. Its vocabulary is the project's layout: the five control tokens
(``<|endoftext|>`` and the FIM tokens, ids 0-4, with the FIM ids in metadata), the 256
byte-level tokens, then a handful of merges for common Python pieces (llama.cpp's ``gpt2``
tokenizer refuses a file without merges). The weights are random, so generated text is
noise, but deterministic noise: greedy decoding gives the same tokens on every run. The
embeddings of the control tokens and of non-printable bytes are zero; with tied output their
logits are zero while some printable token's logit is almost surely positive, so greedy text
is printable ASCII with newlines, never ``<|endoftext|>``: generation runs until
``max_tokens`` or a stop string.

Usage::

    path = write_tiny_gguf(tmp_path / "tiny.gguf")
    adapter = write_tiny_lora_gguf(path, tmp_path / "tiny-lora.gguf")
    llm = load_llama(str(path), lora_path=str(adapter), verbose=False)  # goldiff.sources.llamacpp
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import numpy.typing as npt
from goldiff.distill.gguf_export import (
    Arch,
    Dtype,
    LoraPair,
    ModelHParams,
    read_hparams,
    write_gguf,
    write_lora_gguf,
)
from goldiff.distill.tokenizer import GgufVocab
from goldiff.prompts import SPECIAL_TOKENS


@cache
def byte_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from the 256 byte values to printable characters.

    Byte-level BPE vocabularies (HF's and llama.cpp's ``gpt2`` model) spell every token with
    these characters, so a token's text is its bytes passed through this map.
    """
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    mapping = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


def byte_level_piece(text: str) -> str:
    """Spell ``text`` (its UTF-8 bytes) in the byte-level alphabet, as a vocab entry."""
    table = byte_to_unicode()
    return "".join(table[b] for b in text.encode("utf-8"))


# Merges in rank order, as text; each side is a byte or an earlier merge's result.
_TINY_MERGES: tuple[tuple[str, str], ...] = (
    (" ", " "),
    ("  ", "  "),
    ("    ", "    "),
    ("d", "e"),
    ("de", "f"),
    (" ", "def"),
    ("s", "e"),
    ("l", "f"),
    ("se", "lf"),
    ("r", "e"),
    ("t", "u"),
    ("r", "n"),
    ("re", "tu"),
    ("retu", "rn"),
    (" ", "return"),
    ("i", "n"),
    (" ", "in"),
    ("(", ")"),
    ("):", "\n"),
    ("=", "="),
)

#: Names of the tiny model's special token ids, as llama.cpp reports them.
TINY_SPECIAL_IDS: dict[str, int] = {
    "eos": 0,
    "fim_pre": 1,
    "fim_suf": 2,
    "fim_mid": 3,
    "fim_pad": 4,
}


def tiny_vocab() -> GgufVocab:
    """The tiny model's vocabulary: control tokens, 256 bytes, then the merges."""
    tokens = list(SPECIAL_TOKENS)
    types = [int(gguf.TokenType.CONTROL)] * len(SPECIAL_TOKENS)
    table = byte_to_unicode()
    tokens += [table[b] for b in range(256)]
    types += [int(gguf.TokenType.NORMAL)] * 256
    merges = []
    for left, right in _TINY_MERGES:
        a, b = byte_level_piece(left), byte_level_piece(right)
        merges.append(f"{a} {b}")
        tokens.append(a + b)
        types.append(int(gguf.TokenType.NORMAL))
    return GgufVocab(
        tokens=tokens,
        token_types=types,
        merges=merges,
        eos_id=TINY_SPECIAL_IDS["eos"],
        fim_pre_id=TINY_SPECIAL_IDS["fim_pre"],
        fim_suf_id=TINY_SPECIAL_IDS["fim_suf"],
        fim_mid_id=TINY_SPECIAL_IDS["fim_mid"],
        fim_pad_id=TINY_SPECIAL_IDS["fim_pad"],
        pad_id=TINY_SPECIAL_IDS["fim_pad"],
    )


def tiny_hparams(
    *,
    n_vocab: int,
    n_layer: int = 2,
    width: int = 256,
    n_head: int = 4,
    n_head_kv: int = 2,
    ffn: int | None = None,
    context_length: int = 4096,
) -> ModelHParams:
    """The tiny model's hyperparameters (qwen2, tied embeddings)."""
    return ModelHParams(
        arch="qwen2",
        vocab_size=n_vocab,
        hidden_size=width,
        intermediate_size=ffn or 2 * width,
        num_hidden_layers=n_layer,
        num_attention_heads=n_head,
        num_key_value_heads=n_head_kv,
        max_position_embeddings=context_length,
    )


def _silent_token_ids(n_vocab: int) -> list[int]:
    """Tokens the tiny model never generates: control tokens and non-printable bytes."""
    printable = {*range(0x20, 0x7F), ord("\n")}
    first_byte = len(SPECIAL_TOKENS)
    silent = list(range(first_byte))
    silent += [first_byte + b for b in range(256) if b not in printable]
    return [i for i in silent if i < n_vocab]


def tiny_tensors(hp: ModelHParams, *, seed: int = 0) -> dict[str, npt.NDArray[np.float32]]:
    """Random weights with transformers' Qwen2 parameter names (std 0.02, unit norms)."""
    rng = np.random.default_rng(seed)
    d, f, hd = hp.hidden_size, hp.intermediate_size, hp.resolved_head_dim
    q_out, kv_out = hp.num_attention_heads * hd, hp.num_key_value_heads * hd

    def normal(*shape: int, std: float | None = None) -> npt.NDArray[np.float32]:
        # Linear layers get std 2/sqrt(fan_in): large enough that attention and MLP move the
        # residual stream, so greedy text varies instead of echoing the last token.
        scale = std if std is not None else 2.0 / np.sqrt(shape[-1])
        return (rng.standard_normal(shape, dtype=np.float32) * scale).astype(np.float32)

    embed = normal(hp.vocab_size, d, std=1.0)
    embed[_silent_token_ids(hp.vocab_size)] = 0.0  # see the module docstring
    tensors = {"model.embed_tokens.weight": embed}
    for i in range(hp.num_hidden_layers):
        p = f"model.layers.{i}."
        tensors |= {
            p + "input_layernorm.weight": np.ones(d, np.float32),
            p + "self_attn.q_proj.weight": normal(q_out, d),
            p + "self_attn.q_proj.bias": normal(q_out, std=0.02),
            p + "self_attn.k_proj.weight": normal(kv_out, d),
            p + "self_attn.k_proj.bias": normal(kv_out, std=0.02),
            p + "self_attn.v_proj.weight": normal(kv_out, d),
            p + "self_attn.v_proj.bias": normal(kv_out, std=0.02),
            p + "self_attn.o_proj.weight": normal(d, q_out),
            p + "post_attention_layernorm.weight": np.ones(d, np.float32),
            p + "mlp.gate_proj.weight": normal(f, d),
            p + "mlp.up_proj.weight": normal(f, d),
            p + "mlp.down_proj.weight": normal(d, f),
        }
    tensors["model.norm.weight"] = np.ones(d, np.float32)
    return tensors


def write_tiny_gguf(path: str | Path, *, seed: int = 0, dtype: Dtype = "f16", **shape: Any) -> Path:
    """Write the tiny qwen2 model to ``path`` and return it.

    ``shape`` takes :func:`tiny_hparams`' sizes; ``width`` (and ``ffn``, default
    ``2 * width``) should be multiples of 256 when the file will be K-quantized. About 2.5 MB
    at the defaults.
    """
    vocab = tiny_vocab()
    hp = tiny_hparams(n_vocab=len(vocab.tokens), **shape)
    return write_gguf(path, hp, tiny_tensors(hp, seed=seed), vocab, dtype=dtype, name="goldiff-tiny")


def write_tiny_lora_gguf(
    base_path: str | Path,
    path: str | Path,
    *,
    rank: int = 4,
    alpha: float = 8.0,
    seed: int = 1,
    targets: tuple[str, ...] = ("q_proj", "v_proj"),
    b_std: float = 0.05,
) -> Path:
    """Write a random LoRA adapter that fits the model at ``base_path``; return ``path``.

    It adapts ``targets`` in every layer. Unlike peft's initialisation (B = 0) both matrices
    are random, so the adapter visibly changes the model's logits.
    """
    hp = read_hparams(base_path)
    rng = np.random.default_rng(seed)
    d, f, hd = hp.hidden_size, hp.intermediate_size, hp.resolved_head_dim
    shapes: dict[str, tuple[str, int, int]] = {  # module -> (parent, out, in)
        "q_proj": ("self_attn", hp.num_attention_heads * hd, d),
        "k_proj": ("self_attn", hp.num_key_value_heads * hd, d),
        "v_proj": ("self_attn", hp.num_key_value_heads * hd, d),
        "o_proj": ("self_attn", d, hp.num_attention_heads * hd),
        "gate_proj": ("mlp", f, d),
        "up_proj": ("mlp", f, d),
        "down_proj": ("mlp", d, f),
    }
    pairs = {}
    for i in range(hp.num_hidden_layers):
        for module in targets:
            if module not in shapes:
                raise ValueError(f"unknown LoRA target {module!r}; use one of {sorted(shapes)}")
            parent, n_out, n_in = shapes[module]
            a = rng.standard_normal((rank, n_in), dtype=np.float32) / np.sqrt(n_in)
            b = rng.standard_normal((n_out, rank), dtype=np.float32) * b_std
            pairs[f"model.layers.{i}.{parent}.{module}.weight"] = LoraPair(a=a, b=b)
    return write_lora_gguf(path, hp, pairs, alpha, name="goldiff-tiny-adapter")


def tiny_transformers_model(
    arch: Arch = "qwen2",
    *,
    seed: int = 0,
    n_layer: int = 2,
    width: int = 64,
    n_head: int = 4,
    n_head_kv: int = 2,
    ffn: int | None = None,
    tie_word_embeddings: bool | None = None,
    rope_theta: float = 10000.0,
) -> Any:
    """A random transformers ``Qwen2ForCausalLM`` / ``LlamaForCausalLM`` over the tiny vocab.

    Needs the ``goldiff[train]`` extra. Weights are drawn larger than transformers' default
    (std 0.02), so logits spread out (std ~5-10) and an export bug shows as a large logit
    difference, yet small enough that, as in a trained model, quantization error is not
    amplified layer after layer (Q8_0 costs ~4% of the logits' std, Q4_K_M ~15%). Embeddings
    are tied for qwen2 and not for llama unless told, so tests cover both layouts; with tied
    embeddings the greedy next token is mostly the input token echoed. Export it with
    ``tokenizer=tiny_vocab()``.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    qwen2 = arch == "qwen2"
    classes: tuple[Any, Any] = (Qwen2Config, Qwen2ForCausalLM) if qwen2 else (LlamaConfig, LlamaForCausalLM)
    config_cls, model_cls = classes
    extra = {} if qwen2 else {"attention_bias": True}
    config = config_cls(
        vocab_size=len(tiny_vocab().tokens),
        hidden_size=width,
        intermediate_size=ffn or 2 * width,
        num_hidden_layers=n_layer,
        num_attention_heads=n_head,
        num_key_value_heads=n_head_kv,
        max_position_embeddings=2048,
        tie_word_embeddings=qwen2 if tie_word_embeddings is None else tie_word_embeddings,
        rope_parameters={"rope_type": "default", "rope_theta": rope_theta},
        **extra,
    )
    torch.manual_seed(seed)
    model = model_cls(config)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.ndim == 2:
                std = 0.5 if "embed" in name or "lm_head" in name else 0.5 / param.shape[1] ** 0.5
                param.normal_(0.0, std)
            elif name.endswith(".bias"):
                param.normal_(0.0, 0.5)
            else:  # RMSNorm weights: not all ones, so a norm mapped wrongly shows
                param.uniform_(0.5, 1.5)
    return model.eval()
