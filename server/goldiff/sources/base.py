"""What every completion source takes and gives, and the rules all of them share.

A source (the frontier over HTTP, a local GGUF through llama.cpp, the deterministic test
source) turns a `CompletionRequest` — the text before and after the cursor, the language,
the recent edits and related snippets — into a `Completion`: candidate texts with their
timing and token counts. `complete` blocks; the language server runs it in a worker
thread and sets the `cancel` event when the editor cancels the request, so a source checks
that event as often as it can (the local source: every token).

Post-processing is shared so that every source's suggestion obeys the same shape: the
`StopRule` decides where a suggestion ends (end of the line, or end of the block the cursor
is in), and `finish_text` trims what only repeats the text after the cursor.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Protocol

# How much of the document a request carries; sources cut further to their own budgets.
PREFIX_CHARS = 8_000
SUFFIX_CHARS = 2_000
MAX_BLOCK_LINES = 16  # a multi-line suggestion longer than this is cut at a line end
PREFIX_STEP = 1024  # the prefix excerpt's start moves in steps, to keep the model's KV cache useful

_OPENERS = (":", "{", "(", "[", "=>", "->")
_CLOSERS = set(")]}\"'`;,")


def prefix_excerpt(before: str, limit: int = PREFIX_CHARS, step: int = PREFIX_STEP) -> str:
    """The last `limit` characters before the cursor, starting at a stable line start."""
    if len(before) <= limit:
        return before
    start = (len(before) - limit) // step * step + step
    nl = before.find("\n", start)
    return before[nl + 1 :] if 0 <= nl < len(before) - 1 else before[start:]


@dataclass(frozen=True)
class RecentEdit:
    """One recent change in the document, as context (what the developer just did)."""

    offset: int
    removed: int
    inserted: str
    ts: float


@dataclass(frozen=True)
class Snippet:
    """A piece of another open file that looks related to the code at the cursor."""

    path: str
    text: str


@dataclass
class CompletionRequest:
    """Everything a source may use to make one suggestion at one cursor position."""

    prefix: str  # text before the cursor (an excerpt of at most PREFIX_CHARS)
    suffix: str  # text after the cursor (at most SUFFIX_CHARS)
    language: str = ""
    path: str | None = None
    recent_edits: list[RecentEdit] = field(default_factory=list)
    snippets: list[Snippet] = field(default_factory=list)
    max_tokens: int = 64
    max_seconds: float = 2.0  # wall-clock budget for generation, prompt included
    # The document is captured: what the engine evaluated of it may be kept on disk. Never
    # for a file capture excludes, or with capture off (`sources/states.py`).
    captured: bool = False

    def stop_rule(self) -> StopRule:
        return StopRule.for_cursor(self.prefix, self.suffix)


@dataclass
class Completion:
    """A source's answer: candidate texts (best first) and what producing them cost."""

    candidates: list[str]
    source: str  # frontier | local | test
    model: str
    latency_ms: float = 0.0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    stop_reason: str = ""  # line | block | eos | max_tokens | max_time | cancelled | ...
    reused_tokens: int | None = None  # prompt tokens whose KV was reused (local only)
    raw_text: str = ""  # what the model produced before post-processing
    # log p of each generated token (local only; the raw generation, before trimming)
    token_logprobs: list[float] = field(default_factory=list)
    # the length of the raw text after each generated token: where a higher stop would
    # have cut it (`goldiff.gate.Answer.at_stop`)
    token_ends: list[int] = field(default_factory=list)
    gate_score: float | None = None  # the show/hide gate's P(kept), where a gate decided

    @property
    def text(self) -> str:
        return self.candidates[0] if self.candidates else ""


class CompletionSource(Protocol):
    """Anything that completes code: `kind` and `model` are recorded with each suggestion."""

    kind: str
    model: str

    def complete(self, request: CompletionRequest, cancel: threading.Event | None = None) -> Completion: ...

    def close(self) -> None: ...


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


@dataclass(frozen=True)
class StopRule:
    """Where a suggestion ends: at the end of the current line, or of the current block.

    In the middle of a line (text after the cursor) a suggestion finishes the line. On an
    empty line, or right after a line that opens a block (`:` / `{` / `(` ...), it may run
    over several lines until a line that is less indented than the block (the block ended),
    a blank line after code, or MAX_BLOCK_LINES.
    """

    multiline: bool
    min_indent: int  # a following line indented less than this ends the suggestion

    @classmethod
    def for_cursor(cls, prefix: str, suffix: str) -> StopRule:
        line_before = prefix[prefix.rfind("\n") + 1 :]
        line_after = suffix.split("\n", 1)[0]
        if line_after.strip() and not set(line_after.strip()) <= _CLOSERS:
            return cls(multiline=False, min_indent=0)
        if not line_before.strip():
            return cls(multiline=True, min_indent=len(line_before))
        if line_before.rstrip().endswith(_OPENERS):
            return cls(multiline=True, min_indent=_indent(line_before) + 1)
        return cls(multiline=False, min_indent=0)

    def cut(self, text: str) -> int | None:
        """Where `text` (generated so far) must end, or None to keep generating.

        Only complete lines are judged, so generation can stop as soon as a line ends.
        """
        start = 0
        lines = 0
        has_code = False
        while True:
            nl = text.find("\n", start)
            if nl == -1:
                return None
            line = text[start:nl]
            if not self.multiline:
                if line.strip() or start > 0:
                    return nl  # the line is finished
                start = nl + 1  # a leading newline right after an opener: keep going
                continue
            # The first line continues the cursor's own line: its indent is not its own.
            if lines > 0:
                blank = not line.strip()
                if (blank and has_code) or (not blank and _indent(line) < self.min_indent):
                    return start - 1
            has_code = has_code or bool(line.strip())
            lines += 1
            if lines >= MAX_BLOCK_LINES:
                return nl
            start = nl + 1


def finish_text(text: str, request: CompletionRequest, rule: StopRule | None = None) -> str:
    """Apply the stop rule to a finished generation and drop what only repeats the suffix."""
    rule = rule or request.stop_rule()
    end = rule.cut(text + "\n") if not text.endswith("\n") else rule.cut(text)
    if end is not None:
        text = text[:end]
    text = text.rstrip()
    # The cursor sits in the line's indentation: the model's own leading whitespace would
    # over-indent the line, and an editor takes Tab on ghost text that starts with
    # whitespace as "indent", never as "accept".
    line_before = request.prefix[request.prefix.rfind("\n") + 1 :]
    if not line_before.strip():
        first, sep, rest = text.partition("\n")
        text = first.lstrip(" \t") + sep + rest
    # A model often closes what the suffix already closes: "foo)" before ")" → "foo".
    rest_of_line = request.suffix.split("\n", 1)[0].strip()
    if rest_of_line and text.endswith(rest_of_line):
        text = text[: len(text) - len(rest_of_line)].rstrip()
    # A suggestion that is only the text already after the cursor (or blank) adds nothing.
    return "" if request.suffix.lstrip().startswith(text.strip()) else text


class Deadline:
    """A wall-clock budget: `left()` seconds remain, `expired` once they are spent."""

    def __init__(self, seconds: float) -> None:
        self.start = time.perf_counter()
        self.end = self.start + seconds

    def left(self) -> float:
        return max(0.0, self.end - time.perf_counter())

    @property
    def expired(self) -> bool:
        return time.perf_counter() >= self.end

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.start) * 1000.0
