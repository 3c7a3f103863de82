"""Training configuration: one plain dataclass, and named recipes as small TOML files.

As in nanoGPT, every knob of a run lives in `TrainConfig` with its default and a comment on
why; a recipe in ``models/recipes/NAME.toml`` overrides only what differs (the shipped
default model, the tiny model of tests and ``goldiff demo``, LoRA on a user's base). A
recipe's keys are checked against the dataclass, so a typo fails loudly instead of being
ignored.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from goldiff.errors import ConfigError

# models/recipes/ in a source checkout, goldiff/models/recipes/ in an installed wheel (it
# carries models/ as package data); callers may also pass a path to a TOML file of their own.
_PACKAGE_RECIPES = Path(__file__).resolve().parents[1] / "models" / "recipes"
RECIPES_DIR = (
    _PACKAGE_RECIPES
    if _PACKAGE_RECIPES.is_dir()
    else Path(__file__).resolve().parents[3] / "models" / "recipes"
)


@dataclass
class TrainConfig:
    # --- model (qwen2 architecture; widths multiple of 256 so K-quants apply to every row)
    vocab_size: int = 16384  # the tokenizer's size; the exporter checks they agree
    hidden_size: int = 512  # with 8 layers: ~30M params, ~19 MB as Q4_K_M (the 30 MB cap)
    num_layers: int = 8  # depth over width: small code models gain more from layers
    num_heads: int = 8  # head dim 64, the size llama.cpp's kernels are tuned for
    num_kv_heads: int = 4  # grouped-query attention halves the KV cache at no quality cost
    intermediate_size: int = 1280  # 2.5x hidden (multiple of 256); 3x would not fit 30 MB
    max_position: int = 2048  # rope positions the GGUF advertises; serving prompts are short
    rope_theta: float = 10000.0  # the classic value; the contexts here never need more
    tie_embeddings: bool = True  # input and output embedding share weights: -8M params

    # --- data
    seq_len: int = 1024  # tokens per training window; FIM prompts in the editor are shorter
    fim_rate: float = 0.7  # share of segments in FIM order: the editor only ever asks FIM
    val_fraction: float = 0.02  # share of files (by path hash) held out for validation
    corpus_max_bytes: int | None = None  # cap on the code read (None = everything found)
    sft_prompt: str = "fim"  # how SFT rows are shaped: as the model is served, "fim" or "prefix"
    sft_heal: bool = False  # prefix rows as served with token healing (sources/local.py)

    # --- optimisation
    batch_size: int = 8  # windows per micro-batch on one device
    grad_accum: int = 1  # micro-batches per optimizer step
    learning_rate: float = 1.5e-3  # small models from scratch tolerate a high peak LR
    min_lr_ratio: float = 0.1  # cosine decays to this fraction of the peak
    warmup_steps: int = 300  # linear warmup; avoids early loss spikes with AdamW
    weight_decay: float = 0.1  # on matrices only (not norms/biases), as in GPT-2/nanoGPT
    beta1: float = 0.9
    beta2: float = 0.95  # the LLM usual; 0.999 reacts too slowly to loss spikes
    grad_clip: float = 1.0  # clip the global grad norm; 0 turns it off
    max_steps: int = 2000  # optimizer steps; with time_budget_s it is an upper bound
    time_budget_s: float | None = None  # fit max_steps to this wall time after calibration
    dtype: str = "auto"  # "auto": bf16 autocast on CUDA, fp32 on CPU; or fp32/bf16
    compile: bool = False  # torch.compile: faster on GPU, slow to start, off by default
    seed: int = 1337  # model init, data order and FIM choices all derive from it

    # --- fine-tuning on a user's gold (SFT rows) and LoRA on a larger base
    init_from: str | None = None  # HF model folder to start from (None = from scratch)
    lora: bool = False  # train LoRA adapters instead of every weight
    lora_r: int = 8  # adapter rank; 8 is enough for a user's style on a small model
    lora_alpha: int = 16  # scale = alpha / r = 2, peft's common default
    lora_dropout: float = 0.0  # the datasets are small but the runs are short too
    # Every linear projection: works better than attention-only at equal rank.
    lora_targets: tuple[str, ...] = tuple("q_proj k_proj v_proj o_proj gate_proj up_proj down_proj".split())
    min_rows: int = 8  # fewer SFT rows than this cannot teach anything; refuse early
    keep_best: bool = False  # end with the weights of the lowest validation loss (step 0 included)

    # --- bookkeeping
    eval_interval: int = 200  # steps between validation losses
    eval_batches: int = 8  # micro-batches per validation estimate
    checkpoint_interval: int = 200  # steps between resumable checkpoints
    log_interval: int = 10  # steps between progress-bar refreshes of loss and tokens/s
    threads: int = 0  # torch CPU threads; 0 keeps torch's default

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.grad_accum * self.seq_len

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["lora_targets"] = list(self.lora_targets)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(
                f"Unknown training setting(s) {', '.join(unknown)}; "
                f"valid ones are the fields of TrainConfig: {', '.join(sorted(names))}."
            )
        return cls(**{**data, "lora_targets": tuple(data.get("lora_targets", cls.lora_targets))})

    def replace(self, **changes: Any) -> TrainConfig:
        return self.from_dict({**self.to_dict(), **changes})


def recipe_path(name: str) -> Path:
    """The TOML file of a named recipe, or the path itself when given one."""
    candidate = Path(name)
    if candidate.suffix == ".toml" and candidate.is_file():
        return candidate
    path = RECIPES_DIR / f"{name}.toml"
    if not path.is_file():
        known = sorted(p.stem for p in RECIPES_DIR.glob("*.toml")) if RECIPES_DIR.is_dir() else []
        raise ConfigError(
            f"No training recipe named {name!r}; use one of {', '.join(known) or '(none found)'} "
            "or the path to a .toml file."
        )
    return path


def load_recipe(name: str, **overrides: Any) -> TrainConfig:
    """A recipe's config: dataclass defaults, then the TOML file, then ``overrides``."""
    with recipe_path(name).open("rb") as f:
        data = tomllib.load(f)
    data.pop("description", None)
    return TrainConfig.from_dict({**data, **overrides})
