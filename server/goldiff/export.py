"""Turn recorded suggestions and episodes into training rows: sft, preference, kto, edits.

The store holds, for every suggestion, the context it was made in (`prefix`/`suffix`), the
model's text, its outcome and, once settled, the gold (what occupied the span at settle,
or what the developer wrote instead of a rejected suggestion); for every episode the
region before the first suggestion, the region after settle and their gold diff. This
module reads those rows through filters, shapes them into the formats TRL's trainers and
HF `datasets` load unchanged (`prompt`/`completion`, `prompt`/`chosen`/`rejected`,
`prompt`/`completion`/`label`), runs a second redaction pass over every text field (a
secret typed across two edits can slip past the per-edit scan), drops duplicates, and can
split by time so that no context of the test rows ever appears in training. Row ids are a
hash of the suggestion or episode id and the format, and rows are written in time order,
so re-exporting the same store gives the same bytes and a later export diffs cleanly.

The edit prompt format (`format_edit_prompt`) is defined here because the `edits` export,
the frontier's edit prompt and a local edit model must agree on it to the character.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import json
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlite_utils

from goldiff.capture.redaction import mask_spans, secret_spans
from goldiff.errors import ExportError
from goldiff.prompts import (
    CHAT_SYSTEM_PROMPT,
    EDIT_CONTEXT_LINES,
    EDIT_CURSOR,
    EDIT_HISTORY,
    EDIT_REGION_END,
    EDIT_REGION_START,
    EDIT_SYSTEM_PROMPT,
    FIM_MIDDLE,
    FIM_PREFIX,
    FIM_SUFFIX,
    chat_user_message,
    edit_completion,
    fim_prompt,
    format_edit_prompt,
    parse_edit_completion,
)
from goldiff.protocol import camel

if TYPE_CHECKING:
    from goldiff.lsp import GoldiffServer

FORMATS: tuple[str, ...] = ("sft", "preference", "kto", "edits", "openai", "parquet")
# Shapes of rows; `openai` and `parquet` carry one of these (`--rows`).
ROW_FORMATS: tuple[str, ...] = ("sft", "preference", "kto", "edits")
OUTCOMES: tuple[str, ...] = ("accepted", "partial", "rejected", "pending")

# A suggestion counts as "survived" for KTO's label when this share of it was still there
# at its last survival checkpoint (outcomes records the share at 30 s ... 10 min).
KTO_SURVIVAL = 0.8
PROGRESS_EVERY = 1000

log = logging.getLogger(__name__)


class ExportCancelled(ExportError):
    """Raised inside the export worker when the editor cancelled the request."""


# The chat rows carry exactly the prompts the frontier and edit sources send (prompts.py).
OPENAI_COMPLETION_SYSTEM = CHAT_SYSTEM_PROMPT
OPENAI_EDIT_SYSTEM = EDIT_SYSTEM_PROMPT


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


# ---------------------------------------------------------------------------- edit prompt


# ---------------------------------------------------------------------------- filters


@dataclass(frozen=True)
class ExportFilters:
    """Which records to export. Every field left as None keeps everything."""

    since: float | None = None  # epoch seconds, inclusive
    until: float | None = None  # epoch seconds, exclusive
    workspace: str | None = None  # workspace folder URI (a path is turned into one)
    language: str | None = None  # LSP language id: python, typescript, ...
    source: str | None = None  # frontier | local | ...
    model: str | None = None
    outcome: tuple[str, ...] | None = None  # accepted | partial | rejected | pending
    min_survival: float | None = None  # share still present at the last checkpoint
    tests_passed: bool | None = None  # only rows whose episode's last test run passed (or failed)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | None) -> ExportFilters:
        """Filters from a JSON object (camelCase or snake_case keys), checked."""
        if not raw:
            return cls()
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in raw.items():
            name = "".join("_" + c.lower() if c.isupper() else c for c in key)
            if name not in known:
                raise ExportError(
                    f"unknown export filter {key!r}; use one of: "
                    + ", ".join(sorted(camel(n) for n in known))
                )
            values[name] = value
        return cls.build(**values)

    @classmethod
    def build(cls, **values: Any) -> ExportFilters:
        out: dict[str, Any] = {}
        for key in ("since", "until"):
            if values.get(key) is not None:
                out[key] = parse_time(values[key], key)
        for key in ("workspace", "language", "source", "model"):
            if values.get(key) is not None:
                out[key] = str(values[key])
        if out.get("workspace") and "://" not in out["workspace"]:
            from goldiff.capture.paths import path_to_uri

            out["workspace"] = path_to_uri(Path(out["workspace"]).expanduser().resolve())
        outcome = values.get("outcome")
        if outcome is not None:
            items = [outcome] if isinstance(outcome, str) else list(outcome)
            names = tuple(str(i).strip() for s in items for i in str(s).split(",") if str(i).strip())
            bad = [n for n in names if n not in OUTCOMES]
            if bad:
                raise ExportError(f"unknown outcome {bad[0]!r}; use one of: {', '.join(OUTCOMES)}")
            out["outcome"] = names
        if values.get("min_survival") is not None:
            try:
                share = float(values["min_survival"])
            except (TypeError, ValueError):
                share = math.nan
            if not 0.0 <= share <= 1.0:
                raise ExportError("minSurvival is a share between 0 and 1, e.g. 0.8")
            out["min_survival"] = share
        if values.get("tests_passed") is not None:
            out["tests_passed"] = bool(values["tests_passed"])
        return cls(**out)

    def as_dict(self) -> dict[str, Any]:
        return {
            camel(f.name): getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None
        }


def parse_time(value: Any, what: str = "time") -> float:
    """Epoch seconds from a number or an ISO 8601 date/time (UTC when no zone is given)."""
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        pass
    from datetime import UTC, datetime

    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ExportError(
            f"cannot read {what} {value!r}: give epoch seconds or an ISO date like 2026-11-27T09:00"
        ) from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


# ---------------------------------------------------------------------------- records


@dataclass
class SuggestionRecord:
    """A suggestion with its document's provenance, as read from the store."""

    id: str
    ts: float
    source: str | None
    model: str | None
    outcome: str | None
    reason: str | None
    shadow: bool
    prefix: str
    suffix: str
    text: str
    gold: str | None
    survival: dict[str, float] | None
    latency_ms: float | None
    accepted_length: int | None
    workspace: str | None
    path: str | None
    language: str | None
    tests_passed: bool | None
    episode_id: str | None

    @property
    def final_survival(self) -> float | None:
        return final_survival(self.survival)


@dataclass
class EpisodeRecord:
    id: str
    ts: float  # when it settled (or started, while open)
    started_at: float | None
    kind: str | None
    source: str | None
    model: str | None
    outcome: str | None
    document_id: str | None
    start_offset: int | None
    end_offset: int | None
    before: str
    after: str
    gold_diff: str
    tests_passed: bool | None
    detail: dict[str, Any]
    workspace: str | None
    path: str | None
    language: str | None


def final_survival(survival: Mapping[str, Any] | None) -> float | None:
    """The share at the latest checkpoint (keys are seconds after acceptance)."""
    if not survival:
        return None
    points = []
    for key, value in survival.items():
        try:
            points.append((float(key), float(value)))
        except (TypeError, ValueError):
            continue  # "reverted" and other flags
    if not points:
        return None
    return max(points)[1]


def survival_points(survival: Mapping[str, Any] | None) -> list[dict[str, float]] | None:
    """Survival as a list of fixed-shape points, oldest first.

    A list of `{afterSeconds, share}` keeps one schema whatever checkpoints a store used,
    so Parquet and `datasets` do not invent null-filled columns for missing ones.
    """
    if not survival:
        return None
    points = []
    for key, value in survival.items():
        try:
            points.append({"after_seconds": float(key), "share": float(value)})
        except (TypeError, ValueError):
            continue
    return sorted(points, key=lambda p: p["after_seconds"]) or None


def _json(value: Any) -> Any:
    if value is None or value == "":
        return None
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return None


def _survival(value: Any) -> dict[str, float] | None:
    data = _json(value)
    if not isinstance(data, dict):
        return None
    out: dict[str, float] = {}
    for key, share in data.items():
        try:
            out[str(key)] = float(share)
        except (TypeError, ValueError):
            continue
    return out or None


def _where(filters: ExportFilters, ts: str, source: str, doc: str = "d") -> tuple[list[str], list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if filters.since is not None:
        clauses.append(f"{ts} >= ?")
        params.append(filters.since)
    if filters.until is not None:
        clauses.append(f"{ts} < ?")
        params.append(filters.until)
    if filters.workspace is not None:
        clauses.append(f"{doc}.workspace = ?")
        params.append(filters.workspace.rstrip("/"))
    if filters.language is not None:
        clauses.append(f"{doc}.language = ?")
        params.append(filters.language)
    if filters.source is not None:
        clauses.append(f"{source} = ?")
        params.append(filters.source)
    return clauses, params


def count_suggestions(db: sqlite_utils.Database, filters: ExportFilters) -> int:
    clauses, params = _suggestion_where(filters)
    sql = (
        "SELECT COUNT(*) FROM suggestions s LEFT JOIN documents d ON d.id = s.document_id "
        "LEFT JOIN episodes e ON e.id = s.episode_id"
    )
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    return int(db.execute(sql, params).fetchone()[0])


def _suggestion_where(filters: ExportFilters) -> tuple[list[str], list[Any]]:
    clauses, params = _where(filters, "s.ts", "s.source")
    if filters.model is not None:
        clauses.append("s.model = ?")
        params.append(filters.model)
    if filters.outcome:
        named = [o for o in filters.outcome if o != "pending"]
        parts = []
        if named:
            parts.append(f"s.outcome IN ({', '.join('?' for _ in named)})")
            params.extend(named)
        if "pending" in filters.outcome:
            parts.append("s.outcome IS NULL")
        clauses.append("(" + " OR ".join(parts) + ")")
    if filters.tests_passed is not None:
        clauses.append("e.tests_passed = ?")
        params.append(1 if filters.tests_passed else 0)
    return clauses, params


def iter_suggestions(db: sqlite_utils.Database, filters: ExportFilters) -> Iterator[SuggestionRecord]:
    """Suggestions matching `filters`, oldest first (shown before shadow at equal times)."""
    clauses, params = _suggestion_where(filters)
    sql = (
        "SELECT s.id, s.ts, s.source, s.model, s.outcome, s.reason, s.shadow_of, s.prefix, s.suffix, "
        "s.text, s.gold, s.survival, s.latency_ms, s.accepted_length, d.workspace, d.path, "
        "d.language, e.tests_passed, s.episode_id "
        "FROM suggestions s LEFT JOIN documents d ON d.id = s.document_id "
        "LEFT JOIN episodes e ON e.id = s.episode_id"
    )
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    sql += " ORDER BY s.ts, s.shadow_of IS NOT NULL, s.id"
    for r in db.execute(sql, params):
        record = SuggestionRecord(
            id=r[0],
            ts=float(r[1] or 0.0),
            source=r[2],
            model=r[3],
            outcome=r[4],
            reason=r[5],
            shadow=r[6] is not None,
            prefix=r[7] or "",
            suffix=r[8] or "",
            text=r[9] or "",
            gold=r[10],
            survival=_survival(r[11]),
            latency_ms=r[12],
            accepted_length=r[13],
            workspace=r[14],
            path=r[15],
            language=r[16],
            tests_passed=None if r[17] is None else bool(r[17]),
            episode_id=r[18],
        )
        if filters.min_survival is not None:
            share = record.final_survival
            if share is None or share < filters.min_survival:
                continue
        yield record


def count_episodes(db: sqlite_utils.Database, filters: ExportFilters) -> int:
    clauses, params = _episode_where(filters)
    sql = "SELECT COUNT(*) FROM episodes e LEFT JOIN documents d ON d.id = e.document_id"
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    return int(db.execute(sql, params).fetchone()[0])


def _episode_where(filters: ExportFilters) -> tuple[list[str], list[Any]]:
    clauses, params = _where(filters, "COALESCE(e.ended_at, e.started_at)", "e.source")
    clauses.append("e.gold_diff IS NOT NULL AND e.gold_diff != ''")
    if filters.tests_passed is not None:
        clauses.append("e.tests_passed = ?")
        params.append(1 if filters.tests_passed else 0)
    return clauses, params


def iter_episodes(db: sqlite_utils.Database, filters: ExportFilters) -> Iterator[EpisodeRecord]:
    """Settled episodes (those with a gold diff) matching `filters`, oldest first."""
    clauses, params = _episode_where(filters)
    sql = (
        "SELECT e.id, COALESCE(e.ended_at, e.started_at), e.kind, e.source, e.document_id, "
        "e.start_offset, e.end_offset, e.before, e.after, e.gold_diff, e.tests_passed, e.detail, "
        "d.workspace, d.path, d.language, e.started_at "
        "FROM episodes e LEFT JOIN documents d ON d.id = e.document_id"
    )
    sql += " WHERE " + " AND ".join(clauses) + " ORDER BY 2, e.id"
    for r in db.execute(sql, params).fetchall():
        detail = _json(r[11])
        detail = detail if isinstance(detail, dict) else {}
        record = EpisodeRecord(
            id=r[0],
            ts=float(r[1] or 0.0),
            started_at=r[15],
            kind=r[2],
            source=r[3],
            model=detail.get("model"),
            outcome=detail.get("outcome", "settled"),
            document_id=r[4],
            start_offset=r[5],
            end_offset=r[6],
            before=r[7] or "",
            after=r[8] or "",
            gold_diff=r[9] or "",
            tests_passed=None if r[10] is None else bool(r[10]),
            detail=detail,
            workspace=r[12],
            path=r[13],
            language=r[14],
        )
        first = detail.get("suggestions")
        if record.model is None and isinstance(first, list) and first:
            row = db.execute(
                "SELECT model, outcome FROM suggestions WHERE id = ?", [str(first[0])]
            ).fetchone()
            if row is not None:
                record.model = row[0]
                record.outcome = detail.get("outcome", row[1] or record.outcome)
        if filters.model is not None and record.model != filters.model:
            continue
        if filters.outcome and (record.outcome or "pending") not in filters.outcome:
            continue
        yield record


# ---------------------------------------------------------------------------- redaction


class Redactor:
    """The second redaction pass, line by line with a cache.

    Exported contexts repeat the same lines many times (every suggestion in a file shares
    most of its prefix), and detection is per line, so caching per line gives the same
    masks as `redact(text)` at a fraction of the cost. Private key blocks span lines and
    are checked on the whole text.
    """

    def __init__(self, max_cache: int = 200_000) -> None:
        self._cache: dict[str, str] = {}
        self._max = max_cache

    def __call__(self, text: str | None) -> str:
        if not text:
            return text or ""
        if "PRIVATE KEY-----" in text:
            spans = secret_spans(text)
            return mask_spans(text, spans) if spans else text
        out = []
        for line in text.splitlines(keepends=True):
            done = self._cache.get(line)
            if done is None:
                spans = secret_spans(line)
                done = mask_spans(line, spans) if spans else line
                if len(self._cache) >= self._max:
                    self._cache.clear()
                self._cache[line] = done
            out.append(done)
        return "".join(out)


# ---------------------------------------------------------------------------- rows


def _provenance(
    fmt: str, record: SuggestionRecord | EpisodeRecord, source: str | None, ctx: str
) -> dict[str, Any]:
    return {
        "id": row_id(record.id, fmt),
        "ts": record.ts,
        "workspace": record.workspace,
        "path": record.path,
        "language": record.language,
        "source": source,
        "model": record.model,
        "outcome": record.outcome,
        "context_hash": ctx,
    }


@dataclass
class _Shaper:
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
        fmt = self.fmt
        gold = s.gold or ""
        settled = s.gold is not None and s.outcome in ("accepted", "partial", "rejected")
        if fmt == "sft":
            # Shadow suggestions were never shown, so they have no outcome, but the gold
            # of their context is as good as the shown one's (dedup keeps one of the two).
            if not gold or (not settled and not s.shadow):
                return []
            prefix, suffix, gold = self.redact(s.prefix), self.redact(s.suffix), self.redact(gold)
            if not self._fresh(prefix, suffix, gold):
                return []
            ctx = context_hash(prefix, suffix)
            row = _provenance(fmt, s, s.source, ctx)
            if self.no_code:
                return [{**row, **_suggestion_metrics(s)}]
            text = self.redact(s.text)
            row.update(
                prompt=fim_prompt(prefix, suffix),
                completion=gold,
                prefix=prefix,
                suffix=suffix,
                suggestion=text,
                latency_ms=s.latency_ms,
                survival=survival_points(s.survival),
                tests_passed=s.tests_passed,
            )
            return [row]
        if s.shadow or not settled:
            return []  # a hidden suggestion carries no judgement of the developer's
        if fmt == "preference":
            if not gold or not s.text or gold == s.text:
                return []
            prefix, suffix = self.redact(s.prefix), self.redact(s.suffix)
            chosen, rejected = self.redact(gold), self.redact(s.text)
            if chosen == rejected or not self._fresh(prefix, suffix, chosen, rejected):
                return []
            row = _provenance(fmt, s, s.source, context_hash(prefix, suffix))
            if self.no_code:
                return [{**row, **_suggestion_metrics(s)}]
            row.update(
                prompt=fim_prompt(prefix, suffix),
                chosen=chosen,
                rejected=rejected,
                prefix=prefix,
                suffix=suffix,
                survival=survival_points(s.survival),
            )
            return [row]
        if fmt == "kto":
            if not s.text:
                return []
            label = kto_label(s)
            prefix, suffix, text = self.redact(s.prefix), self.redact(s.suffix), self.redact(s.text)
            if not self._fresh(prefix, suffix, text, str(label)):
                return []
            row = _provenance(fmt, s, s.source, context_hash(prefix, suffix))
            if self.no_code:
                return [{**row, **_suggestion_metrics(s), "label": label}]
            row.update(
                prompt=fim_prompt(prefix, suffix),
                completion=text,
                label=label,
                prefix=prefix,
                suffix=suffix,
                survival=survival_points(s.survival),
            )
            return [row]
        raise AssertionError(fmt)

    def episode_rows(self, e: EpisodeRecord) -> list[dict[str, Any]]:
        view = edit_view(self.db, e) if self.db is not None else _detail_view(e)
        region = self.redact(e.before)
        after = self.redact(e.after)
        before_ctx = self.redact(view.context_before)
        after_ctx = self.redact(view.context_after)
        history = [self.redact(d) for d in view.recent_edits]
        instruction = self.redact(view.instruction) if view.instruction else None
        prompt = format_edit_prompt(
            path=e.path or "untitled",
            region=region,
            cursor=view.cursor,
            context_before=before_ctx,
            context_after=after_ctx,
            recent_edits=history,
            instruction=instruction,
            language=e.language,
        )
        if not self._fresh(prompt, after):
            return []
        row = _provenance("edits", e, e.source, context_hash(before_ctx, region, after_ctx))
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
    gold = s.gold or ""
    return {
        # Names of places are code too: keep them groupable, not readable.
        "workspace": _anon(s.workspace),
        "path": _anon(s.path),
        "reason": s.reason,
        "shadow": s.shadow,
        "prefix_chars": len(s.prefix),
        "suffix_chars": len(s.suffix),
        "suggestion_chars": len(s.text),
        "gold_chars": len(gold) if s.gold is not None else None,
        "exact": s.gold is not None and s.text == gold,
        "accepted_length": s.accepted_length,
        "latency_ms": s.latency_ms,
        "survival": survival_points(s.survival),
        "tests_passed": s.tests_passed,
    }


def _episode_metrics(e: EpisodeRecord) -> dict[str, Any]:
    added = removed = 0
    for line in e.gold_diff.splitlines():
        if line.startswith("+") and not line.startswith("+++"):
            added += 1
        elif line.startswith("-") and not line.startswith("---"):
            removed += 1
    return {
        "workspace": _anon(e.workspace),
        "path": _anon(e.path),
        "kind": e.kind,
        "before_chars": len(e.before),
        "after_chars": len(e.after),
        "lines_added": added,
        "lines_removed": removed,
        "tests_passed": e.tests_passed,
    }


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

    Without recorded context, the document is replayed from the store up to the episode's
    start and the episode's `before` is looked up there (`start_offset` is where the
    region sits once settled, so edits above it may have moved it: the occurrence nearest
    to it wins). The lines around it become the excerpt's context, the last edits before
    it the diff history, and the first suggestion's position the cursor.
    """
    view = _detail_view(e)
    if view.context_before or view.context_after or view.recent_edits or e.document_id is None:
        return view
    # The first suggestion names the document version the episode started from; versions
    # are exact where wall-clock times of the editor and the tracker may differ a little.
    first = e.detail.get("suggestions")
    opener = None
    if isinstance(first, list) and first:
        opener = db.execute(
            "SELECT offset, version FROM suggestions WHERE id = ?", [str(first[0])]
        ).fetchone()
    version = opener[1] if opener is not None else None
    until = e.started_at if e.started_at is not None else e.ts
    text, history = _replay(db, e.document_id, e.path or "file", until=until, version=version)
    start = _nearest(text, e.before, e.start_offset or 0)
    if start is None:
        return view
    end = start + len(e.before)
    top = start
    for _ in range(EDIT_CONTEXT_LINES):
        if top == 0:
            break
        top = text.rfind("\n", 0, top - 1) + 1
    bottom = end
    for _ in range(EDIT_CONTEXT_LINES):
        nl = text.find("\n", bottom)
        bottom = len(text) if nl == -1 else nl + 1
        if nl == -1:
            break
    view.context_before = text[top:start]
    view.context_after = text[end:bottom]
    view.recent_edits = history
    if view.cursor is None and opener is not None and opener[0] is not None and start <= opener[0] <= end:
        view.cursor = opener[0] - start
    return view


def _nearest(text: str, needle: str, near: int) -> int | None:
    """The start of the occurrence of `needle` in `text` closest to `near`, if any."""
    if not needle:
        return None
    best: int | None = None
    at = text.find(needle)
    while at != -1:
        if best is None or abs(at - near) < abs(best - near):
            best = at
        at = text.find(needle, at + 1)
    return best


def _replay(
    db: sqlite_utils.Database, document_id: str, path: str, *, until: float, version: int | None
) -> tuple[str, list[str]]:
    """The document's recorded text at `version` (else at time `until`) and its last edits.

    The edits come back as small unified diffs, oldest first. A coalesced typing run that
    goes past `version` is cut where the version ends, as `goldiff show` does.
    """
    if version is not None:
        where, param = "version_first <= ?", float(version)
    else:
        where, param = "ts <= ?", until
    rows = db.execute(
        "SELECT kind, offset, removed, inserted, snapshot, version, version_first FROM edits "
        f"WHERE document_id = ? AND {where} ORDER BY seq",
        [document_id, param],
    ).fetchall()
    text = ""
    recent: deque[tuple[str, str]] = deque(maxlen=EDIT_HISTORY)
    for kind, offset, removed, inserted, snapshot, ver, ver_first in rows:
        if snapshot is not None and inserted is None:
            snap = db.execute("SELECT text FROM snapshots WHERE hash = ?", [snapshot]).fetchone()
            new = str(snap[0]) if snap else ""
        else:
            ins = inserted or ""
            if version is not None and ver is not None and ver_first is not None and ver > version:
                ins = ins[: version - ver_first + 1]
            new = text[:offset] + ins + text[offset + (removed or 0) :]
        if kind in ("change", "external") and text and new != text:
            recent.append((text, new))
        text = new
    return text, edit_history(recent, path)


def edit_history(changes: Iterable[tuple[str, str]], path: str) -> list[str]:
    """Recent edits as the edit prompt shows them: one small unified diff per change.

    Shared by the `edits` export and the server's edit requests, so a model trained on
    the export sees at serving time exactly the history it was trained with.
    """
    diffs = []
    for old, new in changes:
        diff = "".join(
            difflib.unified_diff(
                old.splitlines(keepends=True), new.splitlines(keepends=True), f"a/{path}", f"b/{path}", n=1
            )
        )
        if diff:
            diffs.append(diff if diff.endswith("\n") else diff + "\n")
    return diffs


# ---------------------------------------------------------------------------- openai rows


def openai_row(row: dict[str, Any], base: str) -> dict[str, Any]:
    """A chat fine-tuning row (`messages`) from an sft or edits row."""
    if base == "edits":
        system, user = OPENAI_EDIT_SYSTEM, row["prompt"]
        answer = row["completion"]
    elif base == "sft":
        system = OPENAI_COMPLETION_SYSTEM
        user = chat_user_message(
            prefix=row["prefix"], suffix=row["suffix"], path=row.get("path"), language=row.get("language")
        )
        answer = row["completion"]
    else:
        raise ExportError(f"the openai format carries sft or edits rows, not {base}; use --rows sft")
    keep = ("id", "ts", "workspace", "path", "language", "source", "model", "outcome", "context_hash")
    out = {k: row[k] for k in keep}
    out["id"] = row_id(row["id"], "openai")
    out["messages"] = [
        {"role": "system", "content": system},
        {"role": "user", "content": user},
        {"role": "assistant", "content": answer},
    ]
    return out


# ---------------------------------------------------------------------------- split


@dataclass
class Split:
    train: list[dict[str, Any]]
    test: list[dict[str, Any]]
    leaked: int  # training rows dropped because their context is in the test split
    cutoff: float | None


def split_rows(
    rows: Sequence[dict[str, Any]], *, test_fraction: float = 0.1, split_at: float | None = None
) -> Split:
    """Split by time: the newest rows are the test set; their contexts never train.

    Without `split_at`, the cutoff is the time of the row at `1 - test_fraction` of the
    way through. Every row at or after the cutoff is a test row; a training row is dropped
    (not moved) when its `context_hash` is also a test row's, so a model is never
    evaluated on a context it saw in training.
    """
    if split_at is None:
        if not 0.0 < test_fraction < 1.0:
            raise ExportError("the test fraction is a share between 0 and 1, e.g. 0.1")
        if len(rows) < 2:
            raise ExportError(
                f"a train/test split needs at least 2 rows; this export has {len(rows)}. "
                "Record more suggestions, widen the filters, or export without --split."
            )
        times = sorted(r["ts"] for r in rows)
        index = min(max(1, math.floor(len(times) * (1.0 - test_fraction))), len(times) - 1)
        split_at = times[index]
    test = [r for r in rows if r["ts"] >= split_at]
    held = {r["context_hash"] for r in test}
    train: list[dict[str, Any]] = []
    leaked = 0
    for r in rows:
        if r["ts"] >= split_at:
            continue
        if r["context_hash"] in held:
            leaked += 1
            continue
        train.append(r)
    return Split(train=train, test=test, leaked=leaked, cutoff=split_at)


# ---------------------------------------------------------------------------- export


@dataclass
class ExportOptions:
    format: str = "sft"
    rows: str | None = None  # row shape for openai / parquet (default sft)
    filters: ExportFilters = field(default_factory=ExportFilters)
    split: bool = False
    test_fraction: float = 0.1
    split_at: float | None = None
    no_code: bool = False

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ExportError(f"unknown export format {self.format!r}; use one of: {', '.join(FORMATS)}")
        if self.rows is not None and self.rows not in ROW_FORMATS:
            raise ExportError(f"unknown row shape {self.rows!r}; use one of: {', '.join(ROW_FORMATS)}")
        if self.rows is not None and self.format not in ("openai", "parquet"):
            raise ExportError("--rows applies to the openai and parquet formats only")
        if self.format == "openai" and self.rows not in (None, "sft", "edits"):
            raise ExportError("the openai format carries sft or edits rows; use --rows sft or --rows edits")
        if self.format == "openai" and self.no_code:
            raise ExportError("a metrics-only export has no messages; use --format sft --no-code")

    @property
    def shape(self) -> str:
        """The row shape the records are turned into first."""
        if self.format in ("openai", "parquet"):
            return self.rows or "sft"
        return self.format

    @property
    def extension(self) -> str:
        return ".parquet" if self.format == "parquet" else ".jsonl"


@dataclass
class ExportResult:
    format: str
    shape: str
    paths: dict[str, Path]
    counts: dict[str, int]
    duplicates: int
    leaked: int
    cutoff: float | None
    export_id: str
    filters: dict[str, Any]
    no_code: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "rows": self.shape,
            "paths": {k: str(v) for k, v in self.paths.items()},
            "counts": self.counts,
            "duplicatesDropped": self.duplicates,
            "leakedDropped": self.leaked,
            "splitAt": self.cutoff,
            "exportId": self.export_id,
            "filters": self.filters,
            "noCode": self.no_code,
        }


Progress = Callable[[int, int], None]


def _identity(text: str | None) -> str:
    return text or ""


def build_rows(
    db: sqlite_utils.Database,
    options: ExportOptions,
    progress: Progress | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """Rows of `options.shape` for the records that pass the filters; and duplicates dropped."""
    # A metrics-only export writes no text, so it needs no second redaction pass.
    redact: Callable[[str | None], str] = _identity if options.no_code else Redactor()
    shaper = _Shaper(options.shape, no_code=options.no_code, db=db, redact=redact)
    rows: list[dict[str, Any]] = []
    records: Iterable[SuggestionRecord | EpisodeRecord]
    if options.shape == "edits":
        total = count_episodes(db, options.filters)
        records = iter_episodes(db, options.filters)
    else:
        total = count_suggestions(db, options.filters)
        records = iter_suggestions(db, options.filters)
    if progress:
        progress(0, total)
    for done, record in enumerate(records, 1):
        if isinstance(record, EpisodeRecord):
            rows.extend(shaper.episode_rows(record))
        elif isinstance(record, SuggestionRecord):
            rows.extend(shaper.suggestion_rows(record))
        if progress and done % PROGRESS_EVERY == 0:
            progress(done, total)
    if progress:
        progress(total, total)
    if options.format == "openai":
        rows = [openai_row(r, options.shape) for r in rows]
    return rows, shaper.duplicates


def export(
    db: sqlite_utils.Database,
    options: ExportOptions,
    out: Path,
    progress: Progress | None = None,
) -> ExportResult:
    """Write the export. Without a split `out` is a file; with one, a folder.

    A split writes `train` and `test` files and a `manifest.json` into the folder `out`.
    """
    rows, duplicates = build_rows(db, options, progress)
    ext = options.extension
    paths: dict[str, Path] = {}
    counts: dict[str, int] = {}
    leaked = 0
    cutoff: float | None = None
    export_id = hashlib.blake2b("\n".join(r["id"] for r in rows).encode(), digest_size=8).hexdigest()
    try:
        if options.split:
            parts = split_rows(rows, test_fraction=options.test_fraction, split_at=options.split_at)
            leaked, cutoff = parts.leaked, parts.cutoff
            out.mkdir(parents=True, exist_ok=True)
            chunks = {"train": parts.train, "test": parts.test}
            schema = _parquet_schema(rows) if options.format == "parquet" else None
            for name, chunk in chunks.items():
                paths[name] = out / f"{name}{ext}"
                _write(paths[name], chunk, options.format, schema)
                counts[name] = len(chunk)
        else:
            if out.suffix == "" and ext:
                out = out.with_suffix(ext)
            out.parent.mkdir(parents=True, exist_ok=True)
            _write(out, rows, options.format, _parquet_schema(rows) if options.format == "parquet" else None)
            paths["all"] = out
            counts["all"] = len(rows)
        if options.format == "openai":
            paths.update({f"{name}_meta": meta_path(p) for name, p in list(paths.items())})
    except OSError as exc:
        raise ExportError(f"cannot write the export to {out}: {exc.strerror or exc}") from exc
    result = ExportResult(
        format=options.format,
        shape=options.shape,
        paths=paths,
        counts=counts,
        duplicates=duplicates,
        leaked=leaked,
        cutoff=cutoff,
        export_id=export_id,
        filters=options.filters.as_dict(),
        no_code=options.no_code,
    )
    if options.split:
        manifest = {**result.as_dict(), "createdAt": time.time()}
        manifest["paths"] = {k: v.name for k, v in paths.items()}
        (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return result


def meta_path(path: Path) -> Path:
    """Where an openai export keeps each line's id and provenance: `NAME.meta.jsonl`."""
    return path.with_name(path.name.removesuffix(".jsonl") + ".meta.jsonl")


def _write(path: Path, rows: list[dict[str, Any]], fmt: str, schema: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    if fmt == "openai":
        # OpenAI's fine-tuning upload refuses any key beside `messages`, so the id and
        # provenance go to a sidecar file, line for line.
        provenance = [{k: v for k, v in r.items() if k != "messages"} for r in rows]
        _write(meta_path(path), provenance, "jsonl", None)
        rows = [{"messages": r["messages"]} for r in rows]
    if fmt == "parquet":
        pa, pq = import_pyarrow()
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), str(tmp))
    else:
        with tmp.open("w", encoding="utf-8", newline="\n") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")))
                fh.write("\n")
    tmp.replace(path)  # a reader never sees half an export


def import_pyarrow(
    missing: str = "the parquet format needs pyarrow: pip install 'goldiff[parquet]' (or goldiff[train])",
) -> tuple[Any, Any]:
    """`(pyarrow, pyarrow.parquet)`, or an `ExportError` saying `missing` when not installed."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise ExportError(missing) from exc
    return pa, pq


def _parquet_schema(rows: list[dict[str, Any]]) -> Any:
    """One schema for train and test alike, inferred from all rows (nulls need a type)."""
    pa, _ = import_pyarrow()
    if not rows:
        return pa.schema([("id", pa.string())])
    return pa.Table.from_pylist(rows).schema


def default_out(exports: Path, options: ExportOptions, now: float | None = None) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now if now is not None else time.time()))
    name = f"{options.format}-{stamp}"
    return exports / name if options.split else exports / f"{name}{options.extension}"


def load_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of an export file (JSONL or Parquet), or of a split folder's test file."""
    if path.is_dir():
        for name in ("test.jsonl", "test.parquet"):
            if (path / name).exists():
                return load_rows(path / name)
        raise ExportError(f"{path} holds no test.jsonl or test.parquet; export with --split first")
    if not path.exists():
        raise ExportError(f"no export at {path}")
    if path.suffix == ".parquet":
        _, pq = import_pyarrow()
        return list(pq.read_table(str(path)).to_pylist())
    rows = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except ValueError as exc:
                    raise ExportError(f"{path}:{n} is not a JSON line: {exc}") from exc
    return rows


__all__ = [
    "EDIT_CURSOR",
    "EDIT_HISTORY",
    "EDIT_REGION_END",
    "EDIT_REGION_START",
    "FIM_MIDDLE",
    "FIM_PREFIX",
    "FIM_SUFFIX",
    "FORMATS",
    "ROW_FORMATS",
    "ExportFilters",
    "ExportOptions",
    "ExportResult",
    "edit_completion",
    "export",
    "fim_prompt",
    "format_edit_prompt",
    "load_rows",
    "parse_edit_completion",
    "split_rows",
]


# ---------------------------------------------------------------------------- LSP


# Keys of `goldiff.exportTraces`' `filters` object that are export options, not filters.
_OPTION_KEYS = {"split", "testFraction", "splitAt", "noCode", "rows"}


def options_from_wire(fmt: str, raw: Mapping[str, Any] | None) -> ExportOptions:
    """`ExportOptions` from the `goldiff.exportTraces` arguments (camelCase filters)."""
    raw = dict(raw or {})
    opts = {k: raw.pop(k) for k in list(raw) if k in _OPTION_KEYS}
    split_at = parse_time(opts["splitAt"], "splitAt") if opts.get("splitAt") is not None else None
    try:
        fraction = float(opts.get("testFraction", 0.1))
    except (TypeError, ValueError) as exc:
        raise ExportError("testFraction is a share between 0 and 1, e.g. 0.1") from exc
    return ExportOptions(
        format=fmt,
        rows=opts.get("rows"),
        filters=ExportFilters.from_mapping(raw),
        split=bool(opts.get("split")) or split_at is not None,
        test_fraction=fraction,
        split_at=split_at,
        no_code=bool(opts.get("noCode")),
    )


async def export_for_server(ls: GoldiffServer, args: Sequence[Any]) -> dict[str, Any]:
    import asyncio
    import uuid

    from lsprotocol import types

    from goldiff import protocol
    from goldiff.home import exports_dir

    try:
        params = protocol.structure(list(args), protocol.ExportArgs)
    except protocol.PayloadError as exc:
        raise ExportError(str(exc)) from exc
    options = options_from_wire(params.format, params.filters)
    exports = exports_dir(ls.home)
    out = Path(params.path).expanduser() if params.path else default_out(exports, options)
    if not out.is_absolute():
        out = exports / out
    ls.store.flush()  # what the editor sent up to now belongs in the export

    # The editor shows a long export's progress when it supports work-done progress.
    caps = ls.client_capabilities
    token: str | None = None
    if caps is not None and caps.window is not None and caps.window.work_done_progress:
        token = f"goldiff-export-{uuid.uuid4().hex[:12]}"
        try:
            await ls.work_done_progress.create_async(token)
            ls.work_done_progress.begin(
                token, types.WorkDoneProgressBegin(title=f"Goldiff: exporting {options.format}", percentage=0)
            )
        except Exception:  # the client refused: export without progress
            token = None
    loop = asyncio.get_running_loop()
    # Set when the editor cancels the request: the worker thread stops at its next
    # progress step, and a file it finished meanwhile is removed, so cancel leaves nothing.
    cancelled = threading.Event()

    def report(done: int, total: int) -> None:
        if cancelled.is_set():
            raise ExportCancelled("the export was cancelled")
        if token is None or not total:
            return
        value = types.WorkDoneProgressReport(message=f"{done}/{total}", percentage=int(100 * done / total))
        loop.call_soon_threadsafe(ls.work_done_progress.report, token, value)

    def run() -> ExportResult | None:
        db = ls.store.reader()
        try:
            result = export(db, options, out, report)
        except ExportCancelled:
            return None
        finally:
            db.conn.close()
        if cancelled.is_set():
            for path in result.paths.values():
                path.unlink(missing_ok=True)
            return None
        return result

    work = asyncio.ensure_future(asyncio.to_thread(run))
    try:
        # Off the event loop: a long export must not stall typing and capture.
        result = await asyncio.shield(work)
    except asyncio.CancelledError:
        cancelled.set()
        with contextlib.suppress(Exception):
            await work  # the thread notices within one progress step
        log.info("export to %s cancelled", out)
        raise
    finally:
        if token is not None:
            ls.work_done_progress.end(token, types.WorkDoneProgressEnd())
    if result is None:  # cancelled from another path than this task
        raise ExportError("the export was cancelled")
    return result.as_dict()
