"""The trace store read back as typed records.

`store.py` writes; the readers (the export, `goldiff show` and `stats`, the gate, replay,
the demo) go through the `iter_*` / `count_*` functions here, which return dataclasses
rather than tuples, so a column renamed in a migration is followed in one place. A
document's text at any version is rebuilt in one place, `document_at`, which checks every
step against the hash the writer recorded with it.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from goldiff.errors import NotRecordedError
from goldiff.protocol import CHECKPOINTS
from goldiff.store import content_hash, snapshot

SETTLED = ("accepted", "partial", "rejected")


def _object(value: Any) -> dict[str, Any]:
    """A JSON column as a dict ({} when empty, invalid or not an object)."""
    try:
        data = json.loads(value) if value else None
    except (TypeError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _bool(value: Any) -> bool | None:
    return None if value is None else bool(value)


def checkpoints(survival: Mapping[str, Any] | None) -> list[tuple[float, float]]:
    """(seconds after acceptance, share still there) of each checkpoint, oldest first."""
    points = []
    for key, value in (survival or {}).items():
        try:
            points.append((float(key), float(value)))
        except (TypeError, ValueError):
            continue  # "reverted" and other flags
    return sorted(points)


# ---------------------------------------------------------------------------- filters


@dataclass(frozen=True)
class Filters:
    """Which suggestions and episodes to read. Every field left as None keeps everything."""

    since: float | None = None  # epoch seconds, inclusive
    until: float | None = None  # epoch seconds, exclusive
    workspace: str | None = None  # workspace folder URI
    uri: str | None = None  # one document's URI, as the editor sent it
    language: str | None = None  # LSP language id: python, typescript, ...
    source: str | None = None  # frontier | local | ...
    model: str | None = None
    outcome: tuple[str, ...] | None = None  # accepted | partial | rejected | pending
    min_survival: float | None = None  # share still present at the last checkpoint
    tests_passed: bool | None = None  # only rows whose episode's last test run passed (or failed)


def _and(clauses: list[str]) -> str:
    return " WHERE " + " AND ".join(clauses) if clauses else ""


def _where(filters: Filters, ts: str, source: str) -> tuple[list[str], list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    for clause, value in (
        (f"{ts} >= ?", filters.since),
        (f"{ts} < ?", filters.until),
        ("d.workspace = ?", filters.workspace.rstrip("/") if filters.workspace else None),
        ("d.uri = ?", filters.uri),
        ("d.language = ?", filters.language),
        (f"{source} = ?", filters.source),
        ("e.tests_passed = ?", None if filters.tests_passed is None else int(filters.tests_passed)),
    ):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    return clauses, params


# ---------------------------------------------------------------------------- suggestions


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
    survival: dict[str, Any] | None  # {"30": 1.0, ...}: read through `checkpoints`
    latency_ms: float | None
    accepted_length: int | None
    workspace: str | None
    path: str | None
    language: str | None
    tests_passed: bool | None
    episode_id: str | None
    document_id: str | None = None
    version: int | None = None  # the document version it was made for
    offset: int | None = None  # where in that version, in code points
    raw_context: str | None = None  # JSON: language, recent edits, logprobs, ...

    @property
    def final_survival(self) -> float | None:
        """The share at the latest checkpoint."""
        points = checkpoints(self.survival)
        return points[-1][1] if points else None

    @property
    def context(self) -> dict[str, Any]:
        return _object(self.raw_context)


_FROM_SUGGESTIONS = (
    "FROM suggestions s LEFT JOIN documents d ON d.id = s.document_id "
    "LEFT JOIN episodes e ON e.id = s.episode_id"
)
# Columns named as the record's fields, so a row becomes a record by name. The context
# (a few KiB per suggestion) is read only where it is asked for.
_SUGGESTIONS = (
    "SELECT s.id, COALESCE(s.ts, 0.0) AS ts, s.source, s.model, s.outcome, s.reason, "
    "s.shadow_of IS NOT NULL AS shadow, COALESCE(s.prefix, '') AS prefix, COALESCE(s.suffix, '') AS suffix, "
    "COALESCE(s.text, '') AS text, s.gold, s.survival, s.latency_ms, s.accepted_length, d.workspace, "
    "d.path, d.language, e.tests_passed, s.episode_id, s.document_id, s.version, s.offset, "
    f"{{context}} AS raw_context {_FROM_SUGGESTIONS}"
)


def _suggestion_where(filters: Filters) -> tuple[list[str], list[Any]]:
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
    return clauses, params


def _suggestion(row: dict[str, Any]) -> SuggestionRecord:
    row.update(ts=float(row["ts"]), shadow=bool(row["shadow"]), survival=_object(row["survival"]) or None)
    row["tests_passed"] = _bool(row["tests_passed"])
    return SuggestionRecord(**row)


def count_suggestions(
    db: sqlite_utils.Database, filters: Filters = Filters(), *, with_gold: bool = False
) -> int:
    """Suggestions matching `filters` (`with_gold`: only those whose gold is known)."""
    clauses, params = _suggestion_where(filters)
    if with_gold:
        clauses.append("s.gold IS NOT NULL")
    return int(db.execute(f"SELECT COUNT(*) {_FROM_SUGGESTIONS}{_and(clauses)}", params).fetchone()[0])


def iter_suggestions(
    db: sqlite_utils.Database, filters: Filters = Filters(), *, context: bool = False
) -> Iterator[SuggestionRecord]:
    """Suggestions matching `filters`, oldest first (shown before shadow at equal times)."""
    clauses, params = _suggestion_where(filters)
    sql = (
        _SUGGESTIONS.format(context="s.context" if context else "NULL")
        + _and(clauses)
        + " ORDER BY s.ts, s.shadow_of IS NOT NULL, s.id"
    )
    for row in db.query(sql, params):
        record = _suggestion(row)
        if filters.min_survival is not None:
            share = record.final_survival
            if share is None or share < filters.min_survival:
                continue
        yield record


def suggestion(db: sqlite_utils.Database, suggestion_id: str) -> SuggestionRecord | None:
    rows = list(db.query(_SUGGESTIONS.format(context="s.context") + " WHERE s.id = ?", [suggestion_id]))
    return _suggestion(rows[0]) if rows else None


# ---------------------------------------------------------------------------- episodes


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

    @property
    def first_suggestion(self) -> str | None:
        """The suggestion that opened a completion episode."""
        first = self.detail.get("suggestions")
        return str(first[0]) if isinstance(first, list) and first else None


_EPISODES = "FROM episodes e LEFT JOIN documents d ON d.id = e.document_id"


def _episode_where(filters: Filters) -> tuple[list[str], list[Any]]:
    clauses, params = _where(filters, "COALESCE(e.ended_at, e.started_at)", "e.source")
    clauses.append("e.gold_diff IS NOT NULL AND e.gold_diff != ''")
    return clauses, params


def count_episodes(db: sqlite_utils.Database, filters: Filters = Filters()) -> int:
    """Settled episodes (those with a gold diff) matching the SQL part of `filters`."""
    clauses, params = _episode_where(filters)
    return int(db.execute(f"SELECT COUNT(*) {_EPISODES}{_and(clauses)}", params).fetchone()[0])


def iter_episodes(db: sqlite_utils.Database, filters: Filters = Filters()) -> Iterator[EpisodeRecord]:
    """Settled episodes (those with a gold diff) matching `filters`, oldest first."""
    clauses, params = _episode_where(filters)
    sql = (
        "SELECT e.id, COALESCE(e.ended_at, e.started_at, 0.0) AS ts, e.started_at, e.kind, e.source, "
        "e.document_id, e.start_offset, e.end_offset, COALESCE(e.before, '') AS before, "
        "COALESCE(e.after, '') AS after, COALESCE(e.gold_diff, '') AS gold_diff, e.tests_passed, e.detail, "
        f"d.workspace, d.path, d.language {_EPISODES}{_and(clauses)} ORDER BY 2, e.id"
    )
    for row in list(db.query(sql, params)):
        detail = _object(row["detail"])
        row.update(ts=float(row["ts"]), detail=detail, tests_passed=_bool(row["tests_passed"]))
        record = EpisodeRecord(**row, model=detail.get("model"), outcome=detail.get("outcome", "settled"))
        first = record.first_suggestion
        opener = suggestion(db, first) if record.model is None and first else None
        if opener is not None:
            record.model = opener.model
            record.outcome = detail.get("outcome", opener.outcome or record.outcome)
        if filters.model is not None and record.model != filters.model:
            continue
        if filters.outcome and (record.outcome or "pending") not in filters.outcome:
            continue
        yield record


# ---------------------------------------------------------------------------- documents


@dataclass
class DocumentRecord:
    id: str  # one document as one session saw it
    skipped: str | None  # why its text is not recorded


def last_versions(db: sqlite_utils.Database, before: float) -> list[tuple[str, str, int]]:
    """(document id, URI, last version) of each document edited before `before`, newest first."""
    return db.execute(
        "SELECT d.id, d.uri, MAX(e.version) FROM documents d JOIN edits e ON e.document_id = d.id "
        "WHERE e.ts < ? GROUP BY d.id ORDER BY MAX(e.ts) DESC",
        [before],
    ).fetchall()


def iter_documents(db: sqlite_utils.Database, uri: str) -> Iterator[DocumentRecord]:
    """The recorded documents of `uri`, the most recently edited first."""
    sql = (
        "SELECT d.id, d.skipped FROM documents d "
        "LEFT JOIN edits e ON e.document_id = d.id "
        "WHERE d.uri = ? GROUP BY d.id ORDER BY MAX(COALESCE(e.ts, d.opened_at)) DESC"
    )
    return (DocumentRecord(**row) for row in list(db.query(sql, [uri])))


@dataclass
class DocumentText:
    """A document's text as recorded at one version."""

    uri: str
    document_id: str
    version: int | None  # the version reached (None: the editor sent none)
    text: str
    verified: bool  # every step matched its recorded hash
    # The last changes before it, oldest first, as (text before, text after) pairs.
    changes: list[tuple[str, str]] = field(default_factory=list)


def document_at(
    db: sqlite_utils.Database,
    document_id: str,
    version: int | None = None,
    *,
    uri: str = "",
    until: float | None = None,
    history: int = 0,
) -> DocumentText:
    """The recorded text of a document at `version` (or at time `until`, or its latest).

    A coalesced typing run that goes past `version` is cut where the version ends. With
    `history`, the last that many changes (typed or made on disk) come back too, which
    needs a replay from the first row instead of the last snapshot.
    """
    rows = db.execute(
        "SELECT kind, version, version_first, offset, removed, inserted, snapshot, content_hash, ts "
        "FROM edits WHERE document_id = ? ORDER BY seq",
        [document_id],
    ).fetchall()
    if version is not None:
        rows = [r for r in rows if r[2] is None or r[2] <= version]
        # Rows without a version (made on disk) after the last one at or below `version`
        # came later; a document recorded without versions at all is kept whole.
        versioned = [i for i, r in enumerate(rows) if r[2] is not None]
        rows = rows[: versioned[-1] + 1] if versioned else rows
        if not rows:
            raise NotRecordedError(f"version {version} of {uri or document_id} is not recorded")
    if until is not None:
        rows = [r for r in rows if r[8] is not None and r[8] <= until]
    start = 0
    if not history:  # start from the last full snapshot; replay what follows
        for i, r in enumerate(rows):
            if r[6] is not None and r[5] is None:
                start = i
    text = ""
    verified = True
    reached: int | None = None
    changes: deque[tuple[str, str]] = deque(maxlen=max(history, 1))
    for kind, ver, ver_first, offset, removed, inserted, snap, h, _ts in rows[start:]:
        if snap is not None and inserted is None:
            new = snapshot(db, snap)
        else:
            ins = inserted or ""
            if version is not None and ver is not None and ver_first is not None and ver > version:
                ins = ins[: version - ver_first + 1]  # part of a coalesced typing run
                ver, h = version, None
            new = text[:offset] + ins + text[offset + (removed or 0) :]
        if history and kind in ("change", "external") and text and new != text:
            changes.append((text, new))
        text = new
        if h is not None and content_hash(text) != h:
            verified = False
        reached = ver
    return DocumentText(uri, document_id, reached, text, verified, list(changes) if history else [])


# ---------------------------------------------------------------------------- events and counts


@dataclass
class EventRecord:
    ts: float
    detail: dict[str, Any]


def iter_events(db: sqlite_utils.Database, kind: str) -> Iterator[EventRecord]:
    """The events of one kind (save, close, gap, skip, commit, ...), in the order they were recorded."""
    sql = "SELECT ts, detail FROM events WHERE kind = ? ORDER BY id"
    for ts, detail in db.execute(sql, [kind]).fetchall():
        yield EventRecord(float(ts or 0.0), _object(detail))


def last_event_at(db: sqlite_utils.Database) -> float | None:
    last = db.execute("SELECT MAX(ts) FROM events").fetchone()[0]
    return None if last is None else float(last)


# What `count_rows` counts: a table's rows, or a figure that needs more than a COUNT.
_COUNTS = {
    "documents": "SELECT COUNT(DISTINCT uri) FROM documents",  # a file reopened is one document
    "keystroke_versions": "SELECT SUM(COALESCE(version - version_first, 0) + 1) FROM edits",
}


def count_rows(db: sqlite_utils.Database, table: str) -> int:
    """Rows of one table (a name from the schema, never user input), or a `_COUNTS` figure."""
    return int(db.execute(_COUNTS.get(table, f"SELECT COUNT(*) FROM [{table}]")).fetchone()[0] or 0)


@dataclass
class SuggestionTally:
    source: str | None
    model: str | None
    outcome: str | None  # None while pending
    shadow: bool  # computed beside a shown suggestion, never shown
    count: int


def tally_suggestions(db: sqlite_utils.Database, since: float | None = None) -> list[SuggestionTally]:
    """Suggestions (made since `since`) counted by source, model, outcome and shadow."""
    rows = db.execute(
        "SELECT source, model, outcome, shadow_of IS NOT NULL, COUNT(*) FROM suggestions "
        "WHERE ? IS NULL OR ts >= ? GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4",
        [since, since],
    ).fetchall()
    return [SuggestionTally(r[0], r[1], r[2], bool(r[3]), int(r[4])) for r in rows]


@dataclass
class ShadowTally:
    """Shadow answers (since a time) beside the shown suggestions they were computed for."""

    answers: int
    empty: int
    matched_shown: int  # the same text as the shown suggestion
    settled: int  # the shown suggestion settled
    matched_kept: int  # what was kept in the shown one's span starts with the shadow answer
    local_latency_ms: float | None
    shown_latency_ms: float | None


def shadow_tally(db: sqlite_utils.Database, since: float | None = None) -> ShadowTally:
    row = db.execute(
        "SELECT COUNT(*), SUM(s.text = ''), SUM(s.text != '' AND s.text = p.text), SUM(p.gold IS NOT NULL), "
        "SUM(s.text != '' AND p.gold IS NOT NULL AND substr(p.gold, 1, length(s.text)) = s.text), "
        "AVG(s.latency_ms), AVG(p.latency_ms) "
        "FROM suggestions s JOIN suggestions p ON p.id = s.shadow_of "
        "WHERE s.shadow_of IS NOT NULL AND s.ts >= ?",
        [since if since is not None else float("-inf")],
    ).fetchone()
    return ShadowTally(*(int(v or 0) for v in row[:5]), *row[5:])


# ---------------------------------------------------------------------------- statistics
# `goldiff stats`: outcome and proposal rates (printed by `audit.print_stats`).


def _outcomes_by(group: str = "") -> str:
    """One row per `group`; without one, a single row over all suggestions (counts 0 and no
    averages when there are none)."""
    survival = ", ".join(
        f"AVG(CASE WHEN outcome IN ('accepted', 'partial') THEN json_extract(survival, '$.\"{s}\"') END)"
        for s in CHECKPOINTS
    )
    return (
        f"SELECT {group + ', ' if group else ''}COUNT(*), "
        "SUM(COALESCE(shown, 0) > 0), "
        "SUM(outcome = 'accepted'), SUM(outcome = 'partial'), SUM(outcome = 'rejected'), "
        "SUM(outcome IS NULL), SUM(COALESCE(reverted, 0) > 0), "
        "SUM(gold IS NOT NULL), "
        f"{survival} "
        "FROM suggestions WHERE shadow_of IS NULL" + (f" GROUP BY {group} ORDER BY {group}" if group else "")
    )


def _outcome_entry(keys: dict[str, Any], row: tuple[Any, ...]) -> dict[str, Any]:
    n, shown, accepted, partial, rejected, pending, reverted, settled, *surv = row
    accepted, partial, rejected = accepted or 0, partial or 0, rejected or 0
    decided = accepted + partial + rejected
    return {
        **keys,
        "suggestions": n,
        "shown": shown or 0,
        "accepted": accepted,
        "partial": partial,
        "rejected": rejected,
        "pending": pending or 0,
        "reverted": reverted or 0,
        "settled": settled or 0,
        "acceptance_rate": (accepted + partial) / decided if decided else None,
        "partial_rate": partial / decided if decided else None,
        "mean_survival": {
            str(s): (None if v is None else round(float(v), 4))
            for s, v in zip(CHECKPOINTS, surv, strict=True)
        },
    }


def outcome_stats(db: sqlite_utils.Database) -> dict[str, Any]:
    """Acceptance, partial acceptance and mean survival, overall, by source/model and by day.

    Shadow suggestions (computed beside a shown one, never shown) are left out. Rates are
    over decided suggestions (accepted + partial + rejected): `acceptance_rate` counts
    accepted and partial ones, `partial_rate` partial ones alone. `mean_survival` averages,
    per checkpoint, the survival of the accepted and partial suggestions that reached it.
    Days are UTC dates of the suggestion's timestamp.
    """
    by_source = [
        _outcome_entry({"source": row[0], "model": row[1]}, row[2:])
        for row in db.execute(_outcomes_by("source, model")).fetchall()
    ]
    by_day = [
        _outcome_entry({"day": row[0]}, row[1:])
        for row in db.execute(_outcomes_by("date(ts, 'unixepoch')")).fetchall()
    ]
    episodes = db.query(
        "SELECT COUNT(*) AS total, "
        "IFNULL(SUM(gold_diff IS NOT NULL AND gold_diff != ''), 0) AS with_gold_diff, "
        "IFNULL(SUM(tests_passed = 1), 0) AS tests_passed, "
        "IFNULL(SUM(tests_passed = 0), 0) AS tests_failed FROM episodes"
    )
    return {
        "overall": _outcome_entry({}, db.execute(_outcomes_by()).fetchone()),
        "by_source": by_source,
        "by_day": by_day,
        "episodes": next(episodes),
    }


_PROPOSALS_BY_SOURCE = """
SELECT p.kind, p.source,
       IFNULL(SUM(p.shadow_of IS NULL), 0) AS proposals,
       IFNULL(SUM(p.shadow_of IS NULL AND p.outcome = 'accepted'), 0) AS accepted,
       IFNULL(SUM(p.shadow_of IS NULL AND p.outcome = 'rejected'), 0) AS rejected,
       IFNULL(SUM(p.shadow_of IS NULL AND (p.outcome IS NULL OR p.outcome = 'pending')), 0) AS pending,
       IFNULL(SUM(p.shadow_of IS NOT NULL), 0) AS shadow,
       NULL AS acceptance_rate,
       AVG(CASE WHEN p.shadow_of IS NULL AND p.outcome = 'accepted' THEN p.kept_share END) AS mean_kept_share,
       AVG(CASE WHEN p.shadow_of IS NULL THEN p.latency_ms END) AS mean_latency_ms,
       COUNT(DISTINCT CASE WHEN p.shadow_of IS NULL THEN p.episode_id END) AS episodes,
       0 AS settled_episodes, NULL AS turns_per_episode, 0 AS tests_passed, 0 AS tests_failed
FROM proposals p GROUP BY p.kind, p.source ORDER BY p.kind, p.source
"""

_EDIT_EPISODE_TESTS = """
SELECT e.kind, e.source, IFNULL(SUM(e.tests_passed = 1), 0) AS tests_passed,
       IFNULL(SUM(e.tests_passed = 0), 0) AS tests_failed,
       IFNULL(SUM(e.ended_at IS NOT NULL), 0) AS settled_episodes
FROM episodes e WHERE e.kind IN ('edit', 'agent') GROUP BY e.kind, e.source
"""


def proposal_stats(db: sqlite_utils.Database) -> dict[str, Any]:
    """Proposals per kind and source: outcomes, kept share, latency, turns and tests.

    A source is `frontier`, `local`, `test` or a coding agent's name. Shadow proposals
    (computed beside a shown one, never shown) are counted apart. `acceptance_rate` is over
    decided proposals (accepted + rejected); `mean_kept_share` averages the kept share of the
    accepted proposals whose episode has settled; `turns_per_episode` is the mean number of
    shown proposals per episode; `tests_passed`/`tests_failed` count episodes by the result of
    the last test run linked to them.
    """
    tests = {(r.pop("kind"), r.pop("source")): r for r in db.query(_EDIT_EPISODE_TESTS)}
    rows = []
    for row in db.query(_PROPOSALS_BY_SOURCE):
        decided, shown, episodes = row["accepted"] + row["rejected"], row["proposals"], row["episodes"]
        # A shadow proposal is labelled with its own source: its episode is the shown one's.
        row.update(tests.get((row["kind"], row["source"]), {}))
        row["acceptance_rate"] = row["accepted"] / decided if decided else None
        row["turns_per_episode"] = shown / episodes if episodes else None
        rows.append(row)
    return {"by_source": rows}
