"""The simulated developer: where they edit, how they type, when they look at ghost text.

A commit's change to a file becomes hunks (line-level diff, then trimmed to the characters
that really changed, the way a developer edits only part of a line). Each hunk is
performed as one deletion of the old characters (select and delete) followed by typing
the new ones keystroke by keystroke; Enter brings the next line's indentation with it,
as an editor's auto-indent does. Inline completions are asked for where editors ask and
developers pause: at the start of a line, after `.` or `(`, and now and then after a word.
What the developer does with a suggestion depends only on what they really wrote next:
all of it matches → accept; its first words match → accept those words (partial);
otherwise → keep typing (typed over). Every choice draws from one seeded random stream
per (seed, commit, file), so a replay is reproducible and a resumed replay makes the same
choices as an uninterrupted one. Time is logical: pauses move a simulated clock, never a
real one.
"""

from __future__ import annotations

import difflib
import itertools
import random
import re
from dataclasses import dataclass

from goldiff.outcomes.spans import common_ends

WORD_TOKEN = re.compile(r"\w+|[ \t]+|\n[ \t]*|[^\w\s]")


@dataclass(frozen=True)
class Hunk:
    """Replace `removed` code points at `start` (in the text as it is when the hunk starts) with `text`."""

    start: int
    removed: int
    text: str


@dataclass(frozen=True)
class DeveloperProfile:
    """How the simulated developer behaves. Probabilities are per opportunity."""

    p_line_start: float = 0.5  # ask for a completion at the start of a new, non-empty line
    p_trigger_char: float = 0.6  # ... right after typing `.` or `(`
    p_word_pause: float = 0.08  # ... after finishing a word (a pause to think)
    keystroke_seconds: float = 0.14  # mean time between keystrokes (~85 words per minute)
    read_seconds: float = 0.8  # mean time spent reading a suggestion
    file_switch_seconds: float = 4.0  # opening the next file, finding the place


def hunks(before: str, after: str) -> list[Hunk]:
    """The edits that turn `before` into `after`, top to bottom, offsets already shifted.

    Each hunk's `start` is an offset into the text with all earlier hunks applied, so they
    can be performed in order.
    """
    if before == after:
        return []
    a = before.splitlines(keepends=True)
    b = after.splitlines(keepends=True)
    a_starts = list(itertools.accumulate(map(len, a), initial=0))
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    out: list[Hunk] = []
    delta = 0
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        if tag == "replace" and i2 - i1 == j2 - j1:
            # As many lines before as after: each line was edited in place, one by one.
            pairs = [(a_starts[i], a[i], b[j]) for i, j in zip(range(i1, i2), range(j1, j2), strict=True)]
        else:
            pairs = [(a_starts[i1], "".join(a[i1:i2]), "".join(b[j1:j2]))]
        for at, old, new in pairs:
            # Keep what both sides share at either end: the developer only retypes the middle.
            p, s = common_ends(old, new)
            old_mid = old[p : len(old) - s]
            new_mid = new[p : len(new) - s]
            if not old_mid and not new_mid:
                continue
            out.append(Hunk(start=at + p + delta, removed=len(old_mid), text=new_mid))
            delta += len(new_mid) - len(old_mid)
    return out


def next_keystroke(text: str, at: int) -> str:
    """The keystroke that types `text[at:]`'s start: Enter with the next line's indent, or one character."""
    ch = text[at]
    if ch == "\n":
        end = at + 1
        while end < len(text) and text[end] in " \t":
            end += 1
        return text[at:end]
    return ch


def accepted_length(suggestion: str, expected: str) -> int:
    """How much of `suggestion` a developer who goes on to write `expected` accepts.

    All of it when it is a prefix of `expected`; otherwise the longest run of whole words
    (the unit of an editor's "accept next word") that agrees with `expected`; 0 for none.
    """
    if not suggestion:
        return 0
    if expected.startswith(suggestion):
        return len(suggestion)
    agree = common_ends(suggestion, expected)[0]
    taken = 0
    for m in WORD_TOKEN.finditer(suggestion):
        if m.end() > agree:
            break
        taken = m.end()
    return taken


class Developer:
    """One file's worth of decisions, drawn from a seeded stream."""

    def __init__(self, profile: DeveloperProfile, seed: int, commit: str, path: str) -> None:
        self.profile = profile
        # A str seed is hashed with SHA-512 by `random`: stable across processes and runs.
        self.rng = random.Random(f"{seed}:{commit}:{path}")

    def wants_completion(self, typed_before: str, line_text_before: str, next_char: str) -> bool:
        """Ask for a completion here? `typed_before` is the last keystroke just typed."""
        p = self.profile
        if next_char == "\n":
            return False  # nothing left on this line to complete
        if typed_before.startswith("\n") or (typed_before == "" and not line_text_before.strip()):
            chance = p.p_line_start
        elif typed_before in (".", "("):
            chance = p.p_trigger_char
        elif typed_before[-1:].isalnum() and not (next_char.isalnum() or next_char == "_"):
            chance = p.p_word_pause
        else:
            return False
        return self.rng.random() < chance

    def keystroke_pause(self) -> float:
        return self.rng.expovariate(1.0 / self.profile.keystroke_seconds)

    def reading_pause(self) -> float:
        return self.rng.expovariate(1.0 / self.profile.read_seconds)

    def switch_pause(self) -> float:
        return self.rng.expovariate(1.0 / self.profile.file_switch_seconds)
