"""The optional preference stage: DPO or KTO (TRL) on what the developer accepted vs rejected.

After SFT on gold, a model can still rank a rejected suggestion above an accepted one.
Goldiff's ``preference`` export (``prompt``/``chosen``/``rejected``: the kept text against
a suggestion that was typed over) feeds TRL's DPO; the ``kto`` export
(``prompt``/``completion``/``label``: every suggestion with whether it survived) feeds KTO,
which needs no pairs. Rows carrying the raw ``prefix``/``suffix`` are turned into the
prompt the local source sends (FIM, or prefix-only with token healing, as the model's
serving profile says). The model is a folder saved by `train.train` (or a user's base);
with ``config.lora`` only LoRA adapters are trained. `goldiff distill` runs DPO after SFT
when the store holds enough suggestions the developer typed over (`distill/pipeline.py`).
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
from goldiff.prompts import END_OF_TEXT, FIM_PAD, fim_prompt


@dataclass
class PreferenceResult:
    method: str
    final_dir: str
    rows: int
    steps: int
    train_loss: float


def detect_method(rows: list[dict[str, Any]]) -> str:
    """ "dpo" for prompt/chosen/rejected rows, "kto" for prompt/completion/label rows."""
    keys = set(rows[0]) if rows else set()
    if {"chosen", "rejected"} <= keys:
        return "dpo"
    if {"completion", "label"} <= keys:
        return "kto"
    raise ConfigError(
        "Preference rows need prompt/chosen/rejected (export --format preference) or "
        f"prompt/completion/label (export --format kto); these have {sorted(keys)}."
    )


def _to_trl(
    rows: list[dict[str, Any]], method: str, tokenizer: Any, seq_len: int, shape: tuple[str, bool]
) -> list[dict[str, Any]]:
    """TRL's rows. A DPO pair arrives as token ids, each answer encoded exactly as SFT encodes
    it (`data.encode_sft_row`, in the serving `shape`: prompt mode and healing), the two
    sharing the shorter of their prompts; TRL's own tokenization of prompt + answer as one
    text would merge tokens across the cursor that the server never merges. KTO rows are
    FIM text for TRL to tokenize (the FIM tokens keep that boundary).
    """
    if method == "kto":
        eos = tokenizer.eos_token or END_OF_TEXT
        return [
            {"prompt": _fim_prompt(r), "completion": r["completion"] + eos, "label": bool(r["label"])}
            for r in rows
        ]
    out = []
    for row in rows:
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


def _encoded(dpo: type) -> type:
    """TRL's DPO trainer, given the rows `_to_trl` already encoded, trains on them as they are."""

    class Encoded(dpo):  # type: ignore[misc, valid-type]
        def _prepare_dataset(self, dataset: Any, *_args: Any, **_kwargs: Any) -> Any:
            return dataset

    return Encoded


def _fim_prompt(row: dict[str, Any]) -> str:
    if row.get("prefix") is not None:
        return fim_prompt(row["prefix"], row.get("suffix") or "")
    return str(row.get("prompt") or "")


def train_preference(
    config: TrainConfig,
    model_dir: str | Path,
    rows_path: str | Path,
    out_dir: str | Path,
    *,
    method: str = "auto",
    beta: float = 0.1,
    prompt: str = "fim",
    heal: bool = False,
) -> PreferenceResult:
    """Run DPO or KTO from ``model_dir`` on exported rows; write ``out_dir/final``.

    `prompt` and `heal` are the serving profile's (as for SFT, `config.sft_prompt`).
    """
    import torch
    from datasets import Dataset
    from transformers import AutoTokenizer, PrinterCallback

    from goldiff.distill.model import load_model, lora_config

    rows = data_mod.read_rows(Path(rows_path))
    if len(rows) < config.min_rows:
        raise NotEnoughDataError(
            f"{rows_path} holds {len(rows)} preference row(s); at least {config.min_rows} are "
            "needed. Keep using Goldiff until more suggestions were accepted and rejected."
        )
    method = detect_method(rows) if method == "auto" else method
    if method == "kto" and prompt != "fim":
        raise ConfigError(
            "KTO trains on FIM prompts only; for a model served left to right, train DPO on "
            "pairs (`goldiff export --format preference`)."
        )
    if method == "kto" and len({bool(r["label"]) for r in rows}) < 2:
        raise NotEnoughDataError(
            "KTO needs both accepted (label true) and rejected (label false) rows; "
            f"{rows_path} has only one kind."
        )
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    tokenizer.pad_token = tokenizer.pad_token or FIM_PAD
    model = load_model(model_dir)
    dataset = Dataset.from_list(_to_trl(rows, method, tokenizer, config.seq_len, (prompt, heal)))
    out = Path(out_dir)
    common: dict[str, Any] = {
        "output_dir": str(out / "trl"),
        "per_device_train_batch_size": max(2, config.batch_size),
        "gradient_accumulation_steps": config.grad_accum,
        "learning_rate": config.learning_rate,
        "max_steps": config.max_steps,
        "warmup_steps": min(config.warmup_steps, max(0, config.max_steps - 1)),
        "lr_scheduler_type": "cosine",
        "logging_steps": config.log_interval,
        "save_strategy": "no",
        "report_to": [],
        "seed": config.seed,
        "beta": beta,
        "max_length": config.seq_len + 1,  # what encode_sft_row keeps
        "bf16": torch.cuda.is_available(),
        "disable_tqdm": True,
        # TRL turns it on by default to save memory; a model this size fits, and recomputing
        # every layer's activations would cost a second forward pass in every step.
        "gradient_checkpointing": False,
    }
    trl: Any = importlib.import_module("trl")  # a lazy module: mypy cannot see its names
    trainers = {"dpo": (_encoded(trl.DPOTrainer), trl.DPOConfig), "kto": (trl.KTOTrainer, trl.KTOConfig)}
    if method not in trainers:
        raise ConfigError(f"Preference method must be auto, dpo or kto, not {method!r}.")
    trainer_cls, args_cls = trainers[method]
    trainer = trainer_cls(
        model=model,
        args=args_cls(**common),
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
    result = PreferenceResult(
        method=method,
        final_dir=str(final),
        rows=len(rows),
        steps=int(output.global_step),
        train_loss=float(output.training_loss),
    )
    (out / "result.json").write_text(json.dumps(asdict(result), indent=1) + "\n")
    return result
