"""Proposal statistics for `goldiff stats` and `goldiff.stats`, per source (read by `records.proposal_stats`).

A source is `frontier`, `local`, `test` or a coding agent's name. Shadow proposals
(computed beside a shown one, never shown) are counted apart. `acceptance_rate` is over
decided proposals (accepted + rejected); `mean_kept_share` averages the kept share of the
accepted proposals whose episode has settled; `turns_per_episode` is the mean number of
shown proposals per episode; `tests_passed`/`tests_failed` count episodes by the result of
the last test run linked to them.
"""

from __future__ import annotations

from typing import Any

from goldiff.records import proposal_stats


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def print_proposals(data: dict[str, Any], console: Any) -> None:
    """Print `proposal_stats` as a table on a rich console (nothing when there are none)."""
    from rich.table import Table

    if not data["by_source"]:
        return
    table = Table(title="Edit proposals by source")
    columns = ("", "proposals", "accepted", "rejected", "acceptance", "kept share", "turns/episode")
    for column in (*columns, "tests ok"):
        table.add_column(column, justify="left" if not column else "right")
    for e in data["by_source"]:
        turns = e["turns_per_episode"]
        table.add_row(
            f"{e['source']} ({e['kind']})",
            str(e["proposals"]),
            str(e["accepted"]),
            str(e["rejected"]),
            _pct(e["acceptance_rate"]),
            _pct(e["mean_kept_share"]),
            "n/a" if turns is None else f"{turns:.1f}",
            f"{e['tests_passed']}/{e['tests_passed'] + e['tests_failed']}",
        )
    console.print(table)


__all__ = ["print_proposals", "proposal_stats"]
