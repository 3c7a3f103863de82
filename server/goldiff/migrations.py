"""Numbered, append-only schema migrations for the trace store.

Each migration is a function `mNNN_name(db)` listed in `MIGRATIONS`; `migrate()` applies,
in order, the ones a database has not seen yet and records each in `_migrations`. Never
edit a released migration: add the next number. The README's schema section is generated from a fresh
database built by these functions.
"""

from __future__ import annotations

import time

import sqlite_utils


def m001_initial(db: sqlite_utils.Database) -> None:
    db.table("sessions").create(
        {
            "id": str,  # one server process
            "started_at": float,  # epoch seconds
            "ended_at": float,
            "pid": int,
            "client": str,  # clientInfo name and version
            "workspace": str,  # first workspace folder URI
            "server_version": str,
            "mode": str,  # frontier | local | shadow at start
        },
        pk="id",
    )
    db.table("documents").create(
        {
            "id": str,  # one document as one session saw it
            "session_id": str,
            "uri": str,
            "workspace": str,
            "path": str,  # relative to the workspace when inside one
            "language": str,
            "opened_at": float,
            "skipped": str,  # why its text is not recorded (excluded, too large, binary)
        },
        pk="id",
        foreign_keys=[("session_id", "sessions", "id")],
    )
    db.table("documents").create_index(["uri"])
    db.table("snapshots").create(
        {"hash": str, "text": str, "bytes": int},  # content-addressed full texts
        pk="hash",
    )
    db.table("edits").create(
        {
            "id": int,
            "document_id": str,
            "seq": int,  # order within the document
            "kind": str,  # open | change | full | external | resync
            "version": int,  # document version after this row
            "version_first": int,  # first version a coalesced typing run covers
            "ts": float,  # wall clock, epoch seconds
            "mono": float,  # monotonic clock, seconds
            "start_line": int,  # LSP range, UTF-16 code units
            "start_character": int,
            "end_line": int,
            "end_character": int,
            "offset": int,  # the same range in code points of the text before
            "removed": int,  # code points replaced
            "inserted": str,  # text inserted (redacted)
            "snapshot": str,  # the whole text after this row, when recorded as a snapshot
            "content_hash": str,  # blake2b-64 of the recorded text after this row
        },
        pk="id",
        foreign_keys=[("document_id", "documents", "id")],
    )
    db.table("edits").create_index(["document_id", "seq"])
    db.table("terminal_commands").create(
        {
            "id": int,
            "session_id": str,
            "workspace": str,
            "command_line": str,
            "cwd": str,
            "exit_code": int,
            "started_at": float,
            "ended_at": float,
            "output": str,  # redacted, bounded excerpt
            "output_truncated": int,
        },
        pk="id",
    )
    db.table("events").create(
        {
            "id": int,
            "session_id": str,
            "document_id": str,
            "ts": float,
            "kind": str,  # save | close | gap | skip | commit | warning | config
            "detail": str,  # JSON
        },
        pk="id",
    )
    db.table("events").create_index(["kind", "ts"])
    db.table("suggestions").create(
        {
            "id": str,
            "session_id": str,
            "document_id": str,
            "version": int,  # document version the suggestion was made for
            "ts": float,
            "source": str,  # frontier | local | test
            "model": str,
            "mode": str,
            "shadow_of": str,  # the shown suggestion this hidden one was computed beside
            "line": int,
            "character": int,
            "offset": int,
            "prefix": str,  # redacted context the prompt was built from
            "suffix": str,
            "context": str,  # JSON: language, recent edits, snippets, prompt text
            "text": str,
            "latency_ms": float,
            "prompt_tokens": int,
            "completion_tokens": int,
            "shown": int,
            "outcome": str,  # accepted | partial | rejected | null while pending
            "reason": str,  # rejection reason
            "accepted_length": int,
            "gold": str,  # text occupying the span once settled
            "settled_at": float,
            "survival": str,  # JSON {"30": 1.0, "120": 0.8, ...}
            "episode_id": str,
        },
        pk="id",
    )
    db.table("suggestions").create_index(["document_id"])
    db.table("suggestions").create_index(["outcome"])
    db.table("suggestion_events").create(
        {"id": int, "suggestion_id": str, "ts": float, "kind": str, "detail": str},
        pk="id",
    )
    db.table("suggestion_events").create_index(["suggestion_id"])
    db.table("episodes").create(
        {
            "id": str,
            "session_id": str,
            "document_id": str,
            "kind": str,  # completion | edit | agent
            "source": str,
            "started_at": float,
            "ended_at": float,
            "start_offset": int,
            "end_offset": int,
            "before": str,
            "after": str,
            "gold_diff": str,  # unified diff, validated with unidiff
            "tests_passed": int,
            "detail": str,
        },
        pk="id",
    )


def m002_outcomes(db: sqlite_utils.Database) -> None:
    suggestions = db.table("suggestions")
    suggestions.add_column("reverted", int)  # 1: the accepted text was deleted whole
    suggestions.add_column("resolved_at", float)  # when its outcome was decided
    db.table("episodes").create_index(["document_id"])


def m004_proposals(db: sqlite_utils.Database) -> None:
    # One row per edit proposal: a model's rewrite of a region (goldiff.proposeEdit) or a
    # coding agent's changes to one file during one terminal command (goldiff.agent).
    db.table("proposals").create(
        {
            "id": str,
            "episode_id": str,
            "session_id": str,
            "document_id": str,
            "turn": int,  # 1, 2, ... within its episode
            "ts": float,
            "kind": str,  # edit | agent
            "source": str,  # frontier | local | test | the agent's name (claude, codex, ...)
            "model": str,
            "mode": str,
            "shadow_of": str,  # a shadow proposal: the shown proposal it was computed beside
            "instruction": str,  # the developer's instruction, or the agent's command line
            "range": str,  # JSON: the editable region as LSP positions
            "start_offset": int,
            "end_offset": int,
            "before": str,  # the region's text when the turn began
            "context": str,  # JSON: the edit prompt the source was given
            "text": str,  # the proposed region
            "outcome": str,  # pending | accepted | rejected
            "latency_ms": float,
            "kept_share": float,  # share of the proposal's added lines present at settle
            "settled_at": float,
            "detail": str,
        },
        pk="id",
    )
    db.table("proposals").create_index(["episode_id"])


MIGRATIONS = [(fn.__name__, fn) for fn in (m001_initial, m002_outcomes, m004_proposals)]


def migrate(db: sqlite_utils.Database) -> list[str]:
    """Apply pending migrations; return the names applied."""
    if "_migrations" not in db.table_names():
        db.table("_migrations").create({"name": str, "applied_at": float}, pk="name")
    done = {row["name"] for row in db["_migrations"].rows}
    applied = []
    for name, fn in MIGRATIONS:
        if name in done:
            continue
        # The caller holds the write transaction; sqlite_utils' create() adds no other.
        fn(db)
        db.execute("INSERT INTO _migrations(name, applied_at) VALUES (?, ?)", [name, time.time()])
        applied.append(name)
    return applied


def schema_markdown() -> str:
    """The schema of a fresh store as a markdown list (the README's schema section)."""
    db = sqlite_utils.Database(memory=True)
    migrate(db)
    lines = [
        f"- **{name}**: " + ", ".join(f"`{c.name}` {c.type.lower() or 'any'}" for c in db.table(name).columns)
        for name in db.table_names()
        if not name.startswith("_")
    ]
    return "\n".join(lines) + "\n"
