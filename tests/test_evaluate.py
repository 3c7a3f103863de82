"""Held-out evaluation: metrics, llama.cpp FIM completion, the report and `goldiff eval`."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from goldiff.cli import main
from goldiff.errors import ConfigError, ModelLoadError
from goldiff.evaluate import (
    EngineFim,
    EvalRow,
    ModelUnderTest,
    chrf,
    edit_similarity,
    eval_rows,
    evaluate,
    exact_match,
    gguf_model,
    run_eval,
)
from goldiff.export import ExportOptions, export, load_rows
from goldiff.metrics import accepted as accept_proxy
from goldiff.outcomes.spans import levenshtein
from goldiff.store import open_database

from tests.test_export import SUGGESTIONS, fill_store
from tests.tiny_models import write_tiny_gguf, write_tiny_lora_gguf


def naive_levenshtein(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def test_levenshtein_matches_the_textbook_recurrence() -> None:
    rng = random.Random(3)
    for _ in range(500):
        a = "".join(rng.choice("ab c\n😀") for _ in range(rng.randint(0, 80)))
        b = "".join(rng.choice("ab c\n😀") for _ in range(rng.randint(0, 80)))
        assert levenshtein(a, b) == naive_levenshtein(a, b), (a, b)
    long_a = "".join(rng.choice("abcdef") for _ in range(300))
    long_b = "".join(rng.choice("abcdef") for _ in range(250))
    assert levenshtein(long_a, long_b) == naive_levenshtein(long_a, long_b)


def test_metrics_on_known_pairs() -> None:
    gold = "return a + b"
    assert exact_match("return a + b\n", gold) and not exact_match("return a", gold)
    assert accept_proxy("return a", gold) and accept_proxy("return a + b  \n", gold)
    assert not accept_proxy("", gold) and not accept_proxy("   ", gold) and not accept_proxy("return b", gold)
    assert chrf(gold, gold) == 100.0 and chrf("", "") == 100.0
    assert chrf("", gold) == 0.0 and chrf("xyz", "qqq") == 0.0
    assert 0.0 < chrf("return a", gold) < chrf("return a +", gold) < 100.0
    assert edit_similarity("kitten", "sitting") == pytest.approx(1 - 3 / 7)
    assert edit_similarity("", "") == 1.0 and edit_similarity("", "abc") == 0.0


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("models")
    base = write_tiny_gguf(folder / "tiny.gguf")
    return base, write_tiny_lora_gguf(base, folder / "tiny-lora.gguf")


def test_eval_runs_the_servers_engine_and_prompt(tiny: tuple[Path, Path]) -> None:
    """The same worker process, request and prompt building as an inline completion."""
    from goldiff.sources.completion import make_request
    from goldiff.sources.local import LocalSource

    # A budget no busy machine runs out of: a cut answer would differ for timing, not engine.
    fim = EngineFim(tiny[0], max_tokens=8, max_seconds=60.0)
    try:
        assert fim.source.pid is not None and fim.source.pid != os.getpid()  # its own process
        text, latency = fim("def add(a, b):\n    ", "\n")
        again, _ = fim("def add(a, b):\n    ", "\n")
        assert text == again and text  # greedy: deterministic, and the tiny model never stops early
        assert latency > 0
    finally:
        fim.close()
    # In-process, the engine answers the very same request with the very same text.
    request = make_request("def add(a, b):\n    ", "\n")
    request.max_tokens, request.max_seconds = 8, 60.0
    assert LocalSource(tiny[0]).complete(request).text == text


def test_a_model_without_fim_tokens_or_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="no GGUF at"):
        EngineFim(tmp_path / "missing.gguf")
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"GGUF not really")
    with pytest.raises(ModelLoadError, match="could not load"):
        EngineFim(junk)


def rows_with_frontier() -> list[EvalRow]:
    return [
        EvalRow(
            "r1", "def add(a, b):\n    ", "\n", "return a + b", "frontier", "gpt-x", "return a + b", 120.0
        ),
        EvalRow(
            "r2", "def sub(a, b):\n    ", "\n", "return a - b", "frontier", "gpt-x", "return b - a", 300.0
        ),
        EvalRow("r3", "def mul(a, b):\n    ", "\n", "return a * b", "frontier", "gpt-x", "return a", 200.0),
        EvalRow("r4", "function hi() {\n  ", "\n}\n", "console.log('hi');", "local", "tiny-1", "x", 5.0),
    ]


def oracle(rows: list[EvalRow]) -> ModelUnderTest:
    golds = {(r.prefix, r.suffix): r.gold for r in rows}

    def complete(prefix: str, suffix: str, language: str = "") -> tuple[str, float]:
        return golds[(prefix, suffix)], 1.0

    return ModelUnderTest("oracle", "distilled", complete, size_bytes=10)


def silent(name: str = "silent") -> ModelUnderTest:
    return ModelUnderTest(name, "base", lambda prefix, suffix, language="": ("", 2.0), size_bytes=20)


def test_evaluate_scores_models_and_the_frontier() -> None:
    rows = rows_with_frontier()
    report = evaluate(rows, [silent(), oracle(rows)])
    front = report["models"]["frontier"]
    assert front["rows"] == 3  # r4 was the local model's own suggestion
    assert front["exact_match"] == pytest.approx(1 / 3)
    assert front["accept_proxy"] == pytest.approx(2 / 3)  # "return a" is a prefix of r3's gold
    assert front["latency_p50_ms"] == 200.0 and front["latency_p95_ms"] == pytest.approx(290.0)
    assert front["recorded_models"] == {"gpt-x": 3}
    best = report["models"]["oracle"]
    assert (best["exact_match"], best["accept_proxy"], best["chrf"], best["empty_rate"]) == (1, 1, 100, 0)
    assert best["rows"] == 4 and best["size_bytes"] == 10
    assert report["models"]["silent"]["empty_rate"] == 1 and report["models"]["silent"]["chrf"] == 0
    switch = report["switch"]
    assert switch["ratio"] == pytest.approx(1.5)
    assert "kept 150% as often as the frontier" in switch["verdict"]


def typed_line(
    line: str, stops: list[int], before: str = "x = 1\n", after: str = "\nprint(total)\n"
) -> list[EvalRow]:
    """The rows a replay records while `line` is typed: one per stop, the gold its rest."""
    return [EvalRow(f"{before}:{at}", before + line[:at], after, line[at:]) for at in stops]


def answering(name: str, answers: dict[str, str]) -> ModelUnderTest:
    """A model that answers by the text before the cursor, from `answers` (else nothing)."""

    def complete(prefix: str, suffix: str, language: str = "") -> tuple[str, float]:
        return answers.get(prefix, ""), 1.0

    return ModelUnderTest(name, "base", complete)


def test_typing_saved_walks_each_line_as_the_developer_types_it() -> None:
    line = "total = add(a, b)"
    rows = typed_line(line, [0, 8, 12])  # line start, after "= ", after "("
    before = "x = 1\n"
    step = answering("step", {before: "total", before + "total = ": "add(", before + "total = add(": "a, b)"})
    # Its first answer runs past the second stop: the developer took it, so that stop is
    # never asked, and its wrong answer there costs nothing.
    leap = answering(
        "leap", {before: "total = add(", before + "total = ": "sub(", before + "total = add(": "a, b)"}
    )
    wrong = answering("wrong", {before: "totals", before + "total = ": "add(a, b)"})
    report = evaluate(rows, [step, leap, wrong])["models"]
    assert report["step"]["typing_saved"] == pytest.approx(14 / 17)  # 5 + 4 + 5 of the 17 typed
    assert report["step"]["chars_saved"] == pytest.approx(14 / (17 + 9 + 5))  # each tail counted per stop
    assert report["leap"]["typing_saved"] == pytest.approx(1.0)
    assert report["leap"]["chars_saved"] == pytest.approx((12 + 5) / 31)
    assert report["wrong"]["typing_saved"] == pytest.approx(9 / 17)  # typed over, then the rest taken
    assert report["step"]["typed_chars"] == 17 and report["step"]["typed_lines"] == 1


def test_typing_saved_tells_lines_apart_and_counts_a_lone_row_as_one_request() -> None:
    first = typed_line("total = add(a, b)", [0, 8])
    second = typed_line("return total", [0], before="def f():\n    ", after="\n")
    model = answering("m", {"x = 1\n": "total = add(a, b)", "def f():\n    ": "return"})
    m = evaluate([*first, *second], [model])["models"]["m"]
    assert m["typed_lines"] == 2 and m["typed_chars"] == 17 + 12
    assert m["typing_saved"] == pytest.approx((17 + 6) / (17 + 12))
    assert evaluate(second, [model])["models"]["m"]["typing_saved"] == pytest.approx(
        evaluate(second, [model])["models"]["m"]["chars_saved"]
    )


def test_evaluate_refuses_what_it_cannot_do() -> None:
    rows = [r for r in rows_with_frontier() if r.source != "frontier"]
    with pytest.raises(ConfigError, match="nothing to evaluate"):
        evaluate(rows, [])
    with pytest.raises(ConfigError, match="both called 'silent'"):
        evaluate(rows, [silent(), silent()])
    assert evaluate(rows, [silent()])["switch"]["ratio"] is None
    with pytest.raises(ConfigError, match="needs sft rows with code"):
        eval_rows([{"id": "x", "prompt": "p", "completion": "c"}])


def test_report_with_real_llama_models(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    base, lora = tiny
    rows = rows_with_frontier()
    models = [
        gguf_model("base", "base", base, max_tokens=8),
        gguf_model("distilled", "distilled", base, adapter=lora, max_tokens=8),
    ]
    report, files = run_eval(rows, models, tmp_path / "eval")
    assert set(report["models"]) == {"base", "distilled", "frontier"}
    for name in ("base", "distilled"):
        m = report["models"][name]
        for key in ("exact_match", "accept_proxy", "chrf", "edit_similarity", "empty_rate"):
            assert 0.0 <= m[key] <= (100.0 if key == "chrf" else 1.0)
        assert m["latency_measured"] == 4 and m["latency_p95_ms"] >= m["latency_p50_ms"] > 0
    assert report["models"]["base"]["size_bytes"] == base.stat().st_size
    assert report["models"]["distilled"]["size_bytes"] == base.stat().st_size + lora.stat().st_size
    assert json.loads(files["json"].read_text()) == json.loads(json.dumps(report))
    md = files["markdown"].read_text()
    assert "| distilled | distilled |" in md and "Would the user have switched?" in md
    assert "![metrics](metrics.png)" in md
    assert files["metrics"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert files["latency"].stat().st_size > 1000
    predictions = [json.loads(line) for line in files["predictions"].read_text().splitlines()]
    assert len(predictions) == 4 * 2 + 3
    # The adapter changes the model: its answers differ from the base's somewhere.
    by_model: dict[str, list[str]] = {}
    for p in predictions:
        by_model.setdefault(p["model"], []).append(p["text"])
    assert by_model["base"] != by_model["distilled"]


def test_cli_eval_splits_the_store_and_reports(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    base, lora = tiny
    home = tmp_path / "home"
    fill_store(home)
    out = tmp_path / "report"
    result = CliRunner().invoke(
        main,
        ["eval", "--home", str(home), "--base", str(base), "--adapter", str(lora), "--out", str(out),
         "--max-tokens", "4"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads((out / "eval.json").read_text())
    test_rows = load_rows(out / "data")
    assert report["rows"] == len(test_rows) >= 1
    assert set(report["models"]) >= {"base", "distilled"}
    assert (out / "report.md").exists()
    bad = CliRunner().invoke(main, ["eval", "--home", str(home), "--base", str(tmp_path / "nope.gguf")])
    assert bad.exit_code != 0 and "no GGUF at" in bad.output


def test_eval_reads_a_split_export(tmp_path: Path) -> None:
    db, _ = open_database(fill_store(tmp_path / "home"))
    export(db, ExportOptions(format="parquet", split=True, test_fraction=0.5), tmp_path / "pq")
    rows = eval_rows(load_rows(tmp_path / "pq"))
    assert [r.gold for r in rows] == ["return a - b", "console.log('hi');", "return a ** 2"]
    assert rows[2].suggestion == "return a * a" and rows[2].source == "frontier"
    report: dict[str, Any] = evaluate(rows, [])
    assert report["models"]["frontier"]["rows"] == 2
    assert SUGGESTIONS  # the fixture the rows came from


def test_cli_eval_takes_registered_names(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    registry = pytest.importorskip("goldiff.sources.registry")  # lands with the completion sources
    base, lora = tiny
    home = tmp_path / "home"
    fill_store(home)
    reg = registry.Registry(home)
    reg.register("tiny", base)
    reg.register("tiny-tuned", lora, kind="adapter", base="tiny")
    out = tmp_path / "report"
    result = CliRunner().invoke(
        main,
        ["eval", "--home", str(home), "--base", "tiny", "--distilled", "tiny-tuned", "--out", str(out),
         "--max-tokens", "2"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    models = json.loads((out / "eval.json").read_text())["models"]
    assert models["distilled"]["adapter"] == str(lora.resolve())
    assert models["distilled"]["size_bytes"] == base.stat().st_size + lora.stat().st_size


def test_cli_eval_reports_the_registered_gates_trade_off(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    """The evaluated model's registered gate: its curve is in the report, as a table and a plot."""
    from goldiff.gate import FEATURES, Gate
    from goldiff.sources.registry import Registry

    base, _lora = tiny
    home = tmp_path / "home"
    fill_store(home)
    registry = Registry(home)
    registry.register("tiny", base)
    curve = [
        {"threshold": t, "shown": 1 - t, "shown_accept_rate": 0.4, "chars_saved": 0.05} for t in (0.0, 0.5)
    ]
    n = len(FEATURES)
    gate = Gate(weights=[0.0] * n, bias=0.0, mean=[0.0] * n, std=[1.0] * n, info={"curve": curve})
    registry.set_gate("tiny", gate.save(tmp_path / "gate.json"))
    out = tmp_path / "report"
    result = CliRunner().invoke(
        main, ["eval", "--home", str(home), "--base", "tiny", "--out", str(out), "--max-tokens", "2"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads((out / "eval.json").read_text())["gate_curve"] == curve
    assert "The show/hide gate's trade-off" in (out / "report.md").read_text()
    assert (out / "gate-curve.png").is_file()
