"""The preference stage: DPO (TRL) on the kept text against the suggestion typed over.

After SFT on gold, a model can still rank a rejected suggestion above what the developer
kept. Goldiff's ``preference`` export (``prefix``/``suffix``/``chosen``/``rejected``: the kept
text against a suggestion that was typed over or taken only in part) feeds TRL's DPO,
each pair asked as the local source asks (FIM, or prefix-only with token healing, as the
model's serving profile says). The model is a folder saved by `train.train` (or a user's
base); with ``config.lora`` only LoRA adapters are trained. `goldiff distill
--preference-steps N` runs it after SFT (`distill/pipeline.py`). The ``kto`` export (every
suggestion with whether it survived) is for trainers outside Goldiff.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from goldiff.distill import data as data_mod
from goldiff.distill.config import TrainConfig
from goldiff.errors import ConfigError, NotEnoughDataError
from goldiff.export import load_rows
from goldiff.prompts import FIM_PAD


@dataclass
class PreferenceResult:
    final_dir: str
    rows: int
    steps: int
    train_loss: float


def _to_trl(
    rows: list[dict[str, Any]], tokenizer: Any, seq_len: int, shape: tuple[str, bool]
) -> list[dict[str, Any]]:
    """TRL's rows as token ids: each answer encoded exactly as SFT encodes it
    (`data.encode_sft_row`, in the serving `shape`: prompt mode and healing), the two sharing
    the shorter of their prompts. TRL's own tokenization of prompt + answer as one text
    would merge tokens across the cursor that the server never merges."""
    out = []
    for row in rows:
        if not {"chosen", "rejected"} <= set(row):
            raise ConfigError(
                "A preference row needs chosen/rejected (`goldiff export --format preference`); "
                f"this one has {sorted(row)}."
            )
        encoded = []
        for answer in (row["chosen"], row["rejected"]):
            ids, labels = data_mod.encode_sft_row(
                {**row, "completion": answer}, tokenizer.backend_tokenizer, seq_len, *shape
            )
            start = labels.count(data_mod.IGNORE_INDEX)  # the prompt; every answer token is labelled
            encoded.append((ids[:start], ids[start:]))
        prompt = min((p for p, _ in encoded), key=len)
        out.append({"prompt_ids": prompt, "chosen_ids": encoded[0][1], "rejected_ids": encoded[1][1]})
    return out


def train_preference(
    config: TrainConfig,
    model_dir: str | Path,
    rows_path: str | Path,
    out_dir: str | Path,
    *,
    prompt: str = "fim",
    heal: bool = False,
) -> PreferenceResult:
    """Run DPO from ``model_dir`` on exported pairs; write ``out_dir/final``.

    `prompt` and `heal` are the serving profile's (as for SFT, `config.sft_prompt`).
    """
    import torch
    from datasets import Dataset
    from transformers import AutoTokenizer, PrinterCallback

    from goldiff.distill.model import load_model, lora_config

    rows = load_rows(Path(rows_path))
    if len(rows) < config.min_rows:
        raise NotEnoughDataError(
            f"{rows_path} holds {len(rows)} preference row(s); at least {config.min_rows} are "
            "needed. Keep using Goldiff until more suggestions were accepted and rejected."
        )
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    tokenizer.pad_token = tokenizer.pad_token or FIM_PAD
    dataset = Dataset.from_list(_to_trl(rows, tokenizer, config.seq_len, (prompt, heal)))
    out = Path(out_dir)
    trl: Any = importlib.import_module("trl")  # a lazy module: mypy cannot see its names

    class EncodedDPO(trl.DPOTrainer):  # type: ignore[misc]
        """TRL's DPO trainer, given rows `_to_trl` already encoded, trains on them as they are."""

        def _prepare_dataset(self, dataset: Any, *_args: Any, **_kwargs: Any) -> Any:
            return dataset

    args = trl.DPOConfig(
        output_dir=str(out / "trl"),
        per_device_train_batch_size=max(2, config.batch_size),
        gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.learning_rate,
        max_steps=config.max_steps,
        warmup_steps=min(config.warmup_steps, max(0, config.max_steps - 1)),
        lr_scheduler_type="cosine",
        logging_steps=config.log_interval,
        save_strategy="no",
        report_to=[],
        seed=config.seed,
        beta=0.1,
        max_length=config.seq_len + 1,  # what encode_sft_row keeps
        bf16=torch.cuda.is_available(),
        disable_tqdm=True,
        # TRL turns it on by default to save memory; a model this size fits, and recomputing
        # every layer's activations would cost a second forward pass in every step.
        gradient_checkpointing=False,
    )
    trainer = EncodedDPO(
        model=load_model(model_dir),
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=lora_config(config) if config.lora else None,
    )
    # Its logs stay in trainer.state: printed, they would land in stdout, which `--json` owns.
    trainer.remove_callback(PrinterCallback)
    output = trainer.train()
    final = out / "final"
    trainer.save_model(str(final))
    tokenizer.save_pretrained(str(final))
    result = PreferenceResult(str(final), len(rows), int(output.global_step), float(output.training_loss))
    (out / "result.json").write_text(json.dumps(asdict(result), indent=1) + "\n")
    return result
