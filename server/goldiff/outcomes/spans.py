"""Spans carried through edits, and the edit-distance arithmetic survival is built on.

A `Span` is a range of code points in one document that follows every later edit: edits
before it shift it, edits inside it change its content, and an edit that replaces part
of it pulls the replacement text in (the developer rewrote that part of it). Whether
text typed exactly at an edge joins the span is the span's choice: an accepted
suggestion's span never grows at its edges (what is typed after a completion is not the
completion), while the region where a developer writes instead of a rejected suggestion,
and an episode's region, grow as the developer types at their ends. An accepted span
that a deletion empties is dead: the suggestion was reverted, and nothing typed later at
that place revives it.

Everything here is pure: no clock, no store. The tracker feeds it (offset, removed,
inserted length) triples as the recorder reports them.
"""

from __future__ import annotations

import difflib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# Texts longer than this (after stripping their common ends) are diffed by lines, not characters.
CHAR_DIFF_LIMIT = 4_000


@dataclass(slots=True)
class Span:
    start: int
    end: int
    grow_start: bool = False  # an insertion exactly at `start` joins the span
    grow_end: bool = False  # an insertion exactly at `end` joins the span
    dies_when_empty: bool = False  # accepted text: deleting all of it reverts it for good
    dead: bool = False

    def apply(self, offset: int, removed: int, inserted: int) -> None:
        """Follow one edit: code points [offset, offset+removed) became `inserted` code points."""
        if self.dead:
            return
        a, b, n = offset, offset + removed, inserted
        delta = n - removed
        start, end = self.start, self.end
        if removed == 0:
            if a < start or (a == start and not (self.grow_start or (start == end and self.grow_end))):
                self.start, self.end = start + n, end + n
            elif a <= end and (a < end or a == start or self.grow_end):
                self.end = end + n
            return
        if b < start or (b == start and not self.grow_start):
            self.start, self.end = start + delta, end + delta
            return
        if b == start:  # a replacement ending at a growing start: its text joins
            self.start, self.end = a, end + delta
            return
        if a > end or (a == end and not self.grow_end):
            return
        if a == end:  # a replacement starting at a growing end: its text joins
            self.end = a + n
            return
        # The edit overlaps the span: its inserted text replaces span content, so it joins.
        self.start = start if a >= start else a
        self.end = end + delta if b <= end else a + n
        if self.start == self.end and self.dies_when_empty:
            self.dead = True

    def text(self, document: str) -> str:
        return "" if self.dead else document[self.start : self.end]


def levenshtein(a: str, b: str) -> int:
    """Edit distance by Hyyrö's bit-vector algorithm: one pass of int operations per char."""
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return len(a)
    m = len(b)
    masks: dict[str, int] = {}
    for i, ch in enumerate(b):
        masks[ch] = masks.get(ch, 0) | (1 << i)
    full = (1 << m) - 1
    top = 1 << (m - 1)
    pv, mv, score = full, 0, m
    for ch in a:
        eq = masks.get(ch, 0)
        xv = eq | mv
        xh = (((eq & pv) + pv) ^ pv) | eq
        ph = mv | (~(xh | pv) & full)
        mh = pv & xh
        if ph & top:
            score += 1
        elif mh & top:
            score -= 1
        ph = ((ph << 1) | 1) & full
        mh = (mh << 1) & full
        pv = mh | (~(xv | ph) & full)
        mv = ph & xv
    return score


def survival(accepted: str, current: str) -> float:
    """The fraction of `accepted` still present in `current`: 1 - distance/len, floored at 0."""
    if not accepted:
        return 0.0
    return max(0.0, 1.0 - levenshtein(accepted, current) / len(accepted))


def common_ends(a: Sequence[Any], b: Sequence[Any]) -> tuple[int, int]:
    """How many items (characters, lines) `a` and `b` share at their start, and then at
    their end in what remains: the part that changed is `a[p : len(a) - s]`."""
    limit = min(len(a), len(b))
    p = 0
    while p < limit and a[p] == b[p]:
        p += 1
    s = 0
    while s < limit - p and a[-1 - s] == b[-1 - s]:
        s += 1
    return p, s


def diff_edits(old: str, new: str) -> list[tuple[int, int, str]]:
    """Edits (offset, removed, inserted) that turn `old` into `new`, last one first.

    Applied in the order given, each offset is valid in the text as it is at that moment
    (edits come from the end of the document towards its start). Used when a whole new
    text arrives (a full change, a file changed on disk) so spans still move precisely.
    """
    if old == new:
        return []
    p, s = common_ends(old, new)
    a, b = old[p : len(old) - s], new[p : len(new) - s]
    if not a or not b:
        return [(p, len(a), b)]
    by_lines = len(a) + len(b) > CHAR_DIFF_LIMIT
    a_units = a.splitlines(keepends=True) if by_lines else list(a)
    b_units = b.splitlines(keepends=True) if by_lines else list(b)
    starts = list(itertools.accumulate(map(len, a_units), initial=0))
    matcher = difflib.SequenceMatcher(None, a_units, b_units, autojunk=False)
    edits = [
        (p + starts[i1], starts[i2] - starts[i1], "".join(b_units[j1:j2]))
        for tag, i1, i2, j1, j2 in matcher.get_opcodes()
        if tag != "equal"
    ]
    edits.reverse()
    return edits
