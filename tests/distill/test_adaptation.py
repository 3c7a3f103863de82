"""Repository-adapted distillation: rows in the shape the model is served, the workspace's own
code as it was at the cutoff, the best validation step kept, the serving profile inherited."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("llama_cpp")

from goldiff.distill import data
from goldiff.distill.pipeline import FinetuneOptions, distill_from_store
from goldiff.distill.tokenizer import load_tokenizer
from goldiff.distill.workspace import documents_at, text_rows, training_rows
from goldiff.errors import ConfigError
from goldiff.sources.base import CompletionRequest
from goldiff.sources.profile import load_profile, write_profile
from goldiff.sources.registry import Registry
from goldiff.store import EditRecord, TraceStore, open_database

from tests.distill.test_guard import SPECS
from tests.test_export import fill_store

CONTEXTS = [  # (prefix, the rest of the line the developer wrote)
    ("def f(x):\n", "    return x"),  # a line end: nothing to heal
    ("def add(a, b):\n    return a", " + b"),
    ("import os\nresult = os.path.jo", "in(a, b)"),
    ("class Point:\n    def __init__(self, x):\n        self.", "x = x"),
    ("for i in range(", "10):"),
    ("    value = compute(alpha,", " beta)"),
]


@pytest.mark.slow
def test_prefix_rows_are_the_prompt_the_server_sends_and_the_answer_after_it(
    tiny_base: Any, tmp_path: Path
) -> None:
    from goldiff.sources.local import LocalSource

    gguf = Path(tiny_base.gguf_path)
    write_profile(gguf, prompt="prefix", heal=True)
    source = LocalSource(gguf, n_threads=1)
    assert source.prompt_mode == "prefix"
    tokenizer = load_tokenizer(gguf.parent / "hf" / "tokenizer.json")
    for prefix, completion in CONTEXTS:
        ids, labels = data.encode_sft_row(
            {"prefix": prefix, "suffix": "\n", "completion": completion}, tokenizer, 256, "prefix", heal=True
        )
        context = [t for t, lab in zip(ids, labels, strict=True) if lab == data.IGNORE_INDEX]
        answer = [t for t, lab in zip(ids, labels, strict=True) if lab != data.IGNORE_INDEX]
        served, heal = source.build_prompt(CompletionRequest(prefix=prefix, suffix="\n"))
        assert source.bos + context == served, prefix  # the prompt, token for token
        written = tokenizer.decode(answer)
        # The answer starts with the text token healing asks again, and writes the gold.
        # The answer runs on to the end of the line, the first thing that stops a suggestion.
        assert written.startswith(heal.decode()) and heal.decode() + completion + "\n" == written, prefix
    # The answer ends where the suggestion stops, at the end of the line: the suffix is
    # not part of it (at a line start it is the line below).
    cases = [  # (prefix, suffix, completion, the labelled answer)
        ("x = f(a", ")\ny = 2\n", ", b", ", b\n"),
        ("x = 1\n", "y = 2\n", "z = 3", "z = 3\n"),
    ]
    for prefix, suffix, completion, expected in cases:
        row = {"prefix": prefix, "suffix": suffix, "completion": completion}
        ids, labels = data.encode_sft_row(row, tokenizer, 256, "prefix", heal=False)
        answer = [t for t, lab in zip(ids, labels, strict=True) if lab != data.IGNORE_INDEX]
        assert tokenizer.decode(answer) == expected, prefix
    source.close()


def test_fim_rows_keep_the_fim_prompt_and_text_rows_are_all_labelled(tiny_base: Any) -> None:
    tokenizer = load_tokenizer(Path(tiny_base.gguf_path).parent / "hf" / "tokenizer.json")
    special = data.SpecialIds.of(tokenizer)
    ids, labels = data.encode_sft_row({"prefix": "x = ", "suffix": "\n", "completion": "1"}, tokenizer, 64)
    assert ids[0] == special.fim_prefix and special.fim_middle in ids and labels[-1] == special.eos
    ids, labels = data.encode_sft_row({"text": "def f():\n    return 1\n"}, tokenizer, 64, "prefix")
    assert ids == labels and tokenizer.decode(ids) == "def f():\n    return 1\n"
    with pytest.raises(Exception, match="fim or prefix"):
        data.encode_sft_row({"prefix": "a", "completion": "b"}, tokenizer, 64, "chat")


def test_the_workspace_code_is_read_as_it_was_at_the_cutoff(tmp_path: Path) -> None:
    home = tmp_path / "home"
    fill_store(home, SPECS)
    store = TraceStore(home / "traces.db")
    t0 = time.time()
    doc = {"id": "doc-lib", "session_id": "sess", "uri": "file:///w/lib.py", "workspace": "w"}
    store.record_document({**doc, "path": "lib.py", "language": "python", "opened_at": t0})
    store.record_edit(EditRecord("doc-lib", "open", 1, t0 + 1, 1.0, inserted="def kept():\n    return 1\n"))
    store.record_edit(EditRecord("doc-lib", "change", 2, t0 + 10, 10.0, inserted="LATER = 2\n"))
    store.close()
    db, _ = open_database(home / "traces.db")
    try:
        before = documents_at(db, t0 + 5)
        after = documents_at(db, None)
    finally:
        db.conn.close()
    assert before["file:///w/lib.py"] == "def kept():\n    return 1\n"  # the later edit is not read
    assert after["file:///w/lib.py"].startswith("LATER = 2\ndef kept")
    rows = text_rows({"a.py": "x = 1\n" * 400}, seq_len=64)
    assert len(rows) > 1 and "".join(r["text"] for r in rows) == "x = 1\n" * 400
    assert all(len(r["text"]) <= 64 * 3.5 for r in rows)
    mixed = training_rows([{"id": "g", "completion": "c"}], rows, gold_weight=3)
    assert sum(1 for r in mixed if r.get("id") == "g") == 3 and len(mixed) == len(rows) + 3


@pytest.mark.slow
def test_distill_learns_the_workspace_keeps_its_best_step_and_serves_as_its_base(
    tmp_path: Path, tiny_base: Any
) -> None:
    base = Path(tiny_base.gguf_path)
    write_profile(base, prompt="prefix", heal=True, min_token_prob=0.1, context_tokens=256)
    home = tmp_path / "home"
    fill_store(home, SPECS)
    said: list[str] = []
    options = FinetuneOptions(
        recipe="tiny", steps=12, batch_size=4, seq_len=64, learning_rate=2e-3, threads=1, evals=3
    )
    result = distill_from_store(home, name="adapted", base=base, options=options, min_rows=2, say=said.append)
    assert result["prompt"] == "prefix" and 0 < result["best_step"] <= 12
    losses = result["lineage"]["heldout_loss"]
    assert losses["tuned"] < losses["base"], losses  # learned the gold, in the served shape
    # Validation is the newest gold (a time split, as the held-out rows are), never trained on.
    rows = [json.loads(line) for line in (home / "models" / "adapted" / "data" / "adapt.jsonl").open()]
    val = [r for r in rows if r.get("split") == "val"]
    trained = [r for r in rows if "completion" in r and r.get("split") != "val"]
    assert val and trained and min(r["ts"] for r in val) > max(r["ts"] for r in trained)
    assert not {r["id"] for r in val} & {r["id"] for r in trained}
    profile = load_profile(result["gguf"])
    assert (profile.prompt, profile.heal, profile.min_token_prob, profile.context_tokens) == (
        "prefix",
        True,
        0.1,
        256,
    )

    # A learning rate that can only hurt: no step beats the start, and the base's weights stay.
    hurt = FinetuneOptions(
        recipe="tiny", steps=4, batch_size=4, seq_len=64, learning_rate=50.0, threads=1, evals=4
    )
    worse = distill_from_store(home, name="hurt", base=base, options=hurt, min_rows=2, say=said.append)
    assert worse["best_step"] == 0 and worse["kept_base"] and worse["gguf"] == str(base)
    assert any("base's weights are kept" in m for m in said)
    assert worse["name"] is None and not worse["promotion"]["promoted"]
    assert Registry(home).get("hurt") is None  # nothing worse than the base is registered


@pytest.mark.slow
def test_distill_with_lora_registers_an_adapter_on_its_base_that_the_engine_serves(
    tmp_path: Path, tiny_base: Any
) -> None:
    """A larger base is adapted with LoRA: the adapter ships, served on the base GGUF as it is."""
    from goldiff.evaluate import EngineFim

    base = Path(tiny_base.gguf_path)
    home = tmp_path / "home"
    fill_store(home, SPECS)
    options = FinetuneOptions(
        recipe="lora", steps=12, batch_size=4, seq_len=64, learning_rate=5e-3, threads=1, evals=3
    )
    result = distill_from_store(home, name="adapted-lora", base=base, options=options, min_rows=2, say=print)
    assert not result["kept_base"] and result["qtype"] == "lora"
    assert result["gguf"] == str(base) and Path(result["adapter"]).is_file()
    losses = result["lineage"]["heldout_loss"]
    assert losses["tuned"] < losses["base"], losses  # the adapter learned the gold
    entry = Registry(home).resolve("adapted-lora")
    assert entry.adapter_path is not None and Path(entry.adapter_path) == Path(result["adapter"]).resolve()
    assert Path(entry.model_path) == base.resolve()
    answers = []
    for adapter in (None, entry.adapter_path):  # the base alone, then base + adapter
        engine = EngineFim(entry.model_path, lora_path=adapter, max_seconds=30)
        try:
            answers.append(engine.answer("def add(a, b):\n    return", "\n"))
        finally:
            engine.close()
    assert answers[1].logprobs  # the engine loaded the adapter on its base and answered
    assert (answers[0].text, answers[0].logprobs) != (answers[1].text, answers[1].logprobs)


def test_a_base_without_fim_tokens_trains_with_prefix_rows() -> None:
    """A pulled left-to-right model's tokenizer has <|endoftext|> but no FIM tokens."""
    from tokenizers import Tokenizer, models

    tokenizer = Tokenizer(models.WordLevel({"<|endoftext|>": 0, "x": 1, "[UNK]": 2}, unk_token="[UNK]"))
    assert data.SpecialIds.of(tokenizer, fim=False).eos == 0
    with pytest.raises(ConfigError, match="without FIM tokens trains with prefix prompts"):
        data.SpecialIds.of(tokenizer)


def test_validation_begins_at_the_commit_nearest_the_newest_tenth(tmp_path: Path) -> None:
    """Rows of one commit repeat its change: split inside it, validation would reward a fine-tune
    for having seen the commit's first half, not for what the next commits need."""
    from goldiff.distill.pipeline import validation_cutoff

    gold = tmp_path / "train.jsonl"
    gold.write_text("".join(json.dumps({"ts": float(t)}) + "\n" for t in range(100)))  # rows at 0..99 s
    assert validation_cutoff(gold, 0.1) == 90.0  # no commits: the newest tenth, wherever it falls
    # Commits after rows 87 and 95: 12 rows to validate; 4 would be less than half a tenth.
    assert validation_cutoff(gold, 0.1, [40.5, 87.5, 95.5]) == pytest.approx(87.5)
    assert validation_cutoff(gold, 0.1, [50.5, 97.5]) == 90.0  # 49 rows or 2: neither is taken
    assert validation_cutoff(gold, 0.1, [88.5, 91.5]) == pytest.approx(88.5)  # 11 rows is nearer 10 than 8


def test_the_demo_chooses_on_validation_rows_its_fine_tune_neither_trained_nor_stopped_on(
    tmp_path: Path,
) -> None:
    """Early stopping picks the step best on its validation rows; a choice made on those same
    rows would judge the fine-tune where it is best. The newer half decides, unseen."""
    from goldiff.demo import choice_cutoff
    from goldiff.distill.pipeline import FinetuneOptions, adapted_rows, validation_cutoff

    gold = tmp_path / "train.jsonl"
    rows = [{"ts": float(t), "prefix": f"x{t} = ", "suffix": "", "completion": str(t)} for t in range(200)]
    gold.write_text("".join(json.dumps(r) + "\n" for r in rows))
    commits = [49.5, 99.5, 179.5, 189.5]
    val = validation_cutoff(gold, 0.1, commits)
    choice = choice_cutoff(gold, val, commits)
    assert val == pytest.approx(179.5) and choice == pytest.approx(189.5)
    options = FinetuneOptions(workspace_code=False)
    written = [
        json.loads(line)
        for line in adapted_rows(gold, {}, tmp_path, options, val_cutoff=val, until=choice)
        .read_text()
        .splitlines()
    ]
    assert {r["ts"] for r in written if r.get("split") == "val"} == {float(t) for t in range(180, 190)}
    assert max(r["ts"] for r in written) < 190  # the rows the choice reads: never trained, never validated
    assert {r["ts"] for r in written if r.get("split") != "val"} == {float(t) for t in range(180)}
    # Too few rows to halve at a commit: the choice reads the whole validation share.
    assert choice_cutoff(gold, val, [49.5, 179.5]) is None
    assert choice_cutoff(gold, None, commits) is None
