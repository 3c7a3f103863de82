"""The model: a transformers `Qwen2ForCausalLM` built from a `TrainConfig`, or loaded.

The qwen2 architecture is chosen because llama.cpp runs it natively (NEOX rope, q/k/v
biases) and our GGUF exporter maps it tensor by tensor. Keeping the model a stock
transformers class means a user's own Qwen2 base, peft's LoRA and `accelerate` all work
with it unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from goldiff.distill.config import TrainConfig
from goldiff.errors import ConfigError

# Token ids the corpus packer and the SFT rows rely on: the tokenizer puts its special tokens
# first, in this order (see SPECIAL_TOKENS in goldiff.prompts).
EOS_ID = 0


def build_model(config: TrainConfig) -> Qwen2ForCausalLM:
    """A freshly initialised model; `torch.manual_seed` beforehand makes it reproducible."""
    for name in ("hidden_size", "intermediate_size"):
        if getattr(config, name) % 256:
            raise ConfigError(
                f"{name}={getattr(config, name)} is not a multiple of 256; llama.cpp's K-quants "
                "(Q4_K_M) need rows divisible by 256. Pick 256, 512, 768, ..."
            )
    if config.hidden_size % config.num_heads or config.num_heads % config.num_kv_heads:
        raise ConfigError(
            f"num_heads={config.num_heads} must divide hidden_size={config.hidden_size} and be "
            f"a multiple of num_kv_heads={config.num_kv_heads}."
        )
    qwen2 = Qwen2Config(
        vocab_size=config.vocab_size,
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads,
        num_key_value_heads=config.num_kv_heads,
        max_position_embeddings=config.max_position,
        rope_parameters={"rope_type": "default", "rope_theta": config.rope_theta},
        tie_word_embeddings=config.tie_embeddings,
        use_sliding_window=False,
        bos_token_id=EOS_ID,
        eos_token_id=EOS_ID,
        pad_token_id=EOS_ID,
    )
    model = Qwen2ForCausalLM(qwen2)
    # The fast path on GPU; on CPU sdpa is also what transformers picks.
    model.config._attn_implementation = "sdpa"
    return model


def load_model(path: str | Path, **kwargs: Any) -> Any:
    """A model saved with `save_pretrained` (ours or a user's base)."""
    from transformers import AutoModelForCausalLM

    folder = Path(path)
    if not (folder / "config.json").is_file() and (folder / "adapter_config.json").is_file():
        # A LoRA run's final/ holds only its adapter (peft's format): the base it names,
        # with the adapter merged in, is the model it trained.
        from peft import PeftModel

        base_dir = json.loads((folder / "adapter_config.json").read_text())["base_model_name_or_path"]
        base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32, **kwargs)
        return PeftModel.from_pretrained(base, folder).merge_and_unload()
    if not (folder / "config.json").is_file():
        raise ConfigError(
            f"{folder} is not a Hugging Face model folder (no config.json); point init_from at "
            "a folder written by save_pretrained, e.g. a distill run's final/ folder."
        )
    return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, **kwargs)


def lora_config(config: TrainConfig) -> Any:
    """peft's settings for the LoRA adapters of a run with ``config.lora``."""
    from peft import LoraConfig

    return LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=list(config.lora_targets),
        task_type="CAUSAL_LM",
    )


def count_parameters(model: torch.nn.Module, trainable_only: bool = False) -> int:
    """Parameters, counting tied embeddings once."""
    seen: set[int] = set()
    total = 0
    for p in model.parameters():
        if id(p) in seen or (trainable_only and not p.requires_grad):
            continue
        seen.add(id(p))
        total += p.numel()
    return total
