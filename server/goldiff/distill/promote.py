"""Promotion: a distilled model becomes the default only if it beats the current one.

The candidate and the current default answer the same held-out gold contexts (the test
split of the export the candidate was trained without) through the server's own local
engine (`goldiff eval`'s `EngineFim`: the engine process, the same request building,
prompts, serving profile, stop rules and gate a user gets).
The **primary metric is chars saved**: accepted characters over the gold's characters,
where an answer counts as accepted when it is a non-empty prefix of the gold (what Tab
would have kept). The candidate is promoted when it saves more characters than the current
default on the same rows, by at least `MIN_GAIN` of the gold's characters, and by more than
the rows' own noise: the gain's one-sided `CONFIDENCE` lower bound under a paired
bootstrap over the rows (`gain_lower_bound`, as MT evaluation compares two systems on one
test set) must be above zero. On a few dozen rows a gain of a point or two is often a
handful of rows; a fine-tune promoted on such a gain can be worse on the commits that
follow. Otherwise the candidate stays registered, not the default, and the decision says
why. Accept proxy, shown accept rate, empty rate and latency are reported beside it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from goldiff.evaluate import Completer, EvalRow
from goldiff.metrics import CONFIDENCE, MIN_GAIN, ByTrigger, gain_lower_bound, saved_chars, surely_better

PRIMARY = "chars_saved"


Opener = Callable[[], tuple[Completer, Callable[[], None]]]  # a completer and what closes it


def score(rows: Sequence[EvalRow], opener: Opener) -> dict[str, Any]:
    """The rows' figures from the completer `opener` opens (closed afterwards)."""
    complete, close = opener()
    saved = []
    try:
        tally = ByTrigger()
        for row in rows:
            text, latency = complete(row.prefix, row.suffix, row.language)
            tally.add(row.prefix, text, row.gold, latency)
            saved.append(saved_chars(text, row.gold))
    finally:
        close()
    return tally.summary() | {"saved_by_row": saved, "gold_by_row": [len(r.gold.rstrip()) for r in rows]}


@dataclass
class Decision:
    promote: bool
    reason: str
    candidate: dict[str, Any]
    current: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        keep = (PRIMARY, "accept_proxy", "shown_accept_rate", "empty_rate", "latency_p50_ms", "requests")
        return {
            "promoted": self.promote,
            "reason": self.reason,
            "primary_metric": PRIMARY,
            "candidate": {k: self.candidate.get(k) for k in keep},
            "current": {k: self.current.get(k) for k in keep},
        }


def decide(
    candidate: dict[str, Any],
    current: dict[str, Any],
    *,
    on: str = "held-out rows",
    against: str = "the current default",
) -> Decision:
    """Promote only when the candidate's chars saved beats the current's by `MIN_GAIN`, and
    (given both models' per-row figures, as `score` makes them) by more than noise."""
    c, d = candidate[PRIMARY], current[PRIMARY]
    gain = c - d
    n = candidate.get("requests", 0)
    if not n:
        return Decision(False, f"no {on} to compare on", candidate, current)
    mine, theirs = candidate.get("saved_by_row"), current.get("saved_by_row")
    gold = candidate.get("gold_by_row")
    low = gain_lower_bound(mine, theirs, gold) if mine and theirs and gold else None
    sure = f"; {CONFIDENCE:.0%} lower bound {low * 100:+.1f} points" if low is not None else ""
    if surely_better(gain, low):
        reason = f"chars saved {c:.1%} vs {d:.1%} (+{gain * 100:.1f} points{sure}) on {n} {on}"
        return Decision(True, reason, candidate, current)
    if gain < 0:
        verdict = "worse"
    elif gain >= MIN_GAIN:
        verdict = "not surely better: the gain could be these rows' noise"
    else:
        verdict = "not better by enough"
    reason = (
        f"{verdict}: chars saved {c:.1%} vs {against}'s {d:.1%} ({gain * 100:+.1f} points, "
        f"needs +{MIN_GAIN * 100:.1f}{sure}) on {n} {on}"
    )
    return Decision(False, reason, candidate, current)


def compare(rows: Sequence[EvalRow], candidate: Opener, current: Opener, **decide_args: Any) -> Decision:
    """Score the candidate, then the current model, one engine at a time, and `decide`."""
    return decide(score(rows, candidate), score(rows, current), **decide_args)


def local_completer(
    path: str | Path,
    *,
    adapter: str | Path | None = None,
    gate: Path | None = None,
    threads: int | None = None,
    faults: Path | None = None,
) -> tuple[Completer, Callable[[], None]]:
    """A completer over the server's own local engine (and a function that closes it).

    `goldiff eval`'s `EngineFim`: the engine process, the server's request building and the
    model's serving profile and gate, so promotion compares what users would be served.
    """
    from goldiff.evaluate import EngineFim

    fim = EngineFim(path, lora_path=adapter, gate=gate, n_threads=threads or 0, faults=faults)
    return fim, fim.close


def promote_if_better(
    home: Path,
    candidate: str,
    rows: Sequence[EvalRow],
    *,
    threads: int | None = None,
) -> Decision:
    """Compare the registered `candidate` with the default; switch if better.

    The decision is recorded in the candidate's lineage either way.
    """
    from goldiff.sources.registry import Registry
    from goldiff.sources.repack import faults_path

    registry = Registry(home)
    current = registry.default()

    def make(name: str) -> tuple[Completer, Callable[[], None]]:
        resolved = registry.resolve(name)
        return local_completer(
            resolved.model_path,
            adapter=resolved.adapter_path,
            gate=resolved.gate,
            threads=threads,
            faults=faults_path(home),  # the server's repack fault records: the kernels it serves with
        )

    if current is None:
        decision = Decision(True, "there was no default model", score(rows, lambda: make(candidate)), {})
    else:
        decision = compare(rows, lambda: make(candidate), lambda: make(current))
    if decision.promote:
        registry.use(candidate)
    registry.annotate(candidate, promotion={**decision.as_dict(), "against": current})
    return decision
