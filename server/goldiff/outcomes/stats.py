"""Outcome statistics for `goldiff stats` and `goldiff.stats`.

Shadow suggestions (computed beside a shown one, never shown) are left out. Rates are
over decided suggestions (accepted + partial + rejected): `acceptance_rate` counts
accepted and partial ones, `partial_rate` partial ones alone. `mean_survival` averages,
per checkpoint, the survival of the accepted and partial suggestions that reached it.
Days are UTC dates of the suggestion's timestamp.
"""

from __future__ import annotations

from typing import Any

import sqlite_utils

from goldiff.outcomes.suggestions import CHECKPOINTS


def _select(group: str) -> str:
    survival = ", ".join(
        f"AVG(CASE WHEN outcome IN ('accepted', 'partial') THEN json_extract(survival, '$.\"{s}\"') END)"
        for s in CHECKPOINTS
    )
    return (
        f"SELECT {group}, COUNT(*), "
        "SUM(COALESCE(shown, 0) > 0), "
        "SUM(outcome = 'accepted'), SUM(outcome = 'partial'), SUM(outcome = 'rejected'), "
        "SUM(outcome IS NULL), SUM(COALESCE(reverted, 0) > 0), "
        "SUM(gold IS NOT NULL), "
        f"{survival} "
        f"FROM suggestions WHERE shadow_of IS NULL GROUP BY {group} ORDER BY {group}"
    )


def _entry(keys: dict[str, Any], row: tuple[Any, ...]) -> dict[str, Any]:
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
    """Acceptance, partial acceptance and mean survival, overall, by source/model and by day."""
    overall = db.execute(_select("1")).fetchone()
    by_source = [
        _entry({"source": row[0], "model": row[1]}, row[2:])
        for row in db.execute(_select("source, model")).fetchall()
    ]
    by_day = [
        _entry({"day": row[0]}, row[1:]) for row in db.execute(_select("date(ts, 'unixepoch')")).fetchall()
    ]
    episodes = db.execute(
        "SELECT COUNT(*), SUM(gold_diff IS NOT NULL AND gold_diff != ''), "
        "SUM(tests_passed = 1), SUM(tests_passed = 0) FROM episodes"
    ).fetchone()
    return {
        "overall": _entry({}, overall[1:]) if overall else _entry({}, (0,) * (8 + len(CHECKPOINTS))),
        "by_source": by_source,
        "by_day": by_day,
        "episodes": {
            "total": episodes[0] or 0,
            "with_gold_diff": episodes[1] or 0,
            "tests_passed": episodes[2] or 0,
            "tests_failed": episodes[3] or 0,
        },
    }


CAPTION = "acc/part/rej: accepted, partial, rejected; 30s…10m: mean survival; rev: reverted"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def print_outcomes(data: dict[str, Any], console: Any) -> None:
    """Print `outcome_stats` as two tables (by source/model, by day) on a rich console."""
    from rich import box
    from rich.table import Table

    # Short headers: the table must fit an 80-column terminal.
    labels = {"30": "30s", "120": "2m", "300": "5m", "600": "10m"}
    for title, rows in (
        ("Outcomes by source and model", data["by_source"]),
        ("Outcomes by day (UTC)", data["by_day"]),
    ):
        if not rows:
            continue
        table = Table(
            title=title,
            caption=None if rows is data["by_day"] else CAPTION,
            box=box.SIMPLE_HEAD,
            padding=(0, 0, 0, 1),
        )
        for column in ("", "sugg", "acc", "part", "rej", "acc %", "part %"):
            table.add_column(column, justify="left" if not column else "right", no_wrap=bool(column))
        for s in CHECKPOINTS:
            table.add_column(labels.get(str(s), str(s)), justify="right", no_wrap=True)
        table.add_column("rev", justify="right", no_wrap=True)
        for e in rows:
            table.add_row(
                str(e["day"]) if "day" in e else f"{e['source']} {e['model']}",
                str(e["suggestions"]),
                str(e["accepted"]),
                str(e["partial"]),
                str(e["rejected"]),
                _pct(e["acceptance_rate"]),
                _pct(e["partial_rate"]),
                *(_pct(e["mean_survival"][str(s)]) for s in CHECKPOINTS),
                str(e["reverted"]),
            )
        console.print(table)
