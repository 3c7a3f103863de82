"""`goldiff demo`: the whole loop on a real history, offline, on this machine.

In a temporary home: replay a real repository's recent history through the Goldiff
server (the gold is what the real developers wrote at every completion point; see
PLACEHOLDER_SUGGESTER), export that gold, distill the base model on it, then evaluate base and
distilled side by side on the suggestions of the later, held-out commits — contexts the
distilled model never trained on — and write the report. The history is Goldiff's own git
history by default (the repository this package lives in), cloned first so the replay
never sees a working tree someone is editing.

Each stage is one library call from another part of Goldiff (`replay`, `export`,
`distill`, `evaluate`), wrapped in a function named after the stage so the pipeline reads
top to bottom in `run_demo`, and each says what it is doing through `say`. `tiny=True`
shrinks every stage (a tiny base model trained in seconds, a few commits, a few steps)
for the test suite.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

from goldiff.distill.bootstrap import bootstrap
from goldiff.distill.pipeline import (
    BaseModel,
    FinetuneOptions,
    Say,
    adapted_rows,
    base_model,
    finetune,
    preference_pairs,
    validation_cutoff,
)
from goldiff.distill.promote import compare, local_completer
from goldiff.distill.workspace import documents_at
from goldiff.errors import ConfigError, DistillError
from goldiff.evaluate import (
    EngineFim,
    EvalRow,
    eval_rows,
    gate_answers,
    gated_model,
    gguf_model,
    run_eval,
)
from goldiff.export import ExportOptions, export, load_rows
from goldiff.gate import Gate, learn_with_stop
from goldiff.home import store_path
from goldiff.metrics import typed_line
from goldiff.records import iter_events
from goldiff.replay.driver import Progress, ReplayOptions, replay
from goldiff.replay.history import list_commits, repository_root, touches
from goldiff.sources.profile import load_profile
from goldiff.store import open_database

# What the replay shows at each completion point unless `suggest_with_base`: a placeholder
# (the deterministic test source) that the developer always types over, so that every
# completion point yields a gold row — what the developer really wrote there. Gold comes
# only from suggestions that were shown, and a small base model often suggests nothing
# (the `empty` outcome, no gold), which would leave almost nothing to learn from. The base
# model is then measured where it matters: offline, on the held-out contexts.
PLACEHOLDER_SUGGESTER = 'test:{"rules": [], "default": "pass"}'


@dataclass
class DemoConfig:
    repo: Path | None = None  # a git repository; None: the one Goldiff's own source lives in
    commits: int = 8  # the most recent first-parent commits to use (replayed and held out)
    held_out: int = 2  # the last of them: never trained on, evaluated on
    include: tuple[str, ...] = ("*.py",)  # which files the developer is seen typing
    paste_over: int | None = 400  # a hunk longer than this is typed up to here, then pasted
    requests_per_commit: int | None = 40  # completion requests per commit, to bound the time
    seed: int = 0  # the simulated developer's choices
    base_model: Path | None = None  # GGUF that suggests during replay; None: the shipped default
    recipe: str = "default"  # training recipe of the base (architecture and tokenizer)
    steps: int = 40  # fine-tuning steps on the gold and code (a 30M model: seconds a step on 2 cores)
    batch_size: int = 8  # rows per step
    seq_len: int = 256  # tokens per training row: a FIM context excerpt plus its gold
    max_eval_rows: int = 80  # held-out rows evaluated (evenly spaced), to bound the time
    # Training contexts the gate learns from (evenly spaced). Its stop needs more than the
    # evaluation: a stop's gain of a point or two is sure on a few hundred rows, not on 80.
    max_gate_rows: int = 240
    learning_rate: float = 3e-4  # lower than pretraining: adapt, do not forget
    threads: int = 2  # CPU threads for training
    tiny: bool = False  # test size: a tiny base trained here in seconds, a few steps
    # True: the base model makes the replay's suggestions (its own outcomes are recorded,
    # but gold then exists only where it suggested something); False: the placeholder.
    suggest_with_base: bool = False
    preference_steps: int = 0  # DPO on the base's suggestions typed over (with suggest_with_base)

    @classmethod
    def for_tests(cls, repo: Path | None = None, **changes: Any) -> DemoConfig:
        values: dict[str, Any] = {
            "repo": repo,
            "commits": 4,
            "held_out": 1,
            "recipe": "tiny",
            "steps": 8,
            "seq_len": 64,
            "learning_rate": 1e-3,
            "threads": 1,
            "tiny": True,
        }
        return cls(**values | changes)


@dataclass
class DemoResult:
    repo: str
    commits: list[str]
    held_out: list[str]
    replay: dict[str, Any]
    export: dict[str, Any]
    distill: dict[str, Any]
    evaluation: dict[str, Any]
    headline: dict[str, Any]
    report_dir: str
    stage_seconds: dict[str, float] = field(default_factory=dict)


# ---------------------------------------------------------------------------- stages


def choose_history(config: DemoConfig) -> tuple[Path, list[str]]:
    """The repository and the commits to use, oldest first."""
    start = config.repo if config.repo is not None else Path(__file__).resolve().parent
    try:
        root = repository_root(start)
    except ConfigError as exc:
        raise ConfigError(
            f"the demo replays a git history and found none at {start} ({exc}). "
            "Run it from a clone of Goldiff, or pass --repo PATH to any git repository."
        ) from exc
    shas = list_commits(root)
    if config.held_out < 1 or config.commits <= config.held_out:
        raise ConfigError("--commits must be larger than --held-out, and --held-out at least 1")
    if len(shas) < config.held_out + 1:
        raise ConfigError(
            f"{root} has {len(shas)} commits; the demo needs at least {config.held_out + 1} "
            "(some to learn from, the last ones to evaluate on). Pass --repo with a longer history."
        )
    # The held-out commits are evaluated on the files the developer is seen typing: a history
    # that ends in commits changing none of them (documentation, a release tag) would leave
    # nothing to evaluate, so the window ends at the newest commit that changes one.
    end = len(shas)
    while end > config.held_out + 1 and not touches(root, shas[end - 1], config.include):
        end -= 1
    return root, shas[max(0, end - config.commits) : end]


def clone(root: Path, work: Path) -> Path:
    """A private clone: replay reads git objects only, and nobody edits this one."""
    target = work / "repo"
    if (target / ".git").is_dir():
        return target  # a kept home (`--home`): its replay resumes where it stopped
    subprocess.run(
        ["git", "clone", "--quiet", "--no-checkout", str(root), str(target)], check=True, capture_output=True
    )
    return target


def prepare_base_model(config: DemoConfig, work: Path, say: Say) -> BaseModel:
    """The model that suggests during replay and that distillation starts from."""
    if config.tiny:
        say("Training a tiny base model from scratch (test size; a real run uses the shipped model)...")
        result = bootstrap(work, "tiny", progress=False, log=say, quantize_to="Q8_0", threads=config.threads)
        run = work / "bootstrap" / "tiny"
        return BaseModel(
            gguf=Path(result.gguf_path),
            hf_dir=run / "run" / "final",
            tokenizer=run / "tokenizer" / "tokenizer.json",
        )
    # The shipped default model (or `--base-model`), with torch weights to fine-tune from.
    return base_model(config.base_model, work, say)


def replay_history(
    repo: Path,
    home: Path,
    commits: list[str],
    base: BaseModel,
    config: DemoConfig,
    say: Say,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Every chosen commit through the real server, the base model suggesting."""
    parent = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", f"{commits[0]}^"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    rev_range = f"{parent}..{commits[-1]}" if parent else commits[-1]
    options = ReplayOptions(
        rev_range=rev_range,
        seed=config.seed,
        include=config.include,
        settings={
            "mode": "local",
            "local": {"model": str(base.gguf) if config.suggest_with_base else PLACEHOLDER_SUGGESTER},
        },
        paste_over=config.paste_over,
        max_requests_per_commit=config.requests_per_commit,
    )
    say(f"Replaying {len(commits)} commits ({config.held_out} held out) as a simulated developer...")
    result = replay(repo, home, options, progress)
    if result.interrupted:
        raise KeyboardInterrupt("the demo was stopped during the replay")
    for message in result.messages:
        say(f"server: {message}")
    say(
        f"  {result.keystrokes:,} keystrokes, {result.suggestions} suggestions shown: "
        f"{result.accepted} accepted, {result.partial} partly, {result.rejected} typed over "
        f"({result.chars_per_second:,.0f} chars/s)"
    )
    return result.as_dict()


def split_time(db: sqlite_utils.Database, last_training_commit: str) -> float:
    """The store's time of the last training commit: every later suggestion is held out."""
    for event in iter_events(db, "commit"):
        if event.detail.get("sha") == last_training_commit:
            return event.ts + 1e-6
    raise DistillError(f"the replay did not record commit {last_training_commit[:12]}")


def export_gold(db: sqlite_utils.Database, work: Path, cutoff: float, say: Say) -> dict[str, Any]:
    """sft rows of the gold, split at the held-out commits."""
    say("Exporting the gold as training rows (train: earlier commits, test: held-out ones)...")
    result = export(db, ExportOptions(format="sft", split=True, split_at=cutoff), work / "export")
    say(f"  {result.counts.get('train', 0)} training rows, {result.counts.get('test', 0)} held-out rows")
    if not result.counts.get("test"):
        raise DistillError(
            "the held-out commits gave no evaluation rows; use more --held-out commits "
            "or a repository whose recent commits change Python files"
        )
    return result.as_dict()


def distill(
    base: BaseModel,
    train_rows: Path,
    texts: dict[str, str],
    val_cutoff: float | None,
    work: Path,
    config: DemoConfig,
    say: Say,
    pairs: Path | None = None,
    until: float | None = None,
) -> dict[str, Any]:
    """Fine-tune the base on the gold and the workspace's code (then on the preference
    `pairs`, when the base made the replay's suggestions); export, check, quantize."""
    say("Distilling:")
    options = FinetuneOptions(
        recipe=config.recipe,
        steps=config.steps,
        batch_size=config.batch_size,
        seq_len=config.seq_len,
        learning_rate=config.learning_rate,
        threads=config.threads,
        seed=config.seed,
        preference_steps=config.preference_steps,
    )
    rows = adapted_rows(train_rows, texts, work, options, say, val_cutoff, until)
    return finetune(base, rows, work, options, say, preference_rows=pairs)


def _evenly(rows: list[Any], most: int) -> list[Any]:
    return [rows[i * len(rows) // most] for i in range(most)] if len(rows) > most else rows


def _whole_lines(rows: list[EvalRow], most: int) -> list[EvalRow]:
    """At most `most` rows, as evenly spaced whole lines: every stop asked while a line was
    typed, so typing saved (`metrics.TypingWalk`) walks each line as it was typed."""
    lines: list[list[EvalRow]] = []
    last = None
    for row in rows:  # a line's stops are recorded one after another
        here = typed_line(row.prefix, row.suffix)
        if lines and here == last:
            lines[-1].append(row)
        else:
            lines.append([row])
        last = here
    # The most evenly spaced lines whose stops fit (lines differ in how many stops they have).
    take = next((k for k in range(len(lines), 0, -1) if sum(map(len, _evenly(lines, k))) <= most), 0)
    return [row for chosen in _evenly(lines, take) for row in chosen]


def choice_cutoff(train_rows: Path, val_cutoff: float | None, commits: Sequence[float]) -> float | None:
    """Where the newer half of the validation rows begins (at a commit when one is near):
    the fine-tune stops early on the older half and is chosen on the newer half.

    Chosen on the rows its early stopping picked its weights on, a fine-tune is judged on
    the rows it is best at: on toolz the demo kept a fine-tune for +2.6 points on its 36
    validation rows (95% lower bound +0.2) that was 3.9 points of accept proxy worse on the
    held-out commits. None when the rows are too few to halve (the choice then reads them all).
    """
    if val_cutoff is None:
        return None
    half = validation_cutoff(train_rows, FinetuneOptions.val_fraction / 2, commits)
    return half if half is not None and half > val_cutoff else None


def choose_model(
    train_rows: Path,
    since: float | None,
    base: BaseModel,
    distilled: dict[str, Any],
    say: Say,
    max_rows: int,
) -> tuple[str, dict[str, Any] | None]:
    """Which model a user would be given: the fine-tune only if it beats its base on the
    training period's rows from `since` on.

    The rule `goldiff distill` promotes by (`distill.promote`: chars saved, by a margin),
    on the newest training-period contexts, which the fine-tune never trained on (and,
    given `choice_cutoff`, never stopped early on): the held-out commits stay unseen by
    every choice. ("base" or "distilled", the decision); the decision is None when nothing
    could be compared.
    """
    if distilled.get("kept_base"):
        return "base", None
    if since is None:
        return "distilled", None
    rows = _evenly(eval_rows(r for r in load_rows(train_rows) if float(r["ts"]) >= since), max_rows)
    say(f"Comparing the fine-tune with its base on {len(rows)} validation contexts...")
    decision = compare(
        rows,
        lambda: local_completer(distilled["gguf"], adapter=distilled.get("adapter")),
        lambda: local_completer(base.gguf),
        on="validation rows",
        against="the base",
    )
    say(f"  {'the fine-tune' if decision.promote else 'the base'} is kept: {decision.reason}")
    return ("distilled" if decision.promote else "base"), decision.as_dict()


def fit_gate(train_rows: Path, base: BaseModel, say: Say, max_rows: int) -> Gate | None:
    """A show/hide gate learned on the base model's answers to the training gold.

    The replay's suggestions come from a placeholder, so no suggestion of these models has
    a recorded outcome yet: the gate learns from the base's answers to the training
    period's contexts (which the base never trained on), an answer counting as kept when
    it is a prefix of what the developer wrote. The fine-tune shares the base's tokenizer,
    so the same inputs (log-probabilities, length, cursor position) mean the same to it.
    None when there are too few answers or no kept one (the gate needs both kinds).
    """
    rows = _evenly(eval_rows(load_rows(train_rows)), max_rows)
    say(f"Learning a show/hide gate on the base model's answers to {len(rows)} training contexts...")
    # llama.cpp's repacked kernels as the server decides them ("auto"). No fault record file:
    # the demo's home is temporary, so a fault is learned for this engine's life only.
    with contextlib.closing(EngineFim(base.gguf)) as engine:
        answers = gate_answers(engine, rows)
    start = load_profile(base.gguf).min_token_prob
    try:
        gate = learn_with_stop(answers, start)
    except ValueError as exc:
        say(f"  no show/hide gate: {exc}")
        return None
    tried = ", ".join(f"{p} {v:.1%}" for p, v in gate.info["stop"]["chars_saved"].items())
    say(
        f"  stop below p = {gate.stop:g} (chars saved by stop: {tried}); {gate.info['rows']} answers "
        f"({gate.info['kept']} kept); threshold {gate.threshold:.2f} "
        f"(it would have shown {gate.info['shown']})"
    )
    return gate


def evaluate_models(
    test_rows: Path,
    base: BaseModel,
    distilled: dict[str, Any],
    chosen: str,
    gate: Gate | None,
    out: Path,
    say: Say,
    max_rows: int,
) -> dict[str, Any]:
    """Base, distilled, and the chosen one behind its gate, on the held-out contexts against the gold."""
    rows = _whole_lines(eval_rows(load_rows(test_rows)), max_rows)
    # A fine-tune that kept its base's weights is the base: scoring the same file twice
    # would report the engine's timing noise (a cold prompt is capped by what this machine
    # evaluates in time) as a difference between two models.
    same = bool(distilled.get("kept_base"))
    which = "the base model" if same else "base and distilled models"
    say(f"Evaluating {which} on {len(rows)} held-out contexts...")
    models = [gguf_model("base", "base", base.gguf)]
    if not same:
        adapter = distilled.get("adapter")
        models.append(gguf_model("distilled", "distilled", distilled["gguf"], adapter=adapter))
    if gate is not None:
        # Listed right after the model it gates, so it scores that model's very answers.
        at = 1 if chosen == "base" else 2
        engine = models[at - 1].complete
        assert isinstance(engine, EngineFim)
        models.insert(at, gated_model(f"{chosen}+gate", engine, gate))
    extra: dict[str, Any] = {"distilled_is_base": True} if same else {}
    if gate is not None:
        extra["gate_curve"] = gate.info["curve"]  # the report's table and plot of its trade-off
        extra["gate"] = {k: gate.info[k] for k in ("rows", "kept", "base_rate")} | {
            "threshold": gate.threshold
        }
    report, _files = run_eval(rows, models, out, extra=extra)
    return dict(report)


HEADLINE_MODELS = ("base", "base+gate", "distilled", "distilled+gate")


def headline(report: dict[str, Any]) -> dict[str, Any]:
    """The numbers a user looks at: accept proxy, shown accepted, chars saved; per model."""
    models = report.get("models", {})
    out: dict[str, Any] = {"held_out_rows": report.get("rows")}
    keys = (
        "accept_proxy",
        "exact_match",
        "chrf",
        "empty_rate",
        "shown_accept_rate",
        "chars_saved",
        "typing_saved",
    )
    for name in HEADLINE_MODELS:
        if name in models:
            out[name] = {k: models[name].get(k) for k in (*keys, "latency_p50_ms")}
    if report.get("distilled_is_base") and "base" in out:
        out["distilled"] = {**out["base"], "same_as": "base"}  # no training step beat the base
    return out


# ---------------------------------------------------------------------------- the pipeline


def run_demo(
    config: DemoConfig,
    home: Path | None = None,
    out: Path | None = None,
    say: Say = print,
    progress: Progress | None = None,
) -> DemoResult:
    """Replay → export → distill → evaluate, in a temporary home unless `home` is given."""
    temporary = home is None
    work = Path(tempfile.mkdtemp(prefix="goldiff-demo-")) if home is None else Path(home)
    work.mkdir(parents=True, exist_ok=True)
    report_dir = Path(out) if out is not None else Path.cwd() / "goldiff-demo"
    stages: dict[str, float] = {}
    start = time.monotonic()

    def lap(stage: str) -> None:  # each stage starts where the one before it ended
        stages[stage] = time.monotonic() - start - sum(stages.values())

    try:
        root, commits = choose_history(config)
        training, held_out = commits[: -config.held_out], commits[-config.held_out :]
        say(f"Goldiff demo on {root}: {len(training)} commits to learn from, {len(held_out)} held out.")
        repo = clone(root, work)
        lap("history")

        base = prepare_base_model(config, work, say)
        lap("base_model")

        replayed = replay_history(repo, work, commits, base, config, say, progress)
        lap("replay")

        with contextlib.closing(open_database(store_path(work))[0]) as db:
            cutoff = split_time(db, training[-1])
            exported = export_gold(db, work, cutoff, say)
            commit_times = [e.ts for e in iter_events(db, "commit")]
            val_cutoff = validation_cutoff(
                Path(exported["paths"]["train"]), FinetuneOptions.val_fraction, commit_times
            )
            # The replayed files as the store saw them at the cutoff (nothing held out is read).
            texts = documents_at(db, val_cutoff if val_cutoff is not None else cutoff)
            pairs = preference_pairs(db, cutoff, val_cutoff, work)
        lap("export")

        train_rows = Path(exported["paths"]["train"])
        choice = choice_cutoff(train_rows, val_cutoff, commit_times)
        distilled = distill(base, train_rows, texts, val_cutoff, work, config, say, pairs, until=choice)
        lap("distill")

        since = choice if choice is not None else val_cutoff
        chosen, decision = choose_model(train_rows, since, base, distilled, say, config.max_eval_rows)
        distilled["choice"] = {"kept": chosen, "decision": decision}
        gate = fit_gate(train_rows, base, say, config.max_gate_rows)
        lap("gate")

        test_rows = Path(exported["paths"]["test"])
        report = evaluate_models(
            test_rows, base, distilled, chosen, gate, report_dir, say, config.max_eval_rows
        )
        lap("evaluate")

        result = DemoResult(
            repo=str(root),
            commits=training,
            held_out=held_out,
            replay=replayed,
            export=exported,
            distill=distilled,
            evaluation=report,
            headline=headline(report),
            report_dir=str(report_dir),
            stage_seconds=stages,
        )
        (report_dir / "demo.json").write_text(json.dumps(asdict(result), indent=2, sort_keys=True) + "\n")
        return result
    finally:
        if temporary:
            shutil.rmtree(work, ignore_errors=True)


def summary_lines(result: DemoResult) -> list[str]:
    """Where it stands, in a few lines for the terminal."""
    h = result.headline
    lines = [f"On {h['held_out_rows']} held-out contexts from the last {len(result.held_out)} commits:"]
    for name in HEADLINE_MODELS:
        if name not in h:
            continue
        m = h[name]
        if m.get("same_as"):
            lines.append(f"  {name:14} = {m['same_as']} (no training step beat it on the validation gold)")
            continue
        lines.append(
            f"  {name:14} accept proxy {_share(m['accept_proxy'])}, shown accepted "
            f"{_share(m['shown_accept_rate'])}, chars saved {_share(m['chars_saved'])} "
            f"(typing saved {_share(m.get('typing_saved'))}), "
            f"exact match {_share(m['exact_match'])}, chrF {_num(m['chrf'])}"
        )
    total = sum(result.stage_seconds.values())
    lines.append(f"Report: {result.report_dir}/report.md ({total / 60:.1f} min in all)")
    return lines


def _share(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.1%}"


def _num(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.3f}"
