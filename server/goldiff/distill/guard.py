"""A fine-tune must not come out worse than its base: held-out loss before and after.

`heldout_loss` is the mean cross-entropy per completion token of a model on sft rows (the
same encoding training uses, in the model's serving prompt shape), computed
on rows training never saw (the export's time-split test rows). `goldiff distill` measures
the base and the fine-tune on them, records both in the lineage, and refuses to promote a
fine-tune that did not lower it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from goldiff.distill import data as data_mod
from goldiff.distill.model import load_model

BATCH = 8


@torch.no_grad()
def heldout_loss(
    model_dir: str | Path,
    rows: Sequence[dict[str, Any]],
    tokenizer_path: str | Path,
    seq_len: int = 256,
    prompt: str = "fim",
    heal: bool = False,
) -> float | None:
    """Mean loss per labelled token of the model in `model_dir` on `rows` (None: no rows)."""
    if not rows:
        return None
    tokenizer = data_mod.load_tokenizer(tokenizer_path)
    encoded = [data_mod.encode_sft_row(dict(r), tokenizer, seq_len, prompt, heal) for r in rows]
    batches = data_mod.SFTRows(encoded, data_mod.SpecialIds.of(tokenizer, fim=False).eos)
    model = load_model(model_dir)
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(encoded), BATCH):
        batch = batches.collate(encoded[start : start + BATCH])
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        labels = batch["labels"]
        total += float(
            F.cross_entropy(
                logits.float().reshape(-1, logits.shape[-1]),
                labels.reshape(-1),
                ignore_index=data_mod.IGNORE_INDEX,
                reduction="sum",
            )
        )
        count += int((labels != data_mod.IGNORE_INDEX).sum())
    return total / count if count else None
