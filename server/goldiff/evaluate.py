"""Held-out evaluation: how the base, distilled and frontier models compare on gold.

`goldiff eval` reads the test split of an export (sft rows: `prefix`, `suffix`, the gold
`completion`, and the frontier's recorded `suggestion` where there was one), asks every
local model for a completion of each context, and scores each answer against the gold:
exact match (ignoring trailing whitespace), an accept proxy (the answer is a non-empty
prefix of the gold: what a developer would have kept by pressing Tab), chrF and edit
similarity (partial credit), the share of empty answers, latency p50/p95 measured on this
machine (the frontier's is its recorded, network-inclusive latency), and model size. The
summary that matters to a user, "would I have switched", is the distilled model's accept
proxy as a fraction of the frontier's, on the rows where the frontier made a suggestion.

Models sit behind one small callable, `complete(prefix, suffix) -> (text, latency_ms)`;
`EngineFim` is that callable over the language server's own local engine (the worker
process, the same request and prompt building), so evaluation measures what users get.
llama_cpp and matplotlib are imported only when used, so the language server never loads them.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from goldiff.errors import ConfigError, DistillError, EngineError, ModelLoadError
from goldiff.gate import Answer, Gate
from goldiff.metrics import TRIGGER_KINDS, ByTrigger, Tally, TypingWalk, percentile
from goldiff.metrics import accepted as accept_proxy
from goldiff.outcomes.spans import levenshtein


class Completer(Protocol):
    """Answers one cursor: the text a user would be shown, and how long it took (ms).

    `language` is the editor's language id of the file, as the server sends it.
    """

    def __call__(self, prefix: str, suffix: str, language: str = "") -> tuple[str, float]: ...


Progress = Callable[[int, int], None]


# ---------------------------------------------------------------------------- metrics


def exact_match(text: str, gold: str) -> bool:
    return text.rstrip() == gold.rstrip()


def chrf(text: str, gold: str) -> float:
    """Sentence chrF (0-100): character 1..6-gram F-beta (beta 2), whitespace ignored, as sacrebleu."""
    hyp = "".join(text.split())
    ref = "".join(gold.split())
    if not hyp and not ref:
        return 100.0
    if not hyp or not ref:
        return 0.0
    precisions, recalls = [], []
    for n in range(1, 7):
        h = Counter(hyp[i : i + n] for i in range(len(hyp) - n + 1))
        r = Counter(ref[i : i + n] for i in range(len(ref) - n + 1))
        if not h or not r:
            continue
        overlap = sum((h & r).values())
        precisions.append(overlap / sum(h.values()))
        recalls.append(overlap / sum(r.values()))
    p, r2 = sum(precisions) / len(precisions), sum(recalls) / len(recalls)
    if p == 0 and r2 == 0:
        return 0.0
    return 100.0 * 5 * p * r2 / (4 * p + r2)


def edit_similarity(text: str, gold: str) -> float:
    """1 - edit distance / the longer length (1.0 for two empty strings)."""
    longest = max(len(text), len(gold))
    if longest == 0:
        return 1.0
    return 1.0 - levenshtein(text, gold) / longest


# ---------------------------------------------------------------------------- data


@dataclass(frozen=True)
class EvalRow:
    """One held-out context with its gold, and the frontier's recorded answer if any."""

    id: str
    prefix: str
    suffix: str
    gold: str
    source: str | None = None
    model: str | None = None
    suggestion: str | None = None
    latency_ms: float | None = None
    language: str = ""  # the editor's language id, as the server sends it with a request


def eval_rows(rows: Iterable[Mapping[str, Any]]) -> list[EvalRow]:
    """EvalRows from sft export rows; says what to do when the rows are another format."""
    out = []
    for n, row in enumerate(rows, 1):
        missing = [k for k in ("prefix", "suffix", "completion") if not isinstance(row.get(k), str)]
        if missing:
            raise ConfigError(
                f"row {n} has no {', '.join(missing)}: evaluation needs sft rows with code; "
                "export them with `goldiff export --format sft --split` (not --no-code)"
            )
        out.append(
            EvalRow(
                id=str(row.get("id", n)),
                prefix=row["prefix"],
                suffix=row["suffix"],
                gold=row["completion"],
                language=str(row.get("language") or ""),
                **{k: row.get(k) for k in ("source", "model", "suggestion", "latency_ms")},
            )
        )
    return out


# ---------------------------------------------------------------------------- models


@dataclass(frozen=True)
class EngineAnswer:
    """One engine answer: the excerpts it was asked with, its text and token log-probs."""

    key: tuple[str, str, str]  # the (prefix, suffix, language) asked
    prefix: str  # the excerpts the source was sent (what the server's gate sees)
    suffix: str
    text: str
    logprobs: list[float]
    latency_ms: float
    raw: str = ""  # the generation before post-processing, and its length after each token
    ends: list[int] = field(default_factory=list)

    def as_answer(self, gold: str = "") -> Answer:
        """This answer as the gate learns from and scores it (`gate.Answer`), in its row's language."""
        return Answer(self.prefix, self.suffix, self.key[2], self.raw, self.logprobs, self.ends, gold)


class EngineFim:
    """`complete(prefix, suffix)` through the local engine the language server serves with.

    The same `WorkerSource` (llama.cpp in its own process, one warm model, file states),
    the same request building (`make_request`: excerpts, token and time budgets) and the
    same prompt building and post-processing (stop rule, suffix trimming) as a completion
    in the editor, so the latency and the answers reported are the ones users get. The
    latency is the wall time of the call, as the server's own. An engine that dies under
    a row answers nothing for it (and restarts), as it would in the editor.

    llama.cpp's repacked kernels are decided as the server decides them (`repack` "auto",
    the setting's default): used unless they faulted for this model on this CPU. Given the
    Goldiff home's record file (`faults`), evaluation reads and adds to the server's own
    records; without it, a fault is learned for this run only.
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        lora_path: str | os.PathLike[str] | None = None,
        max_tokens: int | None = None,
        n_threads: int = 2,
        gate: str | os.PathLike[str] | None = None,
        max_seconds: float | None = None,
        faults: str | os.PathLike[str] | None = None,
    ) -> None:
        from goldiff.sources.worker import WorkerSource

        for p in (model_path, lora_path):
            if p is not None and not Path(p).is_file():
                raise ModelLoadError(f"no GGUF at {p}: give the path to a .gguf file")
        # The engine reads the model's serving profile (prompt mode, healing, confidence
        # stop, context) from beside the GGUF, as the server's does; `gate` is the registered
        # show/hide gate the server would load with it.
        self.source = WorkerSource(
            Path(model_path),
            adapter_path=Path(lora_path) if lora_path else None,
            threads=n_threads,
            gate=Path(gate) if gate else None,
            repack="auto",
            faults=Path(faults) if faults else None,
        )
        self.max_tokens = max_tokens
        self._last: EngineAnswer | None = None
        # None: the editor's time budget. A longer one measures answers, not this machine's
        # load (a busy machine otherwise turns slow answers into empty ones).
        self.max_seconds = max_seconds

    def __call__(self, prefix: str, suffix: str, language: str = "") -> tuple[str, float]:
        answer = self.answer(prefix, suffix, language)
        return answer.text, answer.latency_ms

    def answer(self, prefix: str, suffix: str, language: str = "") -> EngineAnswer:
        """The answer with what the show/hide gate scores it by; the last one is reused."""
        from goldiff.sources.completion import make_request

        if self._last is not None and self._last.key == (prefix, suffix, language):
            return self._last
        request = make_request(prefix, suffix, kind="local", language=language)
        if self.max_tokens is not None:
            request.max_tokens = self.max_tokens
        if self.max_seconds is not None:
            request.max_seconds = self.max_seconds
        start = time.perf_counter()
        try:
            completion = self.source.complete(request)
            text, logprobs = completion.text, list(completion.token_logprobs)
            raw, ends = completion.raw_text, list(completion.token_ends)
        except EngineError:
            text, logprobs, raw, ends = "", [], "", []
        latency = (time.perf_counter() - start) * 1000.0
        key = (prefix, suffix, language)
        self._last = EngineAnswer(key, request.prefix, request.suffix, text, logprobs, latency, raw, ends)
        return self._last

    def close(self) -> None:
        self.source.close()


@dataclass
class ModelUnderTest:
    """A model to evaluate: a name, its role, how to ask it, and its size on disk."""

    name: str
    role: str  # base | distilled | other
    complete: Completer
    size_bytes: int | None = None
    path: str | None = None
    adapter: str | None = None
    close: Callable[[], None] | None = None  # frees the engine; run_eval calls it


def gguf_model(
    name: str,
    role: str,
    path: str | os.PathLike[str],
    *,
    adapter: str | os.PathLike[str] | None = None,
    **kwargs: Any,
) -> ModelUnderTest:
    """A GGUF (optionally with a LoRA adapter) served by llama.cpp, as a model under test."""
    fim = EngineFim(path, lora_path=adapter, **kwargs)
    size = Path(path).stat().st_size + (Path(adapter).stat().st_size if adapter else 0)
    return ModelUnderTest(
        name=name,
        role=role,
        complete=fim,
        close=fim.close,
        size_bytes=size,
        path=str(path),
        adapter=str(adapter) if adapter else None,
    )


class Answerer(Protocol):
    """What the gate's evaluation asks: an answer with the gate's inputs (`EngineFim`)."""

    def answer(self, prefix: str, suffix: str, language: str = "") -> EngineAnswer: ...


def gate_answers(engine: Answerer, rows: Sequence[EvalRow]) -> list[Answer]:
    """`engine`'s answers to `rows`, each with its gold: what a gate learns from (its stop,
    then its show/hide, an answer counting as kept when it is a prefix of the gold).

    The simulated outcome of a suggestion on past gold, for a gate fitted before any
    suggestion of this model was shown (the demo); users' own outcomes replace it.
    """
    return [engine.answer(row.prefix, row.suffix, row.language).as_answer(row.gold) for row in rows]


def gated_model(name: str, engine: Answerer, gate: Gate, role: str = "other") -> ModelUnderTest:
    """`engine`'s answers as the server shows them with `gate`: hidden below its threshold.

    Listed right after the model `engine` serves, it reuses that model's answer to the same
    row (no second generation), so both are scored on identical answers.
    """

    def complete(prefix: str, suffix: str, language: str = "") -> tuple[str, float]:
        answer = engine.answer(prefix, suffix, language)
        asked = answer.as_answer()
        text, logprobs = answer.text, answer.logprobs
        if gate.stop is not None and answer.ends:
            # The gate's stop cuts the same greedy tokens where the server would stop them.
            text, logprobs = asked.at_stop(gate.stop)
        show = bool(text) and gate.shows(asked.features(text, logprobs))
        return (text if show else ""), answer.latency_ms

    return ModelUnderTest(name=name, role=role, complete=complete)


# ---------------------------------------------------------------------------- evaluation


@dataclass
class Scores:
    """Running sums of one model's metrics."""

    exact: float = 0
    chrf: float = 0.0
    similarity: float = 0.0
    latencies: list[float] = field(default_factory=list)
    users: ByTrigger = field(default_factory=ByTrigger)  # requests, accepted, empty, chars saved, by trigger
    typing: TypingWalk = field(default_factory=TypingWalk)

    def add(
        self, text: str, gold: str, latency_ms: float | None, prefix: str = "", suffix: str = ""
    ) -> dict[str, Any]:
        scored = {
            "exact": exact_match(text, gold),
            "accept": accept_proxy(text, gold),
            "chrf": chrf(text, gold),
            "edit_similarity": edit_similarity(text, gold),
            "empty": not text.strip(),
        }
        self.exact += scored["exact"]
        self.chrf += scored["chrf"]
        self.similarity += scored["edit_similarity"]
        if latency_ms is not None:
            self.latencies.append(latency_ms)
        self.users.add(prefix, text, gold)
        self.typing.add(prefix, suffix, text, gold)
        return scored

    def summary(self) -> dict[str, Any]:
        users = self.users.summary()
        n = users["requests"] or 1
        return {
            "rows": users["requests"],
            "exact_match": self.exact / n,
            "accept_proxy": users["accept_proxy"],
            "chrf": self.chrf / n,
            "edit_similarity": self.similarity / n,
            "empty_rate": users["empty_rate"],
            "latency_p50_ms": percentile(self.latencies, 50),
            "latency_p95_ms": percentile(self.latencies, 95),
            "latency_measured": len(self.latencies),
            "shown_accept_rate": users["shown_accept_rate"],
            "chars_saved": users["chars_saved"],
            **self.typing.summary(),
            "by_trigger": users["by_trigger"],
        }


def evaluate(
    rows: Sequence[EvalRow],
    models: Sequence[ModelUnderTest],
    *,
    frontier: bool = True,
    progress: Progress | None = None,
    predictions: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Score every model on every row; the frontier on the rows it answered.

    Returns the report as plain data (see `write_report`); `predictions` receives one
    record per (row, model) with the answer and its scores.
    """
    if not rows:
        raise DistillError(
            "no held-out rows to evaluate: export a split with `goldiff export --format sft --split` "
            "after recording some settled suggestions"
        )
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise ConfigError(f"two models are both called {Counter(names).most_common(1)[0][0]!r}")
    frontier_rows = [r for r in rows if frontier and r.source == "frontier" and r.suggestion is not None]
    if not models and not frontier_rows:
        raise ConfigError(
            "nothing to evaluate: give a model (--base, --distilled, --model) or evaluate rows "
            "where the frontier made suggestions"
        )
    scores = {m.name: Scores() for m in models}
    on_frontier = {m.name: Tally() for m in models}  # the accept proxy on the frontier's rows
    frontier_scores = Scores()
    frontier_ids = {r.id for r in frontier_rows}
    models_seen: Counter[str] = Counter()
    start = time.perf_counter()
    for i, row in enumerate(rows, 1):
        for m in models:
            text, latency = m.complete(row.prefix, row.suffix, row.language)
            scored = scores[m.name].add(text, row.gold, latency, row.prefix, row.suffix)
            if row.id in frontier_ids:
                on_frontier[m.name].add(text, row.gold)
            if predictions:
                predictions({"id": row.id, "model": m.name, "text": text, "latency_ms": latency, **scored})
        if row.id in frontier_ids:
            assert row.suggestion is not None
            scored = frontier_scores.add(row.suggestion, row.gold, row.latency_ms, row.prefix, row.suffix)
            models_seen[row.model or "unknown"] += 1
            if predictions:
                predictions(
                    {"id": row.id, "model": "frontier", "text": row.suggestion, "latency_ms": row.latency_ms}
                    | scored
                )
        if progress:
            progress(i, len(rows))
    wall = time.perf_counter() - start
    report: dict[str, Any] = {
        "rows": len(rows),
        "frontier_rows": len(frontier_rows),
        "wall_seconds": wall,
        "models": {},
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
        },
    }
    for m in models:
        entry = {
            "role": m.role,
            "path": m.path,
            "adapter": m.adapter,
            "size_bytes": m.size_bytes,
            **scores[m.name].summary(),
        }
        if frontier_rows:
            entry["accept_proxy_on_frontier_rows"] = on_frontier[m.name].summary()["accept_proxy"]
        report["models"][m.name] = entry
    if frontier_rows:
        report["models"]["frontier"] = {
            "role": "frontier",
            "recorded_models": dict(models_seen),
            "size_bytes": None,
            "latency_note": "recorded by the server, network included",
            **frontier_scores.summary(),
        }
    report["switch"] = switch_summary(report)
    return report


def switch_summary(report: Mapping[str, Any]) -> dict[str, Any]:
    """Would the user have switched: distilled accept proxy / frontier accept proxy."""
    models = report["models"]
    frontier = models.get("frontier")
    distilled = next((n for n, m in models.items() if m.get("role") == "distilled"), None)
    if frontier is None or distilled is None:
        missing = "frontier suggestions in the held-out rows" if frontier is None else "a distilled model"
        return {"ratio": None, "verdict": f"no comparison: the evaluation has no {missing}"}
    f_accept = frontier["accept_proxy"]
    d_accept = models[distilled]["accept_proxy_on_frontier_rows"]
    ratio = d_accept / f_accept if f_accept > 0 else None
    if ratio is None:
        verdict = "the frontier's suggestions were never a prefix of the gold: no ratio"
    else:
        verdict = (
            f"On the {report['frontier_rows']} held-out contexts where the frontier suggested, "
            f"{distilled} would have been kept {ratio:.0%} as often as the frontier "
            f"({d_accept:.1%} vs {f_accept:.1%} accept proxy)"
        )
    return {
        "distilled": distilled,
        "distilled_accept_proxy": d_accept,
        "frontier_accept_proxy": f_accept,
        "ratio": ratio,
        "verdict": verdict,
    }


# ---------------------------------------------------------------------------- report


METRICS = (
    ("exact_match", "exact match"),
    ("accept_proxy", "accept proxy"),
    ("chrf", "chrF"),
    ("edit_similarity", "edit similarity"),
    ("empty_rate", "empty"),
)


def _fmt(value: Any, kind: str = "share") -> str:
    if value is None:
        return "n/a"
    if kind == "share":
        return f"{value:.1%}"
    if kind == "ms":
        return f"{value:.1f} ms"
    if kind == "bytes":
        return f"{value / 1e6:.1f} MB" if value >= 1e6 else f"{value / 1e3:.1f} kB"
    return f"{value:.1f}"


def markdown(report: Mapping[str, Any], plots: Sequence[str] = ()) -> str:
    lines = [
        "# Goldiff evaluation",
        "",
        f"{report['rows']} held-out rows ({report['frontier_rows']} with a recorded frontier suggestion), "
        f"{report['wall_seconds']:.1f} s on {report['machine']['processor']} "
        f"({report['machine']['cpus']} CPUs).",
        "",
        f"**Would the user have switched?** {report['switch']['verdict']}.",
        "",
        "| model | role | exact | accept proxy | shown accepted | chars saved | typing saved | chrF "
        "| edit sim. | empty | p50 | p95 | size |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, m in report["models"].items():
        lines.append(
            f"| {name} | {m['role']} | {_fmt(m['exact_match'])} | {_fmt(m['accept_proxy'])} | "
            f"{_fmt(m.get('shown_accept_rate'))} | {_fmt(m.get('chars_saved'))} | "
            f"{_fmt(m.get('typing_saved'))} | {_fmt(m['chrf'], 'num')} | {_fmt(m['edit_similarity'])} | "
            f"{_fmt(m['empty_rate'])} | "
            f"{_fmt(m['latency_p50_ms'], 'ms')} | {_fmt(m['latency_p95_ms'], 'ms')} | "
            f"{_fmt(m['size_bytes'], 'bytes')} |"
        )
    lines += [
        "",
        "Exact match ignores trailing whitespace; the accept proxy counts answers that are a "
        "non-empty prefix of the gold; chrF is sentence chrF (0-100) averaged over rows. Local "
        "latencies were measured here; the frontier's are as recorded, network included. "
        "Shown accepted: accepted answers among the non-empty ones; chars saved: accepted "
        "characters over the gold's characters, request by request; typing saved: the share of "
        "the characters typed that accepted suggestions supplied, each line typed left to right "
        "(a stop inside a suggestion taken is not asked again).",
    ]
    lines += ["", "Accept proxy / chars saved by trigger kind (where the cursor rested):", ""]
    kinds = [
        k for k in TRIGGER_KINDS if any(k in (m.get("by_trigger") or {}) for m in report["models"].values())
    ]
    lines += ["| model | " + " | ".join(kinds) + " |", "|---|" + "---|" * len(kinds)]
    for name, m in report["models"].items():
        cells = []
        for k in kinds:
            t = (m.get("by_trigger") or {}).get(k)
            cells.append(
                f"{_fmt(t['accept_proxy'])} / {_fmt(t['chars_saved'])} ({t['requests']})" if t else "n/a"
            )
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if report.get("gate_curve"):
        lines += [
            "",
            "The show/hide gate's trade-off (threshold → share shown, shown accepted, chars saved):",
            "",
        ]
        lines += ["| threshold | shown | shown accepted | chars saved |", "|---|---|---|---|"]
        for point in report["gate_curve"]:
            lines.append(
                f"| {point['threshold']:.2f} | {_fmt(point['shown'])} | {_fmt(point['shown_accept_rate'])} | "
                f"{_fmt(point['chars_saved'])} |"
            )
    for plot in plots:
        lines += ["", f"![{Path(plot).stem}]({Path(plot).name})"]
    return "\n".join(lines) + "\n"


def plot(report: Mapping[str, Any], out: Path) -> list[Path]:
    """Bar charts of the metrics and latencies (matplotlib, from the train extra)."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return []
    names = list(report["models"])
    quality, latency = Figure(figsize=(8, 4)), Figure(figsize=(6, 3.5))
    ax = quality.subplots()
    width = 0.8 / max(len(names), 1)
    for i, name in enumerate(names):
        m = report["models"][name]
        values = [m[k] / 100.0 if k == "chrf" else m[k] for k, _ in METRICS]
        ax.bar([j + i * width for j in range(len(METRICS))], values, width, label=name)
    ax.set_xticks([j + width * (len(names) - 1) / 2 for j in range(len(METRICS))])
    ax.set_xticklabels([label for _, label in METRICS])
    ax.set_ylim(0, 1)
    ax.set_ylabel("share (chrF / 100)")
    ax.legend()
    ax.set_title("Held-out gold: quality by model")
    ax = latency.subplots()
    for i, q in enumerate(("p50", "p95")):
        vals = [report["models"][n][f"latency_{q}_ms"] or 0.0 for n in names]
        ax.bar([j + i * 0.4 for j in range(len(names))], vals, 0.4, label=q)
    ax.set_xticks([j + 0.2 for j in range(len(names))])
    ax.set_xticklabels(names)
    ax.set_ylabel("ms per completion")
    ax.legend()
    ax.set_title("Latency")
    paths = [_save(quality, out / "metrics.png"), _save(latency, out / "latency.png")]
    if report.get("gate_curve"):
        paths.append(plot_gate_curve(report["gate_curve"], out / "gate-curve.png"))
    return paths


def plot_gate_curve(curve: Sequence[Mapping[str, float]], path: Path) -> Path:
    """Shown accept rate against chars saved as the gate's threshold rises (matplotlib)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 4))
    ax = fig.subplots()
    xs = [p["chars_saved"] for p in curve]
    ys = [p["shown_accept_rate"] for p in curve]
    ax.plot(xs, ys, marker="o")
    for p in curve[:: max(1, len(curve) // 6)]:
        ax.annotate(f"{p['threshold']:.2f}", (p["chars_saved"], p["shown_accept_rate"]), fontsize=7)
    ax.set_xlabel("chars saved (accepted chars / gold chars)")
    ax.set_ylabel("accept rate of shown suggestions")
    ax.set_title("Show/hide gate: thresholds")
    return _save(fig, path)


def _save(fig: Any, path: Path) -> Path:
    # A bare Figure (no pyplot) draws with Agg into the file and is not kept by any global state.
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path


def write_report(report: Mapping[str, Any], out: Path) -> dict[str, Path]:
    """`eval.json`, `report.md` and the plots into the folder `out`."""
    out.mkdir(parents=True, exist_ok=True)
    files = {"json": out / "eval.json", "markdown": out / "report.md"}
    files["json"].write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    plots = plot(report, out)
    files["markdown"].write_text(markdown(report, [str(p) for p in plots]))
    for p in plots:
        files[p.stem] = p
    return files


def run_eval(
    rows: Sequence[EvalRow],
    models: Sequence[ModelUnderTest],
    out: Path,
    *,
    frontier: bool = True,
    progress: Progress | None = None,
    extra: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, Path]]:
    """Evaluate and write the report, with every answer in `predictions.jsonl`; `extra`
    joins the report before it is written (a gate's curve: its table and plot)."""
    out.mkdir(parents=True, exist_ok=True)
    try:
        with (out / "predictions.jsonl").open("w", encoding="utf-8") as fh:

            def keep(record: dict[str, Any]) -> None:
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")

            report = evaluate(rows, models, frontier=frontier, progress=progress, predictions=keep)
    finally:
        for m in models:
            if m.close is not None:
                m.close()
    report.update(extra or {})
    files = write_report(report, out)
    files["predictions"] = out / "predictions.jsonl"
    return report, files
