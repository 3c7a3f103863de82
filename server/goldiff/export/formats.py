"""Records shaped into rows of one format: sft, preference, kto, edits and openai.

The shapes are the ones TRL's trainers and HF `datasets` load unchanged
(`prompt`/`completion`, `prompt`/`chosen`/`rejected`, `prompt`/`completion`/`label`).
Every prompt comes from `goldiff.prompts`, the same functions the sources serve with,
so a model trained on these rows is served the prompts it was trained on. Every text
field passes a second redaction (a secret typed across two edits can slip past the
per-edit scan), and a context seen before is dropped as a duplicate.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from goldiff.capture.redaction import redact
from goldiff.errors import NotRecordedError
from goldiff.outcomes.episodes import surroundings
from goldiff.prompts import (
    CHAT_SYSTEM_PROMPT,
    EDIT_HISTORY,
    EDIT_SYSTEM_PROMPT,
    chat_user_message,
    edit_completion,
    edit_history,
    fim_prompt,
    format_edit_prompt,
)
from goldiff.records import SETTLED, EpisodeRecord, SuggestionRecord, checkpoints, document_at, suggestion

# A suggestion counts as "survived" for KTO's label when this share of it was still there
# at its last survival checkpoint (outcomes records the share at 30 s ... 10 min).
KTO_SURVIVAL = 0.8


def context_hash(*parts: str) -> str:
    """Identity of a context for de-duplication and split leakage (blake2b-64)."""
    h = hashlib.blake2b(digest_size=8)
    for part in parts:
        data = part.encode("utf-8", "surrogatepass")
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def row_id(record_id: str, fmt: str) -> str:
    """A row's stable id: the same suggestion or episode in the same format, the same id."""
    return hashlib.blake2b(f"{fmt}\0{record_id}".encode(), digest_size=10).hexdigest()


def survival_points(survival: Mapping[str, Any] | None) -> list[dict[str, float]] | None:
    """Survival as a list of fixed-shape points, oldest first.

    A list of `{after_seconds, share}` keeps one schema whatever checkpoints a store used,
    so Parquet and `datasets` do not invent null-filled columns for missing ones.
    """
    return [{"after_seconds": at, "share": share} for at, share in checkpoints(survival)] or None


class Redactor:
    """The second redaction pass, line by line with a cache.

    Exported contexts repeat the same lines many times (every suggestion in a file shares
    most of its prefix), and detection is per line, so caching per line gives the same
    masks as `redact(text)` at a fraction of the cost. Private key blocks span lines and
    are checked on the whole text.
    """

    def __init__(self) -> None:
        self._line = functools.lru_cache(maxsize=200_000)(redact)

    def __call__(self, text: str | None) -> str:
        if not text:
            return text or ""
        if "PRIVATE KEY-----" in text:
            return redact(text)
        return "".join(self._line(line) for line in text.splitlines(keepends=True))


# What every row says of where it came from, between its `id` and its `context_hash`.
_PROVENANCE = ("ts", "workspace", "path", "language", "source", "model", "outcome")


def _provenance(fmt: str, record: SuggestionRecord | EpisodeRecord, ctx: str) -> dict[str, Any]:
    return {"id": row_id(record.id, fmt), **{k: getattr(record, k) for k in _PROVENANCE}, "context_hash": ctx}


@dataclass
class RowShaper:
    """Turns records into rows of one format; remembers duplicates it dropped."""

    fmt: str
    no_code: bool = False
    redact: Callable[[str | None], str] = field(default_factory=Redactor)
    db: sqlite_utils.Database | None = None
    seen: set[str] = field(default_factory=set)
    duplicates: int = 0

    def _fresh(self, *parts: str) -> bool:
        key = context_hash(*parts)
        if key in self.seen:
            self.duplicates += 1
            return False
        self.seen.add(key)
        return True

    def suggestion_rows(self, s: SuggestionRecord) -> list[dict[str, Any]]:
        fmt, gold = self.fmt, s.gold or ""
        settled = s.gold is not None and s.outcome in SETTLED
        if fmt == "sft":
            # Shadow suggestions were never shown, so they have no outcome, but the gold
            # of their context is as good as the shown one's (dedup keeps one of the two).
            if not gold or (not settled and not s.shadow):
                return []
        elif s.shadow or not settled or not s.text:
            return []  # a hidden suggestion carries no judgement of the developer's
        elif fmt == "preference" and (not gold or gold == s.text):
            return []
        prefix, suffix = self.redact(s.prefix), self.redact(s.suffix)
        answer: dict[str, Any]
        if fmt == "sft":
            answer = {"completion": self.redact(gold)}
        elif fmt == "preference":
            answer = {"chosen": self.redact(gold), "rejected": self.redact(s.text)}
            if answer["chosen"] == answer["rejected"]:
                return []
        else:  # kto
            answer = {"completion": self.redact(s.text), "label": kto_label(s)}
        if not self._fresh(prefix, suffix, *(str(v) for v in answer.values())):
            return []
        row = _provenance(fmt, s, context_hash(prefix, suffix))
        if self.no_code:
            return [{**row, **_suggestion_metrics(s), **({"label": answer["label"]} if fmt == "kto" else {})}]
        row.update(prompt=fim_prompt(prefix, suffix), **answer, prefix=prefix, suffix=suffix)
        if fmt == "sft":
            row.update(suggestion=self.redact(s.text), latency_ms=s.latency_ms)
        row["survival"] = survival_points(s.survival)
        if fmt == "sft":
            row["tests_passed"] = s.tests_passed
        return [row]

    def episode_rows(self, e: EpisodeRecord) -> list[dict[str, Any]]:
        view = edit_view(self.db, e) if self.db is not None else _detail_view(e)
        region = self.redact(e.before)
        after = self.redact(e.after)
        before_ctx = self.redact(view.context_before)
        after_ctx = self.redact(view.context_after)
        instruction = self.redact(view.instruction) if view.instruction else None
        prompt = format_edit_prompt(
            path=e.path or "untitled",
            region=region,
            cursor=view.cursor,
            context_before=before_ctx,
            context_after=after_ctx,
            recent_edits=[self.redact(d) for d in view.recent_edits],
            instruction=instruction,
            language=e.language,
        )
        if not self._fresh(prompt, after):
            return []
        row = _provenance("edits", e, context_hash(before_ctx, region, after_ctx))
        if self.no_code:
            return [{**row, **_episode_metrics(e)}]
        row.update(
            prompt=prompt,
            completion=edit_completion(after),
            before=region,
            after=after,
            gold_diff=self.redact(e.gold_diff),
            kind=e.kind,
            tests_passed=e.tests_passed,
        )
        return [row]


def kto_label(s: SuggestionRecord) -> bool:
    """Desirable when accepted (fully) and still mostly there at the last checkpoint."""
    if s.outcome != "accepted":
        return False
    share = s.final_survival
    if share is None:
        # No survival recorded: the settled gold tells whether it stayed.
        return s.gold is not None and s.gold.startswith(s.text)
    return share >= KTO_SURVIVAL


def _anon(value: str | None) -> str | None:
    return None if value is None else "h:" + context_hash(value)


def _suggestion_metrics(s: SuggestionRecord) -> dict[str, Any]:
    return {
        # Names of places are code too: keep them groupable, not readable.
        "workspace": _anon(s.workspace),
        "path": _anon(s.path),
        "reason": s.reason,
        "shadow": s.shadow,
        "prefix_chars": len(s.prefix),
        "suffix_chars": len(s.suffix),
        "suggestion_chars": len(s.text),
        "gold_chars": len(s.gold) if s.gold is not None else None,
        "exact": s.gold is not None and s.text == s.gold,
        "accepted_length": s.accepted_length,
        "latency_ms": s.latency_ms,
        "survival": survival_points(s.survival),
        "tests_passed": s.tests_passed,
    }


def _episode_metrics(e: EpisodeRecord) -> dict[str, Any]:
    lines = e.gold_diff.splitlines()
    return {
        "workspace": _anon(e.workspace),
        "path": _anon(e.path),
        "kind": e.kind,
        "before_chars": len(e.before),
        "after_chars": len(e.after),
        "lines_added": sum(1 for x in lines if x.startswith("+") and not x.startswith("+++")),
        "lines_removed": sum(1 for x in lines if x.startswith("-") and not x.startswith("---")),
        "tests_passed": e.tests_passed,
    }


# ---------------------------------------------------------------------------- edit context


@dataclass
class EditView:
    """What an edit prompt shows around an episode's region."""

    context_before: str = ""
    context_after: str = ""
    cursor: int | None = None
    recent_edits: list[str] = field(default_factory=list)
    instruction: str | None = None


def _detail_view(e: EpisodeRecord) -> EditView:
    d = e.detail
    edits = d.get("recent_edits") or d.get("recentEdits") or []
    cursor = d.get("cursor")
    return EditView(
        context_before=str(d.get("context_before") or d.get("contextBefore") or ""),
        context_after=str(d.get("context_after") or d.get("contextAfter") or ""),
        cursor=int(cursor) if isinstance(cursor, int | float) else None,
        recent_edits=[str(x) for x in edits if isinstance(x, str)],
        instruction=d.get("instruction") if isinstance(d.get("instruction"), str) else None,
    )


def edit_view(db: sqlite_utils.Database, e: EpisodeRecord) -> EditView:
    """The episode's surroundings: from its detail when recorded, else from the document.

    Without recorded context, the document is rebuilt from the store as it was when the
    episode started and the episode's `before` is looked up there (`start_offset` is where
    the region sits once settled, so edits above it may have moved it: the occurrence
    nearest to it wins). The lines around it become the excerpt's context, the last edits
    before it the diff history, and the first suggestion's position the cursor.
    """
    view = _detail_view(e)
    if view.context_before or view.context_after or view.recent_edits or e.document_id is None:
        return view
    # The first suggestion names the document version the episode started from; versions
    # are exact where wall-clock times of the editor and the tracker may differ a little.
    opener = suggestion(db, e.first_suggestion) if e.first_suggestion else None
    version = opener.version if opener is not None else None
    until = None if version is not None else e.started_at if e.started_at is not None else e.ts
    try:
        doc = document_at(db, e.document_id, version, until=until, history=EDIT_HISTORY)
    except NotRecordedError:
        return view
    offset = opener.offset if opener is not None else None
    found = surroundings(doc.text, e.before, e.start_offset or 0, offset)
    if not found:
        return view
    view.context_before = found["context_before"]
    view.context_after = found["context_after"]
    view.recent_edits = edit_history(doc.changes, e.path or "file")
    if view.cursor is None:
        view.cursor = found["cursor"]
    return view


def openai_row(row: dict[str, Any], base: str) -> dict[str, Any]:
    """A chat fine-tuning row (`messages`) from an sft or edits row: the prompts the sources send."""
    if base == "edits":
        system, user = EDIT_SYSTEM_PROMPT, row["prompt"]
    else:  # sft: `ExportOptions` lets the openai format carry no other shape
        system = CHAT_SYSTEM_PROMPT
        user = chat_user_message(
            prefix=row["prefix"], suffix=row["suffix"], path=row.get("path"), language=row.get("language")
        )
    out = {"id": row_id(row["id"], "openai"), **{k: row[k] for k in (*_PROVENANCE, "context_hash")}}
    out["messages"] = [
        {"role": "system", "content": system},
        {"role": "user", "content": user},
        {"role": "assistant", "content": row["completion"]},
    ]
    return out
