"""A learned show/hide gate: will the developer keep this suggestion?

Copilot's "contextual filter" and Cursor's accept/reject training both hide suggestions
that are likely to be rejected: fewer, better suggestions. Goldiff's gate is a logistic
regression over what is known when a suggestion is made (`features`): the model's token
log-probabilities (mean, min, first), the suggestion's length and line count, where the
cursor is (trigger kind, column, text after the cursor on the line), whether it is Python.
It is trained on the user's own recorded outcomes (`training_rows`: suggestions with an
outcome and the log-probabilities the local source recorded with them) and saved as JSON
(`Gate.save`): serving is a dot product, with nothing heavier than `math` imported.

The threshold is chosen on the training rows to maximise kept minus `REJECT_COST` times
rejected suggestions shown, i.e. a shown-and-rejected suggestion costs a quarter of what a
kept one is worth (reading it, dismissing it). `curve` shows the trade-off.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from goldiff.metrics import TRIGGER_KINDS, trigger_kind

GATE_VERSION = 1
REJECT_COST = 0.25
L2 = 1.0  # ridge penalty on the standardised weights: a few hundred rows must not overfit

# "bias_free" is a placeholder, so that index 0 is never the intercept by accident.
FEATURES: tuple[str, ...] = (
    *"bias_free logprob_mean logprob_min logprob_first prob_mean tokens log_chars lines column".split(),
    *"rest_of_line python".split(),
    *(f"trigger_{k}" for k in TRIGGER_KINDS),
)


def features(
    *, prefix: str, suffix: str, text: str, logprobs: Sequence[float], language: str = ""
) -> list[float]:
    """The gate's inputs for one suggestion, in `FEATURES` order."""
    lps = list(logprobs) or [-10.0]
    line = prefix[prefix.rfind("\n") + 1 :]
    kind = trigger_kind(prefix)
    return [
        0.0,
        sum(lps) / len(lps),
        min(lps),
        lps[0],
        sum(math.exp(v) for v in lps) / len(lps),
        math.log1p(len(lps)),
        math.log1p(len(text)),
        float(text.count("\n")),
        math.log1p(len(line)),
        float(bool(suffix.split("\n", 1)[0].strip())),
        float(language.lower() == "python"),
        *(float(kind == k) for k in TRIGGER_KINDS),
    ]


@dataclass
class Gate:
    """A trained gate: standardise, dot product, sigmoid, compare with the threshold."""

    weights: list[float]
    bias: float
    mean: list[float]
    std: list[float]
    threshold: float = 0.5
    features: list[str] = field(default_factory=lambda: list(FEATURES))
    info: dict[str, Any] = field(default_factory=dict)  # rows, base rate, curve, trained at

    def score(self, x: Sequence[float]) -> float:
        z = self.bias + sum(
            w * (v - m) / s for w, v, m, s in zip(self.weights, x, self.mean, self.std, strict=True)
        )
        return 1.0 / (1.0 + math.exp(-max(-40.0, min(40.0, z))))

    def shows(self, x: Sequence[float]) -> bool:
        return self.score(x) >= self.threshold

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"version": GATE_VERSION, **asdict(self)}, indent=2) + "\n", "utf-8")
        return path

    @classmethod
    def load(cls, path: Path) -> Gate:
        data = json.loads(path.read_text("utf-8"))
        if data.get("version") != GATE_VERSION or data.get("features") != list(FEATURES):
            raise ValueError(
                f"{path} is a gate for other features (version {data.get('version')}); retrain it"
            )
        return cls(
            weights=[float(w) for w in data["weights"]],
            bias=float(data["bias"]),
            mean=[float(v) for v in data["mean"]],
            std=[float(v) for v in data["std"]],
            threshold=float(data["threshold"]),
            info=dict(data.get("info") or {}),
        )


@dataclass(frozen=True)
class GateRow:
    """One recorded suggestion: the gate's inputs, whether it was kept, and its length."""

    x: list[float]
    kept: bool
    chars: int
    gold_chars: int


def training_rows(db: Any, *, source: str | None = "local") -> list[GateRow]:
    """Settled, shown suggestions that carry the log-probabilities recorded with them."""
    from goldiff.records import SETTLED, Filters, iter_suggestions

    rows = []
    for s in iter_suggestions(db, Filters(source=source, outcome=SETTLED), context=True):
        logprobs = s.context.get("logprobs")
        if not s.text or not isinstance(logprobs, list) or not logprobs:
            continue
        kept = s.outcome == "accepted"
        x = features(
            prefix=s.prefix,
            suffix=s.suffix,
            text=s.text,
            logprobs=[float(v) for v in logprobs],
            language=str(s.context.get("language") or ""),
        )
        saved = len(s.text) if kept else int(s.accepted_length or 0) if s.outcome == "partial" else 0
        rows.append(GateRow(x, kept, saved, len(s.gold or s.text)))
    return rows


def fit(rows: Sequence[GateRow], *, l2: float = L2, iterations: int = 50) -> Gate:
    """Logistic regression by Newton's method (numpy); threshold by kept - cost * rejected."""
    import numpy as np

    if len(rows) < 4 or len({r.kept for r in rows}) < 2:
        raise ValueError(
            f"the gate needs kept and rejected suggestions to learn from ({len(rows)} recorded, "
            f"{sum(r.kept for r in rows)} kept)"
        )
    x = np.asarray([r.x for r in rows], dtype=np.float64)
    y = np.asarray([r.kept for r in rows], dtype=np.float64)
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std[std < 1e-9] = 1.0
    z = (x - mean) / std
    a = np.hstack([np.ones((len(z), 1)), z])
    w = np.zeros(a.shape[1])
    penalty = np.full(a.shape[1], l2)
    penalty[0] = 0.0  # the intercept is not shrunk
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(a @ w, -40, 40)))
        grad = a.T @ (p - y) + penalty * w
        hess = (a * (p * (1 - p))[:, None]).T @ a + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    gate = Gate(
        weights=[float(v) for v in w[1:]],
        bias=float(w[0]),
        mean=[float(v) for v in mean],
        std=[float(v) for v in std],
    )
    scores = [gate.score(r.x) for r in rows]
    gate.threshold = choose_threshold(scores, [r.kept for r in rows])
    gate.info = {
        "rows": len(rows),
        "kept": int(y.sum()),
        "base_rate": float(y.mean()),
        "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "reject_cost": REJECT_COST,
    }
    return gate


def choose_threshold(scores: Sequence[float], kept: Sequence[bool], cost: float = REJECT_COST) -> float:
    """The score threshold that maximises kept - cost * rejected among the shown."""
    best, best_value = 0.0, sum(kept) - cost * (len(kept) - sum(kept))
    for t in sorted(set(scores)):
        value = sum(k - cost * (not k) for s, k in zip(scores, kept, strict=True) if s >= t)
        if value > best_value:
            best, best_value = t, value
    return best


def curve(rows: Sequence[GateRow], scores: Sequence[float]) -> list[dict[str, float]]:
    """Share shown, shown accept rate and chars saved at each threshold, from recorded rows."""
    total_gold = sum(r.gold_chars for r in rows) or 1
    out = []
    for t in [i / 20 for i in range(20)]:
        shown = [r for r, s in zip(rows, scores, strict=True) if s >= t]
        kept = sum(r.kept for r in shown)
        out.append(
            {
                "threshold": t,
                "shown": len(shown) / (len(rows) or 1),
                "shown_accept_rate": kept / len(shown) if shown else 0.0,
                "chars_saved": sum(r.chars for r in shown) / total_gold,
            }
        )
    return out


def learn(rows: Sequence[GateRow], folds: int = 5) -> Gate:
    """`fit` on `rows`, with the honest curve of its trade-off in `info`: each row scored
    by a gate trained without it (k-fold)."""
    gate = fit(rows)
    scores = [0.5] * len(rows)
    for k in range(folds):
        try:
            fold = fit([r for i, r in enumerate(rows) if i % folds != k])
        except ValueError:
            continue
        for i, r in enumerate(rows):
            if i % folds == k:
                scores[i] = fold.score(r.x)
    gate.info["curve"] = curve(rows, scores)
    return gate


def train_gate(db: Any, out: Path, *, source: str | None = "local") -> Gate:
    """Train on the store's recorded outcomes and save the gate to `out` (with its curve)."""
    gate = learn(training_rows(db, source=source))
    gate.save(out)
    return gate


def load_gate(path: Path | None) -> Gate | None:
    if path is None or not path.is_file():
        return None
    return Gate.load(path)


def apply(gate: Gate | None, x: Iterable[float]) -> tuple[bool, float | None]:
    """(show?, score): every suggestion shows when there is no gate."""
    if gate is None:
        return True, None
    score = gate.score(list(x))
    return score >= gate.threshold, score
