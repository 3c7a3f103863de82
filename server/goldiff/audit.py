"""Read back what Goldiff recorded: rebuilt documents and counts.

These are the user's means to audit the store: `goldiff show` rebuilds a document's text
at any recorded version from its snapshots and edits (and checks each step against the
hash recorded with it), `goldiff stats` counts what is kept; `goldiff forget` is the store's.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import attrs
import sqlite_utils

from goldiff.errors import NotRecordedError
from goldiff.protocol import CHECKPOINTS, Recorded, RecordedSuggestion
from goldiff.records import (
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
    names = [field.name for field in attrs.fields(RecordedSuggestion)]
    for s in iter_suggestions(db, Filters(uri=uri)):
        # The record's fields of the same names; survival as its share at the last checkpoint.
        newest.append(
            RecordedSuggestion(**{**{n: getattr(s, n) for n in names}, "survival": s.final_survival})
        )
    return Recorded(uri, rebuilt.version, rebuilt.text, rebuilt.verified, list(reversed(newest)))


# What `goldiff stats` counts first, in its table's order.
_COUNTED = ("sessions", "documents", "edits", "keystroke_versions", "snapshots", "terminal_commands")


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
        kept = entry.get("accepted", 0) + entry.get("partial", 0)
        decided = kept + entry.get("rejected", 0)
        entry["acceptance_rate"] = kept / decided if decided else None
    files = [Path(f"{path}{suffix}") for suffix in ("", "-wal")] if path is not None else []
    return {
        **{name: count_rows(db, name) for name in (*_COUNTED, "events", "suggestions")},
        "suggestions_by_outcome": outcomes,
        "by_source": sorted(by_source.values(), key=lambda e: str(e["source"])),
        "store_bytes": sum(p.stat().st_size for p in files if p.exists()),
        "outcomes": outcome_stats(db),
        "proposals": proposal_stats(db),
        "shadow": shadow_stats(db),
    }


# Short headers: the outcome tables must fit an 80-column terminal.
OUTCOME_CAPTION = "acc/part/rej: accepted, partial, rejected; 30s…10m: mean survival; rev: reverted"
CHECKPOINT_LABELS = {"30": "30s", "120": "2m", "300": "5m", "600": "10m"}


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def print_stats(data: dict[str, Any], path: Path, console: Any, echo: Callable[[str], None]) -> None:
    """`goldiff stats` for a person: `stats(...)` as tables on a rich console and lines via `echo`."""
    from rich import box
    from rich.table import Table

    table = Table(title=f"Goldiff store {path}")
    table.add_column("what")
    table.add_column("count", justify="right")
    for key in _COUNTED:
        table.add_row(key.replace("_", " "), str(data[key]))
    table.add_row("suggestions", str(data["suggestions"]))
    for outcome, n in sorted(data["suggestions_by_outcome"].items()):
        table.add_row(f"  {outcome}", str(n))
    table.add_row("store size", f"{data['store_bytes'] / 1024:.1f} KiB")
    console.print(table)
    for entry in data["by_source"]:
        echo(
            f"{entry['source']} {entry['model']}: {entry['suggestions']} suggestions, "
            f"acceptance {_pct(entry['acceptance_rate'])}"
        )
    outcomes = data["outcomes"]
    for title, rows, caption in (
        ("Outcomes by source and model", outcomes["by_source"], OUTCOME_CAPTION),
        ("Outcomes by day (UTC)", outcomes["by_day"], None),
    ):
        if not rows:
            continue
        table = Table(title=title, caption=caption, box=box.SIMPLE_HEAD, padding=(0, 0, 0, 1))
        for column in ("", "sugg", "acc", "part", "rej", "acc %", "part %"):
            table.add_column(column, justify="left" if not column else "right", no_wrap=bool(column))
        for s in CHECKPOINTS:
            table.add_column(CHECKPOINT_LABELS.get(str(s), str(s)), justify="right", no_wrap=True)
        table.add_column("rev", justify="right", no_wrap=True)
        for e in rows:
            table.add_row(
                str(e["day"]) if "day" in e else f"{e['source']} {e['model']}",
                *(str(e[k]) for k in ("suggestions", "accepted", "partial", "rejected")),
                _pct(e["acceptance_rate"]),
                _pct(e["partial_rate"]),
                *(_pct(e["mean_survival"][str(s)]) for s in CHECKPOINTS),
                str(e["reverted"]),
            )
        console.print(table)
    if data["proposals"]["by_source"]:
        table = Table(title="Edit proposals by source")
        columns = ("", "proposals", "accepted", "rejected", "acceptance", "kept share", "turns/episode")
        for column in (*columns, "tests ok"):
            table.add_column(column, justify="left" if not column else "right")
        for e in data["proposals"]["by_source"]:
            turns = e["turns_per_episode"]
            table.add_row(
                f"{e['source']} ({e['kind']})",
                *(str(e[k]) for k in ("proposals", "accepted", "rejected")),
                _pct(e["acceptance_rate"]),
                _pct(e["mean_kept_share"]),
                "n/a" if turns is None else f"{turns:.1f}",
                f"{e['tests_passed']}/{e['tests_passed'] + e['tests_failed']}",
            )
        console.print(table)
    shadow = data["shadow"]
    if shadow["answers"]:
        echo(
            f"shadow: {shadow['answers']} hidden local answers, {shadow['empty']} empty, "
            f"{shadow['matched_shown']} equal to the shown one, "
            f"{shadow['matched_kept']} of {shadow['settled']} settled matching what was kept"
        )


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


def as_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, default=str)
