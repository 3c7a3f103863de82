"""The show/hide gate learns from recorded outcomes and changes what the local source shows."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from goldiff.gate import FEATURES, Answer, Gate, features, fit, train_gate, training_rows
from goldiff.sources.base import CompletionRequest
from goldiff.sources.registry import Registry
from goldiff.store import TraceStore, open_database

from tests.test_export import T0, suggestion_row
from tests.tiny_models import write_tiny_gguf

PREFIXES = (
    [f"{name} = " for name in ("a", "bb", "total", "x1", "count", "value", "n", "items")]
    + [f"def f{i}(x):\n    return " for i in range(8)]
    + [f"for i in range({i}):\n    " for i in range(8)]
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_gguf(tmp_path_factory.mktemp("models") / "goldiff-tiny.gguf")


def record(home: Path, answers: list[tuple[str, str, list[float], bool]]) -> Path:
    """A store holding the local source's suggestions with their log-probabilities and fate."""
    home.mkdir(parents=True, exist_ok=True)
    store = TraceStore(home / "traces.db")
    store.record_session({"id": "sess", "started_at": T0 - 10, "workspace": "file:///w", "mode": "local"})
    store.record_document(
        {
            "id": "doc-m.py",
            "session_id": "sess",
            "uri": "file:///w/m.py",
            "workspace": "file:///w",
            "path": "m.py",
            "language": "python",
            "opened_at": T0 - 5,
        }
    )
    for i, (prefix, text, logprobs, kept) in enumerate(answers):
        spec = (
            f"s{i}",
            i,
            "m.py",
            "python",
            "local",
            "tiny",
            "accepted" if kept else "rejected",
            prefix,
            "\n",
            text,
            text if kept else "other()",
            None,
        )
        row = suggestion_row(spec)
        row["context"] = json.dumps({"language": "python", "logprobs": logprobs})
        store.record_suggestion(row)
    store.close()
    return home / "traces.db"


def test_fit_learns_that_confident_suggestions_are_kept() -> None:
    rows_x = []
    for i in range(40):
        sure = i % 2 == 0
        lps = [-0.1 - 0.01 * i] * 3 if sure else [-2.5 - 0.01 * i] * 3
        rows_x.append(
            (features(prefix="x = ", suffix="\n", text="foo()", logprobs=lps, language="python"), sure)
        )
    from goldiff.gate import GateRow

    gate = fit([GateRow(x, kept, 5 if kept else 0, 5) for x, kept in rows_x])
    assert gate.shows(features(prefix="y = ", suffix="\n", text="bar()", logprobs=[-0.05] * 3))
    assert not gate.shows(features(prefix="y = ", suffix="\n", text="bar()", logprobs=[-3.0] * 3))
    with pytest.raises(ValueError, match="kept and rejected"):
        fit([GateRow(x, True, 1, 1) for x, _ in rows_x])


def test_the_threshold_is_chosen_on_held_out_scores_so_noise_hides_nothing() -> None:
    """Features that say nothing about what is kept (60% is): showing everything is best.
    A threshold chosen on the scores the regression was fitted on hides what it learned
    from noise; the learned gate's, chosen on k-fold scores, hides almost nothing."""
    from goldiff.gate import GateRow, learn

    shown_fitted = shown_learned = total = 0
    for seed in range(6):
        rng = random.Random(seed)

        def noise(n: int, rng: random.Random = rng) -> list[GateRow]:
            return [GateRow([rng.gauss(0, 1) for _ in FEATURES], rng.random() < 0.6, 5, 5) for _ in range(n)]

        rows, new = noise(80), noise(400)
        fitted, learned = fit(rows), learn(rows)
        assert learned.info["threshold_on"] == "5-fold held-out scores"
        shown_fitted += sum(fitted.shows(r.x) for r in new)
        shown_learned += sum(learned.shows(r.x) for r in new)
        total += len(new)
    assert shown_learned >= 0.95 * total
    assert shown_fitted < 0.9 * total  # what the in-sample threshold would have hidden


def test_gate_trains_on_recorded_outcomes_and_changes_what_is_shown(tiny: Path, tmp_path: Path) -> None:
    from goldiff.sources.local import LocalSource

    plain = LocalSource(tiny, n_threads=1)
    answers: list[tuple[str, str, list[float]]] = []
    for prefix in PREFIXES:
        c = plain.complete(CompletionRequest(prefix=prefix, suffix="\n", max_tokens=6))
        if c.text:
            answers.append((prefix, c.text, c.token_logprobs))
    plain.close()
    assert len(answers) >= 8 and all(len(a[2]) >= 1 for a in answers)
    # The developer kept the suggestions the model was surer of: the gate must learn that.
    median = sorted(sum(a[2]) / len(a[2]) for a in answers)[len(answers) // 2]
    labelled = [(p, t, lps, sum(lps) / len(lps) >= median) for p, t, lps in answers]
    home = tmp_path / "home"
    db, _ = open_database(record(home, labelled))
    assert len(training_rows(db)) == len(labelled)
    gate = train_gate(db, home / "models" / "gates" / "tiny.gate-v1.json")
    db.conn.close()
    assert gate.info["rows"] == len(labelled) and gate.info["curve"]
    assert Gate.load(home / "models" / "gates" / "tiny.gate-v1.json").features == list(FEATURES)
    registry = Registry(home)
    registry.register("tiny", tiny)
    assert registry.set_gate("tiny", home / "models" / "gates" / "tiny.gate-v1.json", gate.info) == 1
    resolved = registry.resolve("tiny")
    assert resolved.gate == (home / "models" / "gates" / "tiny.gate-v1.json").resolve()

    gated = LocalSource(tiny, n_threads=1, gate=resolved.gate)
    shown: dict[str, Any] = {}
    for prefix, _text, _lps, kept in labelled:
        c = gated.complete(CompletionRequest(prefix=prefix, suffix="\n", max_tokens=6))
        assert c.gate_score is not None
        shown[prefix] = (bool(c.text), kept, c.stop_reason)
    gated.close()
    hidden = [p for p, (s, _k, _r) in shown.items() if not s]
    assert hidden, "the gate hid nothing"
    assert all(shown[p][2] == "gated" for p in hidden)
    kept_shown = sum(s and k for s, k, _ in shown.values())
    rejected_shown = sum(s and not k for s, k, _ in shown.values())
    assert kept_shown > rejected_shown  # it hides the ones the developer would have rejected


def test_eval_report_has_user_metrics_per_trigger_and_the_gate_curve(tmp_path: Path) -> None:
    from goldiff.evaluate import EvalRow, ModelUnderTest, evaluate, write_report
    from goldiff.gate import GateRow, curve

    rows = [
        EvalRow("1", "x = ", "\n", "foo()"),
        EvalRow("2", "def f():\n    ", "\n", "return 1"),
        EvalRow("3", "y = a.", "\n", "b"),
    ]
    answers = {"x = ": "foo", "def f():\n    ": "pass", "y = a.": ""}
    model = ModelUnderTest("m", "base", lambda prefix, suffix, language="": (answers[prefix], 1.0))
    report = evaluate(rows, [model])
    m = report["models"]["m"]
    assert m["shown_accept_rate"] == 0.5  # two shown, one a prefix of the gold
    assert m["chars_saved"] == 3 / (5 + 8 + 1)
    assert m["by_trigger"]["after_space"]["accept_proxy"] == 1.0
    assert m["by_trigger"]["line_start"]["accept_proxy"] == 0.0
    assert m["by_trigger"]["after_dot"]["empty_rate"] == 1.0
    gate_rows = [GateRow([], True, len("foo"), len("foo()")), GateRow([], False, 0, len("return 1"))]
    report["gate_curve"] = curve(gate_rows, [0.9, 0.2])
    assert report["gate_curve"][10]["threshold"] == 0.5
    assert report["gate_curve"][10]["shown_accept_rate"] == 1.0
    files = write_report(report, tmp_path)
    text = files["markdown"].read_text()
    assert "chars saved" in text and "line_start" in text and "gate's trade-off" in text
    assert (tmp_path / "gate-curve.png").is_file()


def test_gate_command_trains_versions_and_the_server_would_load_it(tiny: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner
    from goldiff.cli import main

    home = tmp_path / "home"
    answers = [
        (f"v{i} = ", "foo()", [-0.05, -0.1] if i % 2 else [-2.5, -3.0], bool(i % 2)) for i in range(20)
    ]
    record(home, answers)
    Registry(home).register("tiny", tiny)
    runner = CliRunner()
    for version in (1, 2):
        result = runner.invoke(main, ["models", "gate", "--home", str(home), "--model", "tiny", "--json"])
        assert result.exit_code == 0, result.output
        summary = json.loads(result.output)
        assert summary["version"] == version and summary["rows"] == 20 and summary["kept"] == 10
    gates = Registry(home).gates("tiny")
    assert gates["current"] == 2 and len(gates["versions"]) == 2
    assert Registry(home).resolve("tiny").gate == Path(summary["path"]).resolve()
    empty = tmp_path / "empty"
    record(empty, answers[:1])
    Registry(empty).register("tiny", tiny)
    result = runner.invoke(main, ["models", "gate", "--home", str(empty), "--model", "tiny"])
    assert result.exit_code != 0 and "kept and rejected" in result.output


def test_a_gated_model_is_scored_on_the_same_answers_and_hides_the_unsure_ones() -> None:
    """The demo's "distilled+gate": one generation per row, shown only above the threshold."""
    from goldiff.evaluate import EngineAnswer, EvalRow, ModelUnderTest, evaluate, gate_answers, gated_model

    class Answers:
        """Confident answers are right, unsure ones wrong; counts the generations asked for."""

        def __init__(self) -> None:
            self.generated = 0
            self.last: EngineAnswer | None = None

        def answer(self, prefix: str, suffix: str, language: str = "") -> EngineAnswer:
            if self.last is None or self.last.key != (prefix, suffix, language):
                self.generated += 1
                sure = prefix.startswith("sure")
                text = "right()" if sure else "wrong()"
                lps = [-0.05, -0.1] if sure else [-2.5, -3.0]
                key = (prefix, suffix, language)
                self.last = EngineAnswer(
                    key, prefix, suffix, text, lps, 5.0, text, [len(text) - 1, len(text)]
                )
            return self.last

    rows = [
        EvalRow(f"r{i}", f"{'sure' if i % 2 else 'unsure'}{i} = ", "\n", "right()" if i % 2 else "x + 1")
        for i in range(24)
    ]
    engine = Answers()
    gate = fit([r for a in gate_answers(engine, rows[:12]) if (r := a.row(0.0)) is not None])
    plain = ModelUnderTest("m", "distilled", lambda p, s, lang="": (engine.answer(p, s, lang).text, 5.0))
    report = evaluate(rows[12:], [plain, gated_model("m+gate", engine, gate)], frontier=False)
    assert engine.generated == 24  # 12 to learn from, then one per held-out row for both
    assert report["models"]["m"]["shown_accept_rate"] == pytest.approx(0.5)
    gated = report["models"]["m+gate"]
    assert gated["shown_accept_rate"] == pytest.approx(1.0)
    assert gated["accept_proxy"] == report["models"]["m"]["accept_proxy"]
    assert gated["empty_rate"] == pytest.approx(0.5)


def test_an_evaluated_answer_is_scored_with_its_rows_language_as_the_server_scores_it() -> None:
    from goldiff.evaluate import EngineAnswer, eval_rows

    row = eval_rows([{"prefix": "x = ", "suffix": "\n", "completion": "1", "language": "python"}])[0]
    assert row.language == "python"
    python = FEATURES.index("python")
    served = features(prefix="x = ", suffix="\n", text="1", logprobs=[-0.1], language="python")
    answer = EngineAnswer(("x = ", "\n", row.language), "x = ", "\n", "1", [-0.1], 3.0)
    assert answer.as_answer().features(answer.text, answer.logprobs) == served and served[python] == 1.0
    unknown = EngineAnswer(("x = ", "\n", ""), "x = ", "\n", "1", [-0.1], 3.0)
    assert unknown.as_answer().features(unknown.text, unknown.logprobs)[python] == 0.0


def _cut_answers(n: int, helped: int) -> list[Answer]:
    """`n` answers `foo(bar)` made without a stop, the developer writing `foo(baz)` in
    `helped` of them (so `foo(`, cut before the unsure `bar`, is kept) and `qux` in the rest."""
    from goldiff.gate import Answer

    lps, ends = [-0.1, -0.2, -1.5, -0.1], [3, 4, 7, 8]  # foo ( bar )
    return [
        Answer("x = ", "\n", "python", "foo(bar)", lps, ends, "foo(baz)" if i < helped else "qux")
        for i in range(n)
    ]


def test_a_gate_learns_a_higher_stop_only_when_it_surely_saves_more_characters(tmp_path: Path) -> None:
    from goldiff.evaluate import EngineAnswer, gated_model
    from goldiff.gate import learn_stop, learn_with_stop

    answers = _cut_answers(40, helped=20)
    assert answers[0].at_stop(0.2) == ("foo(bar)", [-0.1, -0.2, -1.5, -0.1])
    assert answers[0].at_stop(0.4) == ("foo(", [-0.1, -0.2])
    assert answers[0].at_stop(0.95)[0] == ""  # even the first token is too unsure
    stop, info = learn_stop(answers, start=0.2)
    assert stop == 0.4 and info["chars_saved"]["0.2"] == 0.0 and info["gain_lower_bound"] > 0
    # The rows where the cut helps are shown by a gate trained on the cut answers.
    gate = learn_with_stop([*answers, *_cut_answers(10, helped=0)], start=0.2)
    assert gate.stop == 0.4 and gate.info["stop"]["best"] == 0.4
    gate.save(tmp_path / "g.json")
    assert Gate.load(tmp_path / "g.json").stop == 0.4
    # One answer in 40 helped: a gain of a point, but the rows' noise could give it.
    assert learn_stop(_cut_answers(40, helped=1), start=0.2)[0] == 0.2
    # The profile's stop kept is still the gate's: its show/hide was fitted on answers cut there.
    whole = [replace(a, gold="foo(bar)") for a in _cut_answers(10, helped=0)]  # the cut would lose
    assert learn_with_stop([*whole, *_cut_answers(10, helped=0)], start=0.2).stop == 0.2

    class Engine:
        def answer(self, prefix: str, suffix: str, language: str = "") -> EngineAnswer:
            a = answers[0]
            return EngineAnswer(
                (prefix, suffix, language), prefix, suffix, "foo(bar)", a.logprobs, 1.0, a.raw, a.ends
            )

    show_all = Gate([0.0] * len(FEATURES), 0.0, [0.0] * len(FEATURES), [1.0] * len(FEATURES), 0.0, stop=0.4)
    assert gated_model("m+gate", Engine(), show_all).complete("x = ", "\n", "python") == ("foo(", 1.0)


def test_a_gate_saved_before_learned_stops_loads_without_one(tmp_path: Path) -> None:
    n = len(FEATURES)
    data = {"version": 1, "weights": [0.0] * n, "bias": 0.0, "mean": [0.0] * n, "std": [1.0] * n}
    (tmp_path / "old.json").write_text(json.dumps(data | {"threshold": 0.3, "features": list(FEATURES)}))
    assert Gate.load(tmp_path / "old.json").stop is None


def test_the_engine_serves_the_gates_stop_as_the_same_answers_cut_at_their_token_ends(
    tiny: Path, tmp_path: Path
) -> None:
    import math

    from goldiff.gate import Answer
    from goldiff.sources.local import LocalSource

    free = LocalSource(tiny, n_threads=1)
    answers = []
    for prefix in PREFIXES[:12]:
        c = free.complete(CompletionRequest(prefix=prefix, suffix="\n", max_tokens=8))
        assert len(c.token_ends) == len(c.token_logprobs) and c.token_ends == sorted(c.token_ends)
        answer = Answer(prefix, "\n", "", c.raw_text, c.token_logprobs, c.token_ends, "")
        assert answer.at_stop(0.0)[0] == c.text  # no stop: the answer as served
        answers.append(answer)
    free.close()
    probs = sorted(math.exp(v) for a in answers for v in a.logprobs)
    p = probs[len(probs) // 2]  # about half the tokens fall below it
    n = len(FEATURES)
    path = Gate([0.0] * n, 0.0, [0.0] * n, [1.0] * n, threshold=0.0, stop=p).save(tmp_path / "g.json")
    gated = LocalSource(tiny, n_threads=1, gate=path)
    assert gated.min_token_prob == p and gated.describe()["min_token_prob"] == p
    changed = 0
    for a in answers:
        c = gated.complete(CompletionRequest(prefix=a.prefix, suffix="\n", max_tokens=8))
        assert (c.text, c.token_logprobs) == a.at_stop(p)
        changed += c.text != a.at_stop(0.0)[0]
    gated.close()
    assert changed  # the stop cut some of them


def test_gate_command_learns_the_stop_from_suggestions_recorded_with_their_token_ends(
    tiny: Path, tmp_path: Path
) -> None:
    from goldiff.gate import MIN_STOP_ANSWERS

    home = tmp_path / "home"
    answers = _cut_answers(MIN_STOP_ANSWERS, helped=MIN_STOP_ANSWERS // 2)
    db_path = record(home, [(a.prefix, a.raw, a.logprobs, False) for a in answers])
    db, _ = open_database(db_path)
    for i, a in enumerate(answers):  # what the completion service records with each suggestion
        context = {"language": "python", "logprobs": a.logprobs, "tokenEnds": a.ends, "rawText": a.raw}
        db.conn.execute(
            "UPDATE suggestions SET context = ?, gold = ? WHERE id = ?",
            (json.dumps(context), a.gold, f"s{i}"),
        )
    db.conn.commit()
    gate = train_gate(db, home / "g.json", start=0.2)
    assert gate.stop == 0.4 and gate.info["stop"]["answers"] == MIN_STOP_ANSWERS
    # Without the model's stop, only show/hide is learned: every suggestion was typed over.
    with pytest.raises(ValueError, match="0 kept"):
        train_gate(db, home / "g0.json")
    db.conn.close()
