"""The numbers users care about, for one suggestion and for many.

A suggestion is judged against the *gold*: what the developer really wrote from the
cursor on (the rest of the line at a natural cursor stop, or the settled gold of a
recorded suggestion). It counts as **accepted** when it is a non-empty prefix of the gold
(pressing Tab would have kept it); its **chars saved** are its length when accepted. Over
many requests:

- accept proxy      accepted / requests (an empty answer is a request that showed nothing)
- shown accept rate accepted / suggestions shown (non-empty): what a user sees as quality
- chars saved       accepted characters / characters of the gold, request by request
- typing saved      the share of what the developer typed that suggestions supplied, each
                    line typed left to right (`TypingWalk`): what "chars saved" means to a
                    user, who is not asked again inside a suggestion they took
- exact             the suggestion is the whole gold (trailing whitespace ignored)
- empty rate        requests that showed nothing
- latency           p50/p95 per request, measured here

Every figure is also split by **trigger kind**, the character class the cursor rests
after (`trigger_kind`): line start (after indentation), after `.`, `(`, `,`, `=`, a space,
inside a word, other. This module imports nothing heavy; the language server, the gate,
evaluation and the benchmarks share it.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

# When one way of answering replaces another (a fine-tune its base, a learned stop the
# model's own) on the same rows: the gain in chars saved must reach MIN_GAIN and its
# one-sided CONFIDENCE lower bound (`gain_lower_bound`) must be above zero.
MIN_GAIN = 0.005  # half a percent of the gold's characters: less is not worth a switch
CONFIDENCE = 0.95  # one-sided, the usual level: a gain this sure is not the rows' noise
RESAMPLES = 2000

# Where a cursor naturally rests while typing a line: after these, a suggestion is asked.
STOP_CHARS = {
    ".": "after_dot",
    "(": "after_paren",
    ",": "after_comma",
    "=": "after_equals",
    " ": "after_space",
}
TRIGGER_KINDS = ("line_start", *STOP_CHARS.values(), "in_word", "other")


def trigger_kind(prefix: str) -> str:
    """The class of the cursor position at the end of `prefix` (see TRIGGER_KINDS)."""
    line = prefix[prefix.rfind("\n") + 1 :]
    if not line.strip():
        return "line_start"
    last = line[-1]
    if last.isalnum() or last == "_":
        return "in_word"
    return STOP_CHARS.get(last, "other")


def cursor_stops(line: str) -> list[int]:
    """Offsets in `line` where a cursor naturally rests: after the indentation, and after
    `.`, `(`, `,`, `=` or a space (outside the indentation), with something left to type."""
    indent = len(line) - len(line.lstrip(" \t"))
    if not line[indent:].strip():
        return []
    after = [i + 1 for i in range(indent, len(line)) if line[i] in STOP_CHARS and line[i + 1 :].strip()]
    return [indent, *after]


def accepted(text: str, gold: str) -> bool:
    """The suggestion is a non-empty prefix of the gold: pressing Tab would have kept it."""
    kept = text.rstrip()
    return bool(kept) and gold.startswith(kept)


def saved_chars(text: str, gold: str) -> int:
    """The characters an answer supplies: its length when accepted, else none."""
    return len(text.rstrip()) if accepted(text, gold) else 0


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile, as numpy's default."""
    if not values:
        return None
    data = sorted(values)
    pos = (len(data) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


@dataclass
class Tally:
    """Running sums of the user-facing metrics over requests."""

    requests: int = 0
    shown: int = 0
    accepted: int = 0
    exact: int = 0
    chars_saved: int = 0
    gold_chars: int = 0
    latencies: list[float] = field(default_factory=list)

    def add(self, text: str, gold: str, latency_ms: float | None = None) -> bool:
        """Count one request's answer; returns whether it was accepted."""
        kept = text.rstrip()
        ok = accepted(text, gold)
        self.requests += 1
        self.shown += bool(kept)
        self.accepted += ok
        self.exact += bool(kept) and kept == gold.rstrip()
        self.chars_saved += len(kept) if ok else 0
        self.gold_chars += len(gold.rstrip())
        if latency_ms is not None:
            self.latencies.append(latency_ms)
        return ok

    def summary(self) -> dict[str, Any]:
        n = self.requests or 1
        return {
            "requests": self.requests,
            "shown": self.shown,
            "accepted": self.accepted,
            "accept_proxy": self.accepted / n,
            "shown_accept_rate": self.accepted / self.shown if self.shown else None,
            "chars_saved": self.chars_saved / self.gold_chars if self.gold_chars else 0.0,
            "exact": self.exact / n,
            "empty_rate": (self.requests - self.shown) / n,
            "latency_p50_ms": percentile(self.latencies, 50),
            "latency_p95_ms": percentile(self.latencies, 95),
        }


def typed_line(prefix: str, suffix: str) -> str:
    """Which line a request was made in: the text before that line and the text after the
    cursor, the same at every stop while a line is typed (a short hash of both)."""
    before = prefix[: prefix.rfind("\n") + 1]
    return hashlib.blake2b(f"{before}\0{suffix}".encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


@dataclass
class TypingWalk:
    """Chars saved as the developer meets them: each line typed left to right.

    Per-request chars saved count a line's tail once per stop asked in it. A developer
    types the line once: at each stop they reach, an accepted suggestion supplies its
    characters and moves the cursor past them (the stops inside it are never asked), a
    wrong or hidden one is typed over. The share saved is the characters supplied over
    the characters typed from each line's first asked stop (its gold). Rows belong to one
    line by `typed_line`; a row alone in its line counts as one request.
    """

    lines: dict[str, dict[int, tuple[int, int]]] = field(default_factory=dict)  # line -> stop -> (gold, kept)

    def add(self, prefix: str, suffix: str, text: str, gold: str) -> None:
        kept = saved_chars(text, gold)
        stop = len(prefix) - (prefix.rfind("\n") + 1)
        # A stop asked twice counts once: the developer reaches it once.
        self.lines.setdefault(typed_line(prefix, suffix), {}).setdefault(stop, (len(gold.rstrip()), kept))

    def summary(self) -> dict[str, Any]:
        supplied = typed = 0
        for stops in self.lines.values():
            first = min(stops)
            typed += stops[first][0]
            cursor = first
            for offset in sorted(stops):
                kept = stops[offset][1]
                if offset >= cursor and kept:
                    supplied += kept
                    cursor = offset + kept
        return {
            "typing_saved": supplied / typed if typed else None,
            "typed_chars": typed,
            "typed_lines": len(self.lines),
        }


class ByTrigger:
    """A `Tally` overall and one per trigger kind."""

    def __init__(self) -> None:
        self.all = Tally()
        self.kinds: dict[str, Tally] = {}

    def add(self, prefix: str, text: str, gold: str, latency_ms: float | None = None) -> bool:
        self.kinds.setdefault(trigger_kind(prefix), Tally()).add(text, gold, latency_ms)
        return self.all.add(text, gold, latency_ms)

    def summary(self) -> dict[str, Any]:
        return {
            **self.all.summary(),
            "by_trigger": {k: self.kinds[k].summary() for k in TRIGGER_KINDS if k in self.kinds},
        }


def surely_better(gain: float, low: float | None) -> bool:
    """Whether a gain in chars saved is worth a switch: at least `MIN_GAIN`, and (where
    per-row figures gave one) its lower bound (`gain_lower_bound`) above zero."""
    return gain >= MIN_GAIN and gain > 0 and (low is None or low > 0)


def gain_lower_bound(
    candidate: Sequence[int], current: Sequence[int], gold: Sequence[int], confidence: float = CONFIDENCE
) -> float:
    """The gain in chars saved that a paired bootstrap over the rows puts `confidence` above.

    Rows are drawn with replacement, both models' saved characters kept paired, `RESAMPLES`
    times (a fixed seed: the same rows give the same decision).
    """
    rng = random.Random(0)
    n = len(gold)
    diff = [a - b for a, b in zip(candidate, current, strict=True)]
    gains = []
    for _ in range(RESAMPLES):
        drawn = [rng.randrange(n) for _ in range(n)]
        total = sum(gold[i] for i in drawn)
        gains.append(sum(diff[i] for i in drawn) / total if total else 0.0)
    gains.sort()
    return gains[int((1 - confidence) * RESAMPLES)]
