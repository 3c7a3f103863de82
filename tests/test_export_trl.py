"""Exported rows load into HF `datasets` and TRL's trainers unchanged (one real step each)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from goldiff.export import ExportOptions, export
from goldiff.store import open_database

from tests.test_export import SUGGESTIONS, fill_store

datasets = pytest.importorskip("datasets")
trl = pytest.importorskip("trl")
transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

pytestmark = pytest.mark.slow

SPECIALS = ["<|endoftext|>", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|fim_pad|>"]


def tiny_model_and_tokenizer() -> tuple[Any, Any]:
    """A byte-level BPE with the FIM tokens and a one-layer random Qwen2, built offline."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator([s[7] + s[9] + s[8] for s in SUGGESTIONS] * 4, trainer)
    hf_tok = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|fim_pad|>"
    )
    config = transformers.Qwen2Config(
        vocab_size=len(hf_tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        eos_token_id=0,
        pad_token_id=4,
    )
    transformers.set_seed(0)
    return transformers.Qwen2ForCausalLM(config), hf_tok


@pytest.fixture
def exports(tmp_path: Path) -> dict[str, Path]:
    # Enough rows of every kind for a batch of two: the same specs again, an hour later.
    later = [(f"{s[0]}-b", s[1] + 60, *s[2:7], s[7] + "# again\n", *s[8:]) for s in SUGGESTIONS]
    db, _ = open_database(fill_store(tmp_path / "home", SUGGESTIONS + later))
    out = {}
    for fmt in ("sft", "preference", "kto", "parquet"):
        result = export(db, ExportOptions(format=fmt), tmp_path / f"{fmt}")
        out[fmt] = result.paths["all"]
    db.conn.close()
    return out


def load(path: Path) -> Any:
    kind = "parquet" if path.suffix == ".parquet" else "json"
    return datasets.load_dataset(kind, data_files={"train": str(path)})["train"]


def common_args(tmp_path: Path) -> dict[str, Any]:
    return {
        "output_dir": str(tmp_path / "run"),
        "max_steps": 1,
        "per_device_train_batch_size": 2,
        "report_to": [],
        "save_strategy": "no",
        "use_cpu": True,
        "logging_steps": 1,
    }


def test_datasets_sees_the_trl_columns(exports: dict[str, Path]) -> None:
    sft, pq = load(exports["sft"]), load(exports["parquet"])
    assert {"prompt", "completion", "id", "ts", "source", "model", "outcome"} <= set(sft.column_names)
    assert sft.to_list() == pq.to_list()
    assert {"prompt", "chosen", "rejected"} <= set(load(exports["preference"]).column_names)
    kto = load(exports["kto"])
    assert kto.features["label"].dtype == "bool"
    assert sorted(set(kto["label"])) == [False, True]
    assert not trl.data_utils.is_conversational(sft[0])


def test_sft_trainer_trains_on_the_export(exports: dict[str, Path], tmp_path: Path) -> None:
    model, tok = tiny_model_and_tokenizer()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer = trl.SFTTrainer(
        model=model,
        args=trl.SFTConfig(**common_args(tmp_path)),
        train_dataset=load(exports["sft"]),
        processing_class=tok,
    )
    # Loss on the completion only: the prompt's tokens are masked out of the labels.
    example = trainer.train_dataset[0]
    prompt_ids = tok(load(exports["sft"])[0]["prompt"])["input_ids"]
    assert example["input_ids"][: len(prompt_ids)] == prompt_ids
    out = trainer.train()
    assert out.training_loss == out.training_loss  # finite, not NaN
    changed = [n for n, p in model.named_parameters() if not bool((p.detach() == before[n]).all())]
    assert changed


def test_dpo_trainer_takes_the_preference_export(exports: dict[str, Path], tmp_path: Path) -> None:
    model, tok = tiny_model_and_tokenizer()
    reference, _ = tiny_model_and_tokenizer()
    trainer = trl.DPOTrainer(
        model=model,
        ref_model=reference,
        args=trl.DPOConfig(**common_args(tmp_path)),
        train_dataset=load(exports["preference"]),
        processing_class=tok,
    )
    out = trainer.train()
    assert out.training_loss == out.training_loss


def test_kto_trainer_takes_the_kto_export(exports: dict[str, Path], tmp_path: Path) -> None:
    model, tok = tiny_model_and_tokenizer()
    reference, _ = tiny_model_and_tokenizer()
    trainer = trl.KTOTrainer(
        model=model,
        ref_model=reference,
        args=trl.KTOConfig(**common_args(tmp_path)),
        train_dataset=load(exports["kto"]),
        processing_class=tok,
    )
    out = trainer.train()
    assert out.training_loss == out.training_loss
