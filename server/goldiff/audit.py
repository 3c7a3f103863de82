"""Read back what Goldiff recorded: rebuilt documents, counts, deletion.

These are the user's means to audit the store: `goldiff show` rebuilds a document's text
at any recorded version from its snapshots and edits (and checks each step against the
hash recorded with it), `goldiff stats` counts what is kept, `goldiff forget` deletes it.
"""

from __future__ import annotations

import json
import time
from collections import deque
from dataclasses import asdict
from pathlib import Path
from typing import Any

import sqlite_utils

from goldiff.errors import ForgetError, NotRecordedError
from goldiff.protocol import Recorded, RecordedSuggestion
from goldiff.records import (
    SETTLED,
    DocumentText,
    Filters,
    count_rows,
    document_at,
    iter_documents,
    iter_suggestions,
    outcome_stats,
    proposal_stats,
    shadow_tally,
    tally_suggestions,
)

Rebuilt = DocumentText  # the name `goldiff show`'s callers know it by


def rebuild_document(
    db: sqlite_utils.Database, document_id: str, uri: str = "", version: int | None = None
) -> DocumentText:
    return document_at(db, document_id, version, uri=uri)


def rebuild(db: sqlite_utils.Database, uri: str, version: int | None = None) -> DocumentText:
    """The text of `uri` as recorded, at `version` or its latest recorded state."""
    docs = list(iter_documents(db, uri))
    if not docs:
        raise NotRecordedError(f"nothing is recorded for {uri}. `goldiff stats` lists what is.")
    # A session that skipped the file (too large, excluded) kept none of its text: the
    # text is another session's, if any recorded it.
    recorded = [doc for doc in docs if doc.skipped is None]
    if not recorded:
        raise NotRecordedError(f"the text of {uri} is not recorded ({docs[0].skipped})")
    for doc in recorded:
        try:
            return document_at(db, doc.id, version, uri=uri)
        except NotRecordedError:
            continue
    raise NotRecordedError(f"version {version} of {uri} is not recorded")


def recorded(db: sqlite_utils.Database, uri: str, limit: int = 20) -> Recorded:
    """What the store holds for `uri`: its latest text, rebuilt and checked as `goldiff show`
    does, and its `limit` newest suggestions with their outcome and gold, newest first.

    Everything comes from the store, so secrets read back masked, as they were recorded.
    """
    if next(iter_documents(db, uri), None) is None:
        raise NotRecordedError(f"Goldiff has recorded nothing for {uri}")
    rebuilt = rebuild(db, uri)
    newest: deque[RecordedSuggestion] = deque(maxlen=limit)
    for s in iter_suggestions(db, Filters(uri=uri)):
        newest.append(
            RecordedSuggestion(
                id=s.id,
                ts=s.ts,
                source=s.source,
                model=s.model,
                outcome=s.outcome,
                reason=s.reason,
                shadow=s.shadow,
                text=s.text,
                gold=s.gold,
                accepted_length=s.accepted_length,
                survival=s.final_survival,
            )
        )
    return Recorded(uri, rebuilt.version, rebuilt.text, rebuilt.verified, list(reversed(newest)))


def stats(db: sqlite_utils.Database, path: Path | None = None) -> dict[str, Any]:
    """Counts of everything recorded, for `goldiff stats --json` and `goldiff.stats`."""
    tally = tally_suggestions(db)
    outcomes: dict[str, int] = {}
    for t in sorted(tally, key=lambda t: (t.outcome is not None, t.outcome or "")):
        outcomes[t.outcome or "pending"] = outcomes.get(t.outcome or "pending", 0) + t.count
    by_source: dict[str, dict[str, Any]] = {}
    for t in tally:
        if not t.shadow:
            entry = by_source.setdefault(f"{t.source}:{t.model}", {"source": t.source, "model": t.model})
            entry["suggestions"] = entry.get("suggestions", 0) + t.count
            entry[t.outcome or "pending"] = t.count
    for entry in by_source.values():
        decided = sum(entry.get(k, 0) for k in SETTLED)
        entry["acceptance_rate"] = (
            (entry.get("accepted", 0) + entry.get("partial", 0)) / decided if decided else None
        )
    store_bytes = 0
    for suffix in ("", "-wal") if path is not None else ():
        p = Path(str(path) + suffix)
        if p.exists():
            store_bytes += p.stat().st_size
    tables = ("sessions", "documents", "edits", "keystroke_versions", "snapshots", "terminal_commands")
    return {
        **{name: count_rows(db, name) for name in (*tables, "events", "suggestions")},
        "suggestions_by_outcome": outcomes,
        "by_source": sorted(by_source.values(), key=lambda e: str(e["source"])),
        "store_bytes": store_bytes,
        "outcomes": outcome_stats(db),
        "proposals": proposal_stats(db),
        "shadow": shadow_stats(db),
    }


def start_of_today() -> float:
    now = time.localtime()
    return time.mktime((now.tm_year, now.tm_mon, now.tm_mday, 0, 0, 0, 0, 0, -1))


def acceptance_since(db: sqlite_utils.Database, since: float, source: str | None = None) -> dict[str, Any]:
    """Shown suggestions since `since` and how many were kept (for the status bar).

    With `source` (frontier, local) only that source's: a figure that mixed the two
    would say nothing about either model.
    """
    shown = [t for t in tally_suggestions(db, since) if not t.shadow and source in (None, t.source)]
    kept = sum(t.count for t in shown if t.outcome in ("accepted", "partial"))
    decided = kept + sum(t.count for t in shown if t.outcome == "rejected")
    return {
        "shown": sum(t.count for t in shown),
        "accepted": kept,
        "rate": kept / decided if decided else None,
    }


def acceptance_by_source(db: sqlite_utils.Database, since: float) -> dict[str, dict[str, Any]]:
    """`acceptance_since` for each source that answered since `since`."""
    sources = sorted({str(t.source) for t in tally_suggestions(db, since) if not t.shadow})
    return {s: acceptance_since(db, since, s) for s in sources}


def shadow_stats(db: sqlite_utils.Database, since: float | None = None) -> dict[str, Any]:
    """What shadow mode measured: the hidden local answers beside the shown frontier ones.

    `matched_shown`: the local answer equals the shown one. `matched_kept`: the shown
    suggestion settled and what was kept in its span starts with the local answer, so
    showing the local one would have given the user the same text.
    """
    out = asdict(shadow_tally(db, since))
    for key in ("local_latency_ms", "shown_latency_ms"):
        out[key] = round(out[key], 1) if out[key] is not None else None
    return out


# Columns by which a row belongs to a document, a suggestion or an episode, and the column
# that says when it was recorded. `forget` derives what to delete from these and the schema
# alone, so a table added later is forgotten with the rest (or forget refuses to run).
LINK_COLUMNS = ("document_id", "suggestion_id", "episode_id")
TIME_COLUMNS = ("ts", "started_at", "opened_at")


def forget(
    db: sqlite_utils.Database,
    workspace: str | None = None,
    *,
    document: str | None = None,
    since: float | None = None,
    until: float | None = None,
) -> dict[str, int]:
    """Delete recorded data; returns rows deleted per table.

    One scope at a time: a workspace (URI), a document (URI), a time range (epoch seconds,
    either end open), or, with none of them, everything. A document touched in a time range
    is forgotten whole: its later states hold what was typed in the range. Deleted pages are
    overwritten (`secure_delete`), the database is rebuilt and its WAL truncated, so the
    text is gone from the files, not only from the tables.
    """
    scopes = [workspace is not None, document is not None, since is not None or until is not None]
    if sum(scopes) > 1:
        raise ValueError("forget takes one scope: a workspace, a document or a time range")
    db.execute("PRAGMA secure_delete=ON")
    tables = [t for t in db.table_names() if not t.startswith("_")]
    columns = {t: {c.name for c in db[t].columns} for t in tables}
    deleted: dict[str, int] = {}
    conn = db.conn
    conn.execute("BEGIN IMMEDIATE")
    try:
        if not any(scopes):
            for table in tables:
                deleted[table] = conn.execute(f"DELETE FROM [{table}]").rowcount
        else:
            _forget_scoped(conn, tables, columns, deleted, workspace, document, since, until)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    # Rebuild the file without the freed pages, then empty the WAL that held the old ones.
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.execute("VACUUM")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return {k: v for k, v in deleted.items() if v}


def _forget_scoped(
    conn: Any,
    tables: list[str],
    columns: dict[str, set[str]],
    deleted: dict[str, int],
    workspace: str | None,
    document: str | None,
    since: float | None,
    until: float | None,
) -> None:
    lo = since if since is not None else float("-inf")
    hi = until if until is not None else float("inf")
    in_range = "({col} >= ? AND {col} < ?)"
    for name in ("docs", "suggestions", "episodes"):
        conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS forget_{name} (id TEXT PRIMARY KEY)")
        conn.execute(f"DELETE FROM forget_{name}")
    # The documents in scope, then what hangs off them.
    if workspace is not None:
        conn.execute(
            "INSERT OR IGNORE INTO forget_docs SELECT id FROM documents "
            "WHERE workspace = ? OR substr(uri, 1, ?) = ?",
            [workspace, len(workspace) + 1, workspace + "/"],
        )
    elif document is not None:
        conn.execute("INSERT OR IGNORE INTO forget_docs SELECT id FROM documents WHERE uri = ?", [document])
    else:
        conn.execute(
            "INSERT OR IGNORE INTO forget_docs SELECT DISTINCT document_id FROM edits "
            f"WHERE {in_range.format(col='ts')}",
            [lo, hi],
        )
        conn.execute(
            "INSERT OR IGNORE INTO forget_docs SELECT id FROM documents "
            f"WHERE {in_range.format(col='opened_at')}",
            [lo, hi],
        )
    conn.execute(
        "INSERT OR IGNORE INTO forget_suggestions SELECT id FROM suggestions "
        "WHERE document_id IN (SELECT id FROM forget_docs)"
    )
    for table in ("episodes", "proposals", "suggestions"):
        if table not in columns:
            continue
        col = "id" if table == "episodes" else "episode_id"
        conn.execute(
            f"INSERT OR IGNORE INTO forget_episodes SELECT {col} FROM [{table}] "
            f"WHERE {col} IS NOT NULL AND document_id IN (SELECT id FROM forget_docs)"
        )
    if since is not None or until is not None:
        conn.execute(
            "INSERT OR IGNORE INTO forget_suggestions SELECT id FROM suggestions "
            f"WHERE {in_range.format(col='ts')}",
            [lo, hi],
        )
        conn.execute(
            "INSERT OR IGNORE INTO forget_episodes SELECT id FROM episodes "
            f"WHERE {in_range.format(col='started_at')}",
            [lo, hi],
        )
    # Events that name the workspace or document in their detail (gaps, skips, commits).
    needles = []
    if workspace is not None:
        needles = [workspace + "/", workspace + '"']
    elif document is not None:
        needles = [document + '"']
    for table in tables:
        if table in ("snapshots", "sessions"):
            continue
        cols = columns[table]
        where: list[str] = []
        params: list[Any] = []
        own = {"documents": "docs", "suggestions": "suggestions", "episodes": "episodes"}.get(table)
        if own:
            where.append(f"id IN (SELECT id FROM forget_{own})")
        for link, name in zip(LINK_COLUMNS, ("docs", "suggestions", "episodes"), strict=True):
            if link in cols:
                where.append(f"{link} IN (SELECT id FROM forget_{name})")
        if workspace is not None and "workspace" in cols:
            where.append("workspace = ?")
            params.append(workspace)
        links = [c for c in LINK_COLUMNS if c in cols]
        if workspace is not None and "session_id" in cols and links:
            # Rows of the workspace's sessions that belong to no document (its settings).
            unlinked = " AND ".join(f"{c} IS NULL" for c in links)
            where.append(f"({unlinked} AND session_id IN (SELECT id FROM sessions WHERE workspace = ?))")
            params.append(workspace)
        time_col = next((c for c in TIME_COLUMNS if c in cols), None)
        if (since is not None or until is not None) and time_col:
            where.append(in_range.format(col=time_col))
            params += [lo, hi]
        if "detail" in cols:
            for needle in needles:
                where.append("instr(detail, ?) > 0")
                params.append(needle)
        reachable = cols & {*LINK_COLUMNS, *TIME_COLUMNS, "workspace", "detail"} or own
        if not where and reachable:
            continue  # nothing of this scope can be in it (a document has no terminal commands)
        if not where:
            raise ForgetError(
                f"the table {table} has no column that links it to a workspace, document or time; "
                "`goldiff forget --all` still deletes everything"
            )
        cur = conn.execute(f"DELETE FROM [{table}] WHERE " + " OR ".join(where), params)
        deleted[table] = cur.rowcount
    # Full texts no edit refers to any more.
    deleted["snapshots"] = conn.execute(
        "DELETE FROM snapshots WHERE hash NOT IN (SELECT snapshot FROM edits WHERE snapshot IS NOT NULL)"
    ).rowcount
    # Sessions: gone once nothing refers to them; otherwise they stop naming the workspace.
    refs = " UNION ".join(f"SELECT session_id FROM [{t}]" for t in tables if "session_id" in columns[t])
    session_scope = "workspace = ?" if workspace is not None else None
    session_params: list[Any] = [workspace] if workspace is not None else []
    if since is not None or until is not None:
        session_scope, session_params = in_range.format(col="started_at"), [lo, hi]
    if session_scope:
        deleted["sessions"] = conn.execute(
            f"DELETE FROM sessions WHERE {session_scope} AND id NOT IN ({refs})", session_params
        ).rowcount
        if workspace is not None:
            conn.execute("UPDATE sessions SET workspace = NULL WHERE workspace = ?", [workspace])


def integrity(db: sqlite_utils.Database) -> str:
    return str(db.execute("PRAGMA integrity_check").fetchone()[0])


def as_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, default=str)
