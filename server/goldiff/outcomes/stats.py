"""Outcome statistics for `goldiff stats` and `goldiff.stats` (read by `records.outcome_stats`).

Shadow suggestions (computed beside a shown one, never shown) are left out. Rates are
over decided suggestions (accepted + partial + rejected): `acceptance_rate` counts
accepted and partial ones, `partial_rate` partial ones alone. `mean_survival` averages,
per checkpoint, the survival of the accepted and partial suggestions that reached it.
Days are UTC dates of the suggestion's timestamp.
"""

from __future__ import annotations

from typing import Any

from goldiff.protocol import CHECKPOINTS
from goldiff.records import outcome_stats

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


__all__ = ["CAPTION", "outcome_stats", "print_outcomes"]
