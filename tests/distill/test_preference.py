"""DPO through TRL on a tiny model: the kept completion gains probability over the typed-over one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

from goldiff.distill.config import load_recipe  # noqa: E402
from goldiff.distill.model import build_model  # noqa: E402
from goldiff.distill.preference import train_preference  # noqa: E402
from goldiff.distill.tokenizer import save_tokenizer, train_tokenizer  # noqa: E402
from goldiff.errors import ConfigError, NotEnoughDataError  # noqa: E402

TEXT = "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n" * 30


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("base")
    save_tokenizer(train_tokenizer([TEXT], vocab_size=300), folder)
    torch.manual_seed(0)
    build_model(load_recipe("tiny", vocab_size=300)).save_pretrained(folder)
    return folder


def _logprob(model_dir: Path, prompt: str, answer: str) -> float:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir)).eval()
    p = tok(prompt, add_special_tokens=False)["input_ids"]
    a = tok(answer, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([p + a])
    with torch.no_grad():
        logp = model(ids).logits[0, :-1].log_softmax(-1)
    return float(sum(logp[len(p) - 1 + i, t] for i, t in enumerate(a)))


def _rows() -> list[dict[str, Any]]:
    return [
        {"prefix": f"def f{i}(a, b):\n    return ", "suffix": "\n", "chosen": "a + b", "rejected": "a - b"}
        for i in range(8)
    ]


def test_preference_stage_prefers_what_was_kept(
    base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _rows()))
    prompt = "<|fim_prefix|>def f9(a, b):\n    return <|fim_suffix|>\n<|fim_middle|>"
    margin_before = _logprob(base, prompt, "a + b") - _logprob(base, prompt, "a - b")
    config = load_recipe("tiny", vocab_size=300, max_steps=15, learning_rate=5e-3, threads=1)
    result = train_preference(config, base, path, tmp_path / "out")
    assert result.steps == 15 and result.rows == 8
    margin_after = _logprob(Path(result.final_dir), prompt, "a + b") - _logprob(
        Path(result.final_dir), prompt, "a - b"
    )
    assert margin_after > margin_before + 0.5
    assert "train_loss" not in capsys.readouterr().out  # stdout belongs to `--json` output


def test_preference_rows_are_checked(base: Path, tmp_path: Path) -> None:
    path = tmp_path / "kto.jsonl"
    path.write_text(
        "".join(json.dumps({"prefix": "x", "completion": "y", "label": True}) + "\n" for _ in range(8))
    )
    with pytest.raises(ConfigError, match="chosen/rejected"):
        train_preference(load_recipe("tiny"), base, path, tmp_path / "out")
    path = tmp_path / "few.jsonl"
    path.write_text(json.dumps(_rows()[0]) + "\n")
    with pytest.raises(NotEnoughDataError, match="1 preference row"):
        train_preference(load_recipe("tiny"), base, path, tmp_path / "out")


@pytest.mark.parametrize(("mode", "heal"), [("fim", False), ("prefix", False), ("prefix", True)])
def test_a_pair_is_asked_the_question_sft_trains_and_the_server_sends(
    base: Path, mode: str, heal: bool
) -> None:
    from goldiff.distill.data import encode_sft_row
    from goldiff.distill.preference import _to_trl
    from goldiff.distill.tokenizer import load_tokenizer
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(base))
    row = {
        "prefix": "x = 1\ndef f(a, b):\n    retu",
        "suffix": "\n",
        "chosen": "rn a + b",
        "rejected": "rn (a - b)",
    }
    (asked,) = _to_trl([row], tok, 12, (mode, heal))
    prompts = []
    for answer in ("chosen", "rejected"):
        sft = {**row, "completion": row[answer]}
        ids, labels = encode_sft_row(sft, load_tokenizer(base / "tokenizer.json"), 12, mode, heal)
        start = labels.count(-100)
        assert asked[f"{answer}_ids"] == ids[start:]  # the answer SFT trains on
        prompts.append(ids[:start])
    # The context SFT gives the longer answer: both fit in the row.
    assert asked["prompt_ids"] in prompts and len(asked["prompt_ids"]) == min(map(len, prompts))
    assert len(asked["prompt_ids"]) + max(len(asked["chosen_ids"]), len(asked["rejected_ids"])) <= 13
    assert asked["chosen_ids"] != asked["rejected_ids"]
