"""Training on the tiny recipe with real torch: parameters move, loss is where it belongs,
a resumed run continues exactly, LoRA touches only adapters, too little data says so."""

from __future__ import annotations

import json
import sysconfig
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from goldiff.distill import data  # noqa: E402
from goldiff.distill.config import TrainConfig, load_recipe  # noqa: E402
from goldiff.distill.model import build_model  # noqa: E402
from goldiff.distill.tokenizer import load_tokenizer, save_tokenizer, train_tokenizer  # noqa: E402
from goldiff.distill.train import train  # noqa: E402
from goldiff.errors import ConfigError, NotEnoughDataError  # noqa: E402

STDLIB = Path(sysconfig.get_paths()["stdlib"])


def _stdlib_texts(limit: int) -> list[str]:
    texts, total = [], 0
    for path in sorted(STDLIB.glob("*.py")):
        text = path.read_text(encoding="utf-8", errors="replace")
        texts.append(text)
        total += len(text)
        if total > limit:
            break
    return texts


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A 512-token tokenizer and a packed FIM corpus of ~150 kB of the standard library."""
    root = tmp_path_factory.mktemp("tiny")
    texts = _stdlib_texts(150_000)
    tok_dir = save_tokenizer(train_tokenizer(texts, vocab_size=512), root / "tokenizer")
    tokenizer = load_tokenizer(tok_dir / "tokenizer.json")
    docs = [("val" if i % 10 == 0 else "train", t) for i, t in enumerate(texts)]
    data.pack_corpus(docs, tokenizer, root / "corpus", fim_rate=0.5, seed=0)
    return {"root": root, "tokenizer": tok_dir / "tokenizer.json", "corpus": root / "corpus"}


def _config(**changes: Any) -> TrainConfig:
    return load_recipe("tiny", threads=1, **changes)


def _losses(out: Path) -> dict[int, float]:
    lines = (out / "log.jsonl").read_text().splitlines()
    return {row["step"]: row["train_loss"] for row in map(json.loads, lines)}


def test_few_steps_move_every_parameter_and_keep_loss_finite(tiny: dict[str, Any], tmp_path: Path) -> None:
    config = _config(max_steps=4, eval_interval=2)
    torch.manual_seed(0)
    start = build_model(config)
    start.save_pretrained(tmp_path / "start")
    before = {n: p.detach().clone() for n, p in start.named_parameters()}

    result = train(
        config.replace(init_from=str(tmp_path / "start")),
        tmp_path / "run",
        corpus_dir=tiny["corpus"],
        progress=False,
    )

    from transformers import AutoModelForCausalLM

    after = dict(AutoModelForCausalLM.from_pretrained(result.final_dir).named_parameters())
    unchanged = [n for n, p in before.items() if torch.equal(p, after[n].detach())]
    assert unchanged == []
    assert result.steps == 4 and not result.interrupted
    assert all(map(torch.isfinite, map(torch.tensor, _losses(tmp_path / "run").values())))
    assert result.val_loss is not None and result.val_loss == result.val_loss  # not NaN
    assert result.tokens_seen == 4 * config.tokens_per_step


def test_loss_decreases_from_scratch(tiny: dict[str, Any], tmp_path: Path) -> None:
    result = train(
        _config(max_steps=30, eval_interval=1), tmp_path, corpus_dir=tiny["corpus"], progress=False
    )
    losses = _losses(tmp_path)
    assert losses[30] < losses[1] - 0.5  # ln(512) = 6.2 at the start
    assert result.parameters == result.trainable_parameters > 0


class _Killed(Exception):
    pass


def test_resume_continues_exactly_like_an_uninterrupted_run(tiny: dict[str, Any], tmp_path: Path) -> None:
    config = _config(max_steps=6, eval_interval=1, checkpoint_interval=3)
    train(config, tmp_path / "whole", corpus_dir=tiny["corpus"], progress=False)

    def die_at_3(model: Any, step: int) -> None:
        if step == 3:
            raise _Killed  # the process dies right after its checkpoint was written

    with pytest.raises(_Killed):
        train(config, tmp_path / "split", corpus_dir=tiny["corpus"], progress=False, on_checkpoint=die_at_3)
    assert (tmp_path / "split" / "checkpoint.pt").is_file()
    resumed = train(config, tmp_path / "split", corpus_dir=tiny["corpus"], progress=False)

    whole, split = _losses(tmp_path / "whole"), _losses(tmp_path / "split")
    assert resumed.steps == 6
    assert sorted(split) == [1, 2, 3, 4, 5, 6]
    for step in (4, 5, 6):
        assert split[step] == pytest.approx(whole[step], rel=1e-5)


def _sft_rows(n: int) -> list[dict[str, str]]:
    return [
        {
            "id": f"row{i}",
            "prompt": "",
            "prefix": f"def add_{i}(a, b):\n    return ",
            "suffix": f"\n\n\nprint(add_{i}(1, 2))\n",
            "completion": "a + b",
        }
        for i in range(n)
    ]


def test_sft_rows_put_loss_on_the_completion_only(tiny: dict[str, Any]) -> None:
    tokenizer = load_tokenizer(tiny["tokenizer"])
    special = data.SpecialIds.of(tokenizer)
    row = _sft_rows(1)[0]
    ids, labels = data.encode_sft_row(row, tokenizer, seq_len=256)
    completion = [*tokenizer.encode("a + b", add_special_tokens=False).ids, special.eos]
    prefix = tokenizer.encode(row["prefix"], add_special_tokens=False).ids
    suffix = tokenizer.encode(row["suffix"], add_special_tokens=False).ids
    assert ids == [special.fim_prefix, *prefix, special.fim_suffix, *suffix, special.fim_middle, *completion]
    assert labels == [data.IGNORE_INDEX] * (len(ids) - len(completion)) + completion

    batch = data.SFTRows([(ids, labels)], pad_id=special.eos).collate(
        [(ids, labels), (ids[:-2], labels[:-2])]
    )
    supervised = batch["labels"][0][batch["labels"][0] != data.IGNORE_INDEX].tolist()
    assert supervised == completion
    # The label at position t is the token after input t: the last prompt token predicts
    # the completion's first token.
    first = (batch["labels"][0] != data.IGNORE_INDEX).nonzero()[0].item()
    assert batch["input_ids"][0, first].item() == special.fim_middle
    assert batch["attention_mask"][1].sum().item() == len(ids) - 3


def test_loss_projects_only_labelled_positions_and_matches_the_whole_projection(
    tiny: dict[str, Any],
) -> None:
    import torch.nn.functional as F
    from goldiff.distill.train import _loss

    tokenizer = load_tokenizer(tiny["tokenizer"])
    special = data.SpecialIds.of(tokenizer)
    rows = _sft_rows(3)
    encoded = [data.encode_sft_row(r, tokenizer, seq_len=256) for r in rows]
    batch = data.SFTRows(encoded, pad_id=special.eos).collate(encoded)
    model = build_model(_config())
    vocab = model.config.vocab_size
    seen: list[int] = []
    model.lm_head.register_forward_hook(lambda _m, args, _out: seen.append(args[0].shape[-2]))

    kept = _loss(model, batch, vocab, "sum")
    kept.backward()
    kept_grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    model.zero_grad()
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    labels = batch["labels"].reshape(-1)
    full = F.cross_entropy(logits.reshape(-1, vocab), labels, ignore_index=data.IGNORE_INDEX, reduction="sum")
    full.backward()

    labelled = int((batch["labels"] != data.IGNORE_INDEX).any(dim=0).sum())
    assert seen[0] == labelled < batch["labels"].shape[1]  # the prompt positions were skipped
    assert torch.allclose(kept, full, rtol=1e-5)
    full_grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(kept_grads, full_grads, strict=True))
    # A batch labelled everywhere (a pretraining window) is projected whole.
    window = {"input_ids": batch["input_ids"][:, :8], "labels": batch["input_ids"][:, 1:9]}
    _loss(model, window, vocab)
    assert seen[-1] == 8


def test_sft_training_learns_the_completion(tiny: dict[str, Any], tmp_path: Path) -> None:
    rows = tmp_path / "sft.jsonl"
    rows.write_text("".join(json.dumps(r) + "\n" for r in _sft_rows(40)))
    result = train(
        _config(max_steps=25, eval_interval=5, val_fraction=0.1, learning_rate=3e-3),
        tmp_path / "run",
        sft_path=rows,
        tokenizer_path=tiny["tokenizer"],
        progress=False,
    )
    losses = _losses(tmp_path / "run")
    assert losses[25] < losses[5] / 2
    assert (Path(result.final_dir or "") / "tokenizer.json").is_file()


def test_lora_changes_only_adapter_parameters(tiny: dict[str, Any], tmp_path: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    build_model(_config()).save_pretrained(tmp_path / "base")
    base_before = {
        n: p.detach().clone()
        for n, p in AutoModelForCausalLM.from_pretrained(tmp_path / "base").named_parameters()
    }
    config = load_recipe(
        "lora",
        init_from=str(tmp_path / "base"),
        max_steps=3,
        seq_len=64,
        batch_size=2,
        eval_interval=3,
        eval_batches=1,
        threads=1,
        learning_rate=1e-2,
    )
    result = train(config, tmp_path / "run", corpus_dir=tiny["corpus"], progress=False)
    assert 0 < result.trainable_parameters < result.parameters / 5

    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)["model"]
    assert state and all("lora_" in k for k in state)
    base = AutoModelForCausalLM.from_pretrained(tmp_path / "base")
    tuned = PeftModel.from_pretrained(base, result.final_dir)
    lora_b = [p for n, p in tuned.named_parameters() if "lora_B" in n]
    assert lora_b and all(p.abs().sum() > 0 for p in lora_b)  # peft starts B at zero
    for name, param in tuned.get_base_model().named_parameters():
        if "lora_" not in name:
            key = name.replace(".base_layer", "")
            assert torch.equal(param, base_before[key]), name


def test_too_few_rows_says_how_many_are_needed(tiny: dict[str, Any], tmp_path: Path) -> None:
    rows = tmp_path / "sft.jsonl"
    rows.write_text("".join(json.dumps(r) + "\n" for r in _sft_rows(3)))
    with pytest.raises(NotEnoughDataError, match=r"holds 3 SFT row\(s\); at least 8 are needed"):
        train(_config(), tmp_path / "run", sft_path=rows, tokenizer_path=tiny["tokenizer"], progress=False)


def test_too_small_corpus_says_how_many_tokens_are_needed(tiny: dict[str, Any], tmp_path: Path) -> None:
    tokenizer = load_tokenizer(tiny["tokenizer"])
    data.pack_corpus([("train", "x = 1\n"), ("val", "y = 2\n")], tokenizer, tmp_path / "c", 0.0, 0)
    with pytest.raises(NotEnoughDataError, match=r"train split has \d+ tokens; at least 260 are needed"):
        train(_config(), tmp_path / "run", corpus_dir=tmp_path / "c", progress=False)


def test_recipes_load_and_reject_unknown_settings(tmp_path: Path) -> None:
    assert load_recipe("default").hidden_size % 256 == 0
    assert load_recipe("lora").lora
    bad = tmp_path / "bad.toml"
    bad.write_text("hidden_sise = 512\n")
    with pytest.raises(ConfigError, match="hidden_sise"):
        load_recipe(str(bad))
    with pytest.raises(ConfigError, match="No training recipe named 'nope'"):
        load_recipe("nope")
    with pytest.raises(ConfigError, match="multiple of 256"):
        build_model(TrainConfig(hidden_size=300))


def test_sigterm_stops_with_a_checkpoint_that_resumes(tiny: dict[str, Any], tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "run"
    script = (
        "import sys; from goldiff.distill.config import load_recipe; "
        "from goldiff.distill.train import train; "
        "c = load_recipe('tiny', max_steps=100000, eval_interval=1, checkpoint_interval=100000, "
        "threads=1); r = train(c, sys.argv[1], corpus_dir=sys.argv[2], progress=False); "
        "print('interrupted' if r.interrupted else 'finished', r.steps)"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(data.__file__).parents[2])}
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(out), str(tiny["corpus"])],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 240
    while not (out / "log.jsonl").is_file() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)  # polling for the first logged step, not timing anything
    proc.send_signal(signal.SIGTERM)
    stdout, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0
    word, steps = stdout.split()
    assert word == "interrupted" and int(steps) >= 1
    state = torch.load(out / "checkpoint.pt", weights_only=False)
    assert state["step"] == int(steps)
    resumed = train(_config(max_steps=int(steps) + 1), out, corpus_dir=tiny["corpus"], progress=False)
    assert resumed.steps == int(steps) + 1 and not resumed.interrupted
