"""Write trained models and LoRA adapters as GGUF files that llama.cpp serves.

We map tensors ourselves with the ``gguf`` package rather than shelling out to llama.cpp's
``convert_hf_to_gguf.py`` (not installable from a registry). Two architectures are
supported: ``qwen2`` (NEOX rope, so no Q/K permutation; its q/k/v biases must be kept,
because llama.cpp treats them as optional and a file without them loads and is silently
wrong) and ``llama`` (Q/K rows permuted exactly as ``convert_hf_to_gguf.py`` does).
Tied embeddings are written once: llama.cpp reuses ``token_embd`` when ``output`` is absent.
``write_gguf`` and ``write_lora_gguf`` take numpy arrays; torch is imported only by the
functions that take torch objects.

``export_checked`` / ``export_lora_checked`` are what training should call: every file they
return has passed :func:`goldiff.distill.parity.check_parity`, or they raise ``ParityError``.
A ``tokenizer`` is a folder or ``tokenizer.json`` path, or a
:class:`~goldiff.distill.tokenizer.GgufVocab`.
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import gguf
import numpy as np
import numpy.typing as npt

from goldiff.distill.quantize import QUANT_TYPES, quantize
from goldiff.distill.tokenizer import GgufVocab
from goldiff.errors import GgufExportError

if TYPE_CHECKING:
    import torch

Arch = Literal["qwen2", "llama"]
Dtype = Literal["f32", "f16"]
FloatArray = npt.NDArray[np.floating[Any]]

_ARCH_ENUM: dict[str, gguf.MODEL_ARCH] = {"qwen2": gguf.MODEL_ARCH.QWEN2, "llama": gguf.MODEL_ARCH.LLAMA}
# Buffers and duplicates that transformers keeps in a state dict but a GGUF must not hold.
_SKIPPED = re.compile(r"(rotary_emb\.inv_freq|\.rotary_emb\.|^model\.rotary_emb)")


@dataclass(frozen=True)
class ModelHParams:
    """The hyperparameters llama.cpp needs, in transformers' names."""

    arch: Arch
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    max_position_embeddings: int = 2048
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    tie_word_embeddings: bool = True
    head_dim: int | None = None  # None: hidden_size // num_attention_heads

    @property
    def resolved_head_dim(self) -> int:
        return self.head_dim or self.hidden_size // self.num_attention_heads

    @classmethod
    def from_config(cls, config: Any) -> ModelHParams:
        """Read a transformers ``Qwen2Config`` / ``LlamaConfig`` (or a dict of one)."""

        def get(key: str, default: Any = None) -> Any:
            if isinstance(config, Mapping):
                return config.get(key, default)
            return getattr(config, key, default)

        arch = get("model_type")
        if arch not in _ARCH_ENUM:
            raise GgufExportError(
                f"architecture {arch!r} cannot be exported; use one of {sorted(_ARCH_ENUM)}"
            )
        # transformers 5 moved rope_theta into rope_parameters; 4.x kept it at the top.
        rope = get("rope_parameters") or get("rope_scaling") or {}
        rope_type = rope.get("rope_type", rope.get("type", "default"))
        if rope_type not in ("default", None):
            raise GgufExportError(f"rope scaling {rope_type!r} is not supported by this exporter")
        rope_theta = rope.get("rope_theta") or get("rope_theta", 10000.0)
        heads = int(get("num_attention_heads"))
        head_dim = get("head_dim")
        hidden = int(get("hidden_size"))
        return cls(
            arch=arch,
            vocab_size=int(get("vocab_size")),
            hidden_size=hidden,
            intermediate_size=int(get("intermediate_size")),
            num_hidden_layers=int(get("num_hidden_layers")),
            num_attention_heads=heads,
            num_key_value_heads=int(get("num_key_value_heads") or heads),
            max_position_embeddings=int(get("max_position_embeddings", 2048)),
            rms_norm_eps=float(get("rms_norm_eps", 1e-6)),
            rope_theta=float(rope_theta),
            tie_word_embeddings=bool(get("tie_word_embeddings", False)),
            head_dim=int(head_dim) if head_dim and int(head_dim) != hidden // heads else None,
        )


def _permute_qk(weights: FloatArray, n_head: int) -> FloatArray:
    """Reorder Q/K rows from HF's rotate-half layout to llama.cpp's interleaved rope.

    The same reshape as ``LlamaModel.permute`` in llama.cpp's ``convert_hf_to_gguf.py``; it
    works on weights ``[out, in]``, biases ``[out]`` and LoRA B matrices ``[out, r]``.
    """
    return (
        weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def _maybe_permute(hf_name: str, array: FloatArray, hp: ModelHParams) -> FloatArray:
    if hp.arch != "llama":
        return array
    if ".self_attn.q_proj." in hf_name:
        return _permute_qk(array, hp.num_attention_heads)
    if ".self_attn.k_proj." in hf_name:
        return _permute_qk(array, hp.num_key_value_heads)
    return array


def _gguf_name(names: gguf.TensorNameMap, hf_name: str) -> str:
    name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
    if name is None:
        raise GgufExportError(f"no GGUF tensor for parameter {hf_name!r}")
    return name


def _writer(out_path: str | Path, hp: ModelHParams, name: str) -> tuple[gguf.GGUFWriter, gguf.TensorNameMap]:
    """A writer for a new GGUF at ``out_path`` (its folder made) and the architecture's names."""
    path = Path(out_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(path, hp.arch)
    writer.add_name(name)
    return writer, gguf.get_tensor_name_map(_ARCH_ENUM[hp.arch], hp.num_hidden_layers)


def _write_file(writer: gguf.GGUFWriter) -> Path:
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    assert writer.path is not None  # _writer gave it one
    return writer.path


def write_gguf(
    out_path: str | Path,
    hparams: ModelHParams,
    tensors: Mapping[str, FloatArray],
    vocab: GgufVocab,
    *,
    dtype: Dtype = "f16",
    name: str = "goldiff",
) -> Path:
    """Write a full model from numpy arrays keyed by transformers parameter names.

    2-D weights are stored as ``dtype``; norms and biases stay F32, as llama.cpp's own
    converter does. Returns the path written.
    """
    hp = hparams
    n_vocab = int(tensors["model.embed_tokens.weight"].shape[0])
    vocab = vocab.padded_to(n_vocab)
    writer, names = _writer(out_path, hp, name)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32 if dtype == "f32" else gguf.LlamaFileType.MOSTLY_F16)
    writer.add_vocab_size(n_vocab)
    writer.add_context_length(hp.max_position_embeddings)
    writer.add_embedding_length(hp.hidden_size)
    writer.add_block_count(hp.num_hidden_layers)
    writer.add_feed_forward_length(hp.intermediate_size)
    writer.add_head_count(hp.num_attention_heads)
    writer.add_head_count_kv(hp.num_key_value_heads)
    writer.add_rope_freq_base(hp.rope_theta)
    writer.add_layer_norm_rms_eps(hp.rms_norm_eps)
    writer.add_rope_dimension_count(hp.resolved_head_dim)
    if hp.head_dim is not None:
        writer.add_key_length(hp.head_dim)
        writer.add_value_length(hp.head_dim)
    vocab.add_to(writer)

    for hf_name, value in tensors.items():
        if _SKIPPED.search(hf_name):
            continue
        if hf_name == "lm_head.weight" and hp.tie_word_embeddings:
            continue  # llama.cpp falls back to token_embd when output.weight is absent
        array = _maybe_permute(hf_name, np.asarray(value, dtype=np.float32), hp)
        out_dtype = np.float16 if dtype == "f16" and array.ndim == 2 else np.float32
        writer.add_tensor(_gguf_name(names, hf_name), np.ascontiguousarray(array.astype(out_dtype)))
    return _write_file(writer)


@dataclass(frozen=True)
class LoraPair:
    """One adapted linear layer: peft's ``lora_A`` [r, in] and ``lora_B`` [out, r]."""

    a: FloatArray
    b: FloatArray


def write_lora_gguf(
    out_path: str | Path,
    hparams: ModelHParams,
    pairs: Mapping[str, LoraPair],
    alpha: float,
    *,
    name: str = "goldiff-adapter",
) -> Path:
    """Write a GGUF LoRA adapter from pairs keyed by the base weight's HF name.

    Keys look like ``model.layers.0.self_attn.q_proj.weight``. llama.cpp scales each pair
    by ``alpha / r`` (r read from the tensors), as peft does without rsLoRA.
    """
    writer, names = _writer(out_path, hparams, name)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(alpha))
    for hf_name, pair in pairs.items():
        base = _gguf_name(names, hf_name)
        a = np.asarray(pair.a, dtype=np.float32)
        b = np.asarray(pair.b, dtype=np.float32)
        # Only B's rows live in Q/K output space, so only B follows the llama permutation.
        b = _maybe_permute(hf_name, b, hparams)
        writer.add_tensor(f"{base}.lora_a", np.ascontiguousarray(a))
        writer.add_tensor(f"{base}.lora_b", np.ascontiguousarray(b))
    return _write_file(writer)


def read_hparams(gguf_path: str | Path) -> ModelHParams:
    """Recover the hyperparameters of a GGUF written by :func:`write_gguf` (or llama.cpp)."""
    reader = gguf.GGUFReader(str(gguf_path))

    def field(key: str) -> Any:
        f = reader.get_field(key)
        if f is None:
            raise GgufExportError(f"{gguf_path} has no {key!r}; is it a model GGUF?")
        return f.contents()

    arch = field("general.architecture")
    if arch not in _ARCH_ENUM:
        raise GgufExportError(f"{gguf_path} is a {arch!r} model; use one of {sorted(_ARCH_ENUM)}")
    embd = next((t for t in reader.tensors if t.name == "token_embd.weight"), None)
    if embd is None:
        raise GgufExportError(f"{gguf_path} has no token_embd.weight; is it a model GGUF?")
    tensor_names = {t.name for t in reader.tensors}
    rope = reader.get_field(f"{arch}.rope.freq_base")
    return ModelHParams(
        arch=arch,
        vocab_size=int(embd.shape[1]),
        hidden_size=int(field(f"{arch}.embedding_length")),
        intermediate_size=int(field(f"{arch}.feed_forward_length")),
        num_hidden_layers=int(field(f"{arch}.block_count")),
        num_attention_heads=int(field(f"{arch}.attention.head_count")),
        num_key_value_heads=int(field(f"{arch}.attention.head_count_kv")),
        max_position_embeddings=int(field(f"{arch}.context_length")),
        rms_norm_eps=float(field(f"{arch}.attention.layer_norm_rms_epsilon")),
        rope_theta=float(rope.contents()) if rope is not None else 10000.0,
        tie_word_embeddings="output.weight" not in tensor_names,
    )


# --- torch / transformers / peft entry points (the ``goldiff[train]`` extra) -------------


def _to_numpy(t: torch.Tensor) -> FloatArray:
    result: FloatArray = t.detach().float().cpu().numpy()
    return result


def _unwrap_peft(model: Any) -> Any:
    """A plain transformers model with any LoRA merged in, leaving ``model`` untouched."""
    if hasattr(model, "merge_and_unload") and hasattr(model, "peft_config"):
        return copy.deepcopy(model).merge_and_unload()
    return model


def export_model(
    model: Any,
    tokenizer: GgufVocab | str | Path,
    out_path: str | Path,
    dtype: Dtype = "f16",
    *,
    name: str = "goldiff",
) -> Path:
    """Export a transformers causal LM (a peft model is merged first) to GGUF."""
    model = _unwrap_peft(model)
    hparams = ModelHParams.from_config(model.config)
    tensors = {k: _to_numpy(v) for k, v in model.state_dict().items()}
    vocab = tokenizer if isinstance(tokenizer, GgufVocab) else GgufVocab.from_tokenizer_json(tokenizer)
    return write_gguf(out_path, hparams, tensors, vocab, dtype=dtype, name=name)


_PEFT_KEY = re.compile(r"^(?:base_model\.model\.)?(?P<module>.+)\.lora_(?P<ab>[AB])\.weight$")


def lora_pairs_from_state_dict(state: Mapping[str, FloatArray]) -> dict[str, LoraPair]:
    """Group peft's ``...q_proj.lora_A.weight`` / ``lora_B`` entries by base weight name."""
    halves: dict[str, dict[str, FloatArray]] = {}
    for key, value in state.items():
        match = _PEFT_KEY.match(key)
        if match is None:
            raise GgufExportError(
                f"adapter tensor {key!r} is not a LoRA A/B matrix; only LoRA on linear "
                "layers can be exported (no modules_to_save, bias or DoRA)"
            )
        halves.setdefault(f"{match['module']}.weight", {})[match["ab"]] = value
    return {weight: LoraPair(a=ab["A"], b=ab["B"]) for weight, ab in halves.items()}


def export_lora_adapter(peft_model: Any, base_gguf: str | Path, out_path: str | Path) -> Path:
    """Export a peft LoRA as a GGUF adapter for ``Llama(model_path=base, lora_path=out)``.

    ``base_gguf`` is the GGUF of the model the adapter was trained on; its architecture and
    shapes are checked against the adapter so a mismatch fails here, not at load time.
    """
    from peft import get_peft_model_state_dict

    config = peft_model.peft_config["default"]
    if getattr(config, "use_dora", False):
        raise GgufExportError("DoRA adapters cannot be exported; train with use_dora=False")
    state = get_peft_model_state_dict(peft_model, adapter_name="default")
    pairs = lora_pairs_from_state_dict({k: _to_numpy(v) for k, v in state.items()})
    hparams = read_hparams(base_gguf)
    model_hparams = ModelHParams.from_config(peft_model.get_base_model().config)
    shape = (hparams.arch, hparams.hidden_size, hparams.num_hidden_layers)
    if (model_hparams.arch, model_hparams.hidden_size, model_hparams.num_hidden_layers) != shape:
        raise GgufExportError(
            f"the adapter was trained on a {model_hparams.arch} model of width "
            f"{model_hparams.hidden_size} and {model_hparams.num_hidden_layers} layers, but "
            f"{base_gguf} is a {hparams.arch} model of width {hparams.hidden_size} and "
            f"{hparams.num_hidden_layers} layers; pass the GGUF of the adapter's base model"
        )
    return write_lora_gguf(out_path, hparams, pairs, float(config.lora_alpha))


# --- export, then prove it: what ``goldiff distill`` calls ------------------------------

#: Short Python snippets that exercise common tokens; parity runs on these by default.
PARITY_PROMPTS: tuple[str, ...] = (
    "def add(a, b):\n    return a + b\n",
    "import os\nimport sys\n\nclass Config:\n    def __init__(self, path):\n        self.",
    "for i, line in enumerate(lines):\n    if not line.strip():\n        continue\n",
    'raise ValueError(f"unknown option {name!r}")',
)
# llama.cpp's `general.file_type` codes (LLAMA_FTYPE_MOSTLY_*): the types we write, and the
# legacy and small K types of models users pull (SmolLM2 ships Q4_1).
_PULLED_TYPES = {"Q4_0": 2, "Q4_1": 3, "Q5_0": 8, "Q5_1": 9, "Q4_K_S": 14, "Q5_K_S": 16}
_FILE_TYPE_NAMES = {code: name for name, code in {**QUANT_TYPES, **_PULLED_TYPES}.items()}


def file_type_name(gguf_path: str | Path) -> str:
    """The weight type a GGUF declares (``general.file_type``): ``"F16"``, ``"Q8_0"``, ..."""
    field = gguf.GGUFReader(str(gguf_path)).get_field("general.file_type")
    code = int(field.contents()) if field is not None else 0
    return _FILE_TYPE_NAMES.get(code, f"ftype-{code}")


@dataclass(frozen=True)
class ExportedFile:
    """One written GGUF, its size and the parity figures that cleared it."""

    path: Path
    qtype: str
    size_bytes: int
    parity: Any  # goldiff.distill.parity.ParityReport
    seconds: float = 0.0  # writing (or quantizing to) this file and checking its parity


def export_checked(
    model: Any,
    tokenizer: GgufVocab | str | Path,
    out_path: str | Path,
    *,
    dtype: Dtype = "f16",
    quantize_to: Iterable[str] = ("Q8_0",),
) -> list[ExportedFile]:
    """Export, check parity, quantize each type in ``quantize_to`` and check it too.

    Quantized files are written next to ``out_path`` as ``<stem>-<type>.gguf``. Raises
    :class:`~goldiff.errors.ParityError` at the first file outside its tolerance (that file
    is left on disk for inspection but must not be served). Returns one entry per file,
    the unquantized export first.
    """
    from goldiff.distill.parity import check_parity

    merged = _unwrap_peft(model)
    prompt_list = list(PARITY_PROMPTS)
    started = time.perf_counter()
    path = export_model(merged, tokenizer, out_path, dtype)
    results = [
        ExportedFile(
            path=path,
            qtype=dtype.upper(),
            size_bytes=path.stat().st_size,
            parity=check_parity(merged, path, prompt_list, tolerance=dtype.upper()),
            seconds=time.perf_counter() - started,
        )
    ]
    for qtype in quantize_to:
        started = time.perf_counter()
        target = path.with_name(f"{path.stem}-{qtype.upper()}{path.suffix}")
        result = quantize(path, target, qtype)
        report = check_parity(merged, result.dst, prompt_list, tolerance=result.qtype)
        seconds = time.perf_counter() - started
        results.append(ExportedFile(result.dst, result.qtype, result.dst_bytes, report, seconds))
    return results


def export_lora_checked(peft_model: Any, base_gguf: str | Path, out_path: str | Path) -> ExportedFile:
    """Export a LoRA adapter and check base GGUF + adapter against the peft model.

    The tolerance follows the base file's weight type: an adapter on a Q4_K_M base is held
    to the Q4_K_M limits.
    """
    from goldiff.distill.parity import check_parity

    path = export_lora_adapter(peft_model, base_gguf, out_path)
    tolerance = file_type_name(base_gguf)
    report = check_parity(peft_model, base_gguf, list(PARITY_PROMPTS), tolerance=tolerance, lora_path=path)
    return ExportedFile(path=path, qtype="lora", size_bytes=path.stat().st_size, parity=report)
