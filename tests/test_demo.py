"""`goldiff demo` end to end on a tiny configuration: replay → export → distill → evaluate.

Real components throughout: git, the server over LSP with a llama.cpp model suggesting,
the SQLite store, the exporter, torch training, GGUF export with parity, llama.cpp again
for the evaluation. The history is generated here from a standard-library module cut into
commits, so the test does not depend on this checkout's own history.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner
from goldiff.cli import main
from goldiff.demo import (
    DemoConfig,
    DemoResult,
    _whole_lines,
    choose_history,
    headline,
    run_demo,
    summary_lines,
)
from goldiff.distill.pipeline import torch_weights_from_gguf
from goldiff.evaluate import EvalRow

from tests.test_replay import git

pytestmark = pytest.mark.slow


def history_repo(root: Path, commits: int = 4) -> list[str]:
    """A package growing commit by commit: each adds the next part of textwrap.py."""
    source = Path(textwrap.__file__).read_text(encoding="utf-8").splitlines(keepends=True)
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    shas = []
    step = 45
    for i in range(commits):
        (root / "wrap.py").write_text("".join(source[: step * (i + 1)]), encoding="utf-8")
        (root / "NOTES.md").write_text(f"step {i}\n", encoding="utf-8")  # not Python: not replayed
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", f"wrap, part {i + 1}")
        shas.append(git(root, "rev-parse", "HEAD").strip())
    return shas


@pytest.fixture(scope="module")
def tiny_demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], DemoResult, list[str]]:
    """One tiny demo run (about a minute), shared by the tests that read its outputs."""
    tmp_path = tmp_path_factory.mktemp("demo")
    repo = tmp_path / "repo"
    shas = history_repo(repo)
    said: list[str] = []
    config = DemoConfig.for_tests(repo, paste_over=400)
    result = run_demo(config, home=tmp_path / "home", out=tmp_path / "report", say=said.append)
    return tmp_path, shas, result, said


def test_demo_runs_end_to_end_on_a_tiny_configuration(
    tiny_demo: tuple[Path, list[str], DemoResult, list[str]],
) -> None:
    tmp_path, shas, result, said = tiny_demo
    assert result.commits == shas[:3] and result.held_out == shas[3:]
    assert result.replay["commits"] == 4 and result.replay["suggestions"] > 0
    counts = result.export["counts"]
    assert counts["train"] > 0 and counts["test"] > 0
    # The held-out rows come from the last commit only: their contexts hold its text.
    test_rows = [json.loads(line) for line in Path(result.export["paths"]["test"]).read_text().splitlines()]
    assert len(test_rows) == counts["test"] == result.headline["held_out_rows"]
    distilled = Path(result.distill["gguf"])
    assert distilled.is_file() and result.distill["steps"] == 8
    for name in ("base", "distilled"):
        metrics = result.headline[name]
        assert 0.0 <= metrics["accept_proxy"] <= 1.0 and 0.0 <= metrics["exact_match"] <= 1.0
        assert 0.0 <= metrics["typing_saved"] <= 1.0
    report = tmp_path / "report"
    assert (report / "report.md").is_file() and (report / "eval.json").is_file()
    assert json.loads((report / "demo.json").read_text())["headline"] == result.headline
    # It says what it is doing at each stage.
    stages = ("Replaying", "Exporting the gold", "Distilling", "Learning a show/hide gate", "Evaluating")
    for stage in stages:
        assert any(line.startswith(stage) for line in said), stage
    # The gate is learned on the distilled model's own answers, or the demo says why not
    # (a tiny model's answers are rarely kept); behind it, the same answers are scored.
    models = result.evaluation["models"]
    kept = result.distill["choice"]["kept"]
    assert kept in ("base", "distilled")
    if f"{kept}+gate" in models:
        gated, plain = models[f"{kept}+gate"], models[kept]
        assert gated["accept_proxy"] <= plain["accept_proxy"] and gated["empty_rate"] >= plain["empty_rate"]
        assert f"{kept}+gate" in result.headline
        # The report shows the gate's trade-off over thresholds, as a table and a plot.
        assert "The show/hide gate's trade-off" in (report / "report.md").read_text()
        assert (report / "gate-curve.png").is_file()
    else:
        assert any(line.startswith("  no show/hide gate: ") for line in said)
    assert "gate" in result.stage_seconds
    assert summary_lines(result)[0].startswith(f"On {counts['test']} held-out contexts")


def test_the_held_out_commits_end_at_the_newest_python_change(tmp_path: Path) -> None:
    """A history ending in documentation commits still has held-out code to evaluate on."""
    repo = tmp_path / "repo"
    shas = history_repo(repo)
    for i in range(2):
        (repo / "NOTES.md").write_text(f"release notes {i}\n", encoding="utf-8")
        git(repo, "commit", "-q", "-am", f"notes {i}")
    root, commits = choose_history(DemoConfig.for_tests(repo))
    assert root == repo.resolve() and commits == shas


def test_demo_explains_a_history_that_is_too_short(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    history_repo(repo, commits=1)
    out = CliRunner().invoke(main, ["demo", "--tiny", "--repo", str(repo), "--out", str(tmp_path / "r")])
    assert out.exit_code == 1
    assert "needs at least 2" in out.output and "--repo" in out.output


def test_the_base_gguf_reads_back_into_torch_for_fine_tuning(
    tiny_demo: tuple[Path, list[str], DemoResult, list[str]],
) -> None:
    """A shipped model may be a GGUF alone: the demo fine-tunes its dequantized weights."""
    from goldiff.distill.parity import check_parity
    from goldiff.distill.tokenizer import load_tokenizer
    from goldiff.sources.llamacpp import load_llama
    from transformers import AutoModelForCausalLM

    tmp_path = tiny_demo[0]
    (gguf,) = (tmp_path / "home" / "models").glob("goldiff-tiny-*.gguf")
    base = torch_weights_from_gguf(gguf, tmp_path / "base-hf")
    model = AutoModelForCausalLM.from_pretrained(base.hf_dir).eval()
    text = "def wrap(self, text):\n    return self._split(text)  # é\n"
    llm = load_llama(str(gguf), vocab_only=True, verbose=False)
    ids = llm.tokenize(text.encode(), add_bos=False)
    # Same tokenizer: the rebuilt tokenizer.json splits text exactly as llama.cpp does.
    assert load_tokenizer(base.tokenizer).encode(text).ids == ids
    # Same weights: torch agrees with llama.cpp on the next token at every position.
    report = check_parity(model, gguf, [ids], tolerance=gguf.stem.rsplit("-", 1)[-1])
    assert report.argmax_agreement >= 0.95


def test_a_fine_tune_that_kept_its_base_is_reported_as_the_base_not_scored_twice() -> None:
    """Scoring the same file twice would show the engine's timing noise as a model difference."""
    base = {"accept_proxy": 0.2, "exact_match": 0.1, "chrf": 30.0, "empty_rate": 0.3}
    base |= {"shown_accept_rate": 0.28, "chars_saved": 0.04, "latency_p50_ms": 40.0}
    report = {"rows": 80, "models": {"base": base}, "distilled_is_base": True}
    h = headline(report)
    assert h["distilled"] == {**h["base"], "same_as": "base"}
    result = DemoResult("r", ["a"], ["b"], {}, {}, {}, report, h, "out")
    lines = summary_lines(result)
    assert f"  {'distilled':14} = base (no training step beat it on the validation gold)" in lines
    assert not any("distilled" in line and "accept proxy" in line for line in lines)


def test_held_out_contexts_are_chosen_as_whole_lines_spread_over_the_commits() -> None:
    """Typing saved walks each line through all its stops: a line is taken whole or not at all."""
    rows = []
    for n in range(10):  # ten lines typed one after another, with 1 to 3 stops each
        before = "".join(f"x{i} = {i}\n" for i in range(n))
        line = f"y{n} = f(a, b)"
        rows += [EvalRow(f"{n}:{at}", before + line[:at], "\n", line[at:]) for at in (0, 5, 7)[: 1 + n % 3]]
    chosen = _whole_lines(rows, 12)  # of 19
    lines = {row.id.split(":")[0] for row in chosen}
    assert 6 <= len(chosen) <= 12
    assert all(sum(r.id.startswith(f"{n}:") for r in chosen) == 1 + int(n) % 3 for n in lines)
    assert min(map(int, lines)) <= 1 and max(map(int, lines)) >= 7  # spread, not the first few
    assert _whole_lines(rows, 100) == rows and _whole_lines([], 8) == []


def test_the_demo_report_shows_the_gate_trade_off(tmp_path: Path) -> None:
    """The held-out report a user opens carries the gate's curve, its table and its plot."""
    from goldiff.demo import evaluate_models
    from goldiff.distill.pipeline import BaseModel
    from goldiff.gate import FEATURES, Gate

    from tests.tiny_models import write_tiny_gguf

    gguf = write_tiny_gguf(tmp_path / "tiny.gguf")
    rows = tmp_path / "test.jsonl"
    lines = [{"id": str(n), "prefix": f"x{n} = ", "suffix": "\n", "completion": f"{n}"} for n in range(3)]
    rows.write_text("".join(json.dumps(r) + "\n" for r in lines))
    curve = [
        {"threshold": t, "shown": 1 - t, "shown_accept_rate": 0.3 + t / 2, "chars_saved": 0.1 - t / 10}
        for t in (0.0, 0.5)
    ]
    n = len(FEATURES)
    info = {"curve": curve, "rows": 40, "kept": 12, "base_rate": 0.3}
    gate = Gate(weights=[0.0] * n, bias=0.0, mean=[0.0] * n, std=[1.0] * n, threshold=0.5, info=info)
    base = BaseModel(gguf=gguf, hf_dir=tmp_path, tokenizer=tmp_path / "tokenizer.json")
    out = tmp_path / "report"
    report = evaluate_models(rows, base, {"kept_base": True}, "base", gate, out, lambda _: None, 80)
    assert report["gate_curve"] == curve and "base+gate" in report["models"]
    assert json.loads((out / "eval.json").read_text())["gate_curve"] == curve
    assert "The show/hide gate's trade-off" in (out / "report.md").read_text()
    assert (out / "gate-curve.png").is_file()
