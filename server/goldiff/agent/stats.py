"""Proposal statistics for `goldiff stats` and `goldiff.stats`, per source.

A source is `frontier`, `local`, `test` or a coding agent's name. Shadow proposals
(computed beside a shown one, never shown) are counted apart. `acceptance_rate` is over
decided proposals (accepted + rejected); `mean_kept_share` averages the kept share of the
accepted proposals whose episode has settled; `turns_per_episode` is the mean number of
shown proposals per episode; `tests_passed`/`tests_failed` count episodes by the result of
the last test run linked to them.
"""

from __future__ import annotations

from typing import Any

import sqlite_utils

_BY_SOURCE = """
SELECT p.kind, p.source,
       SUM(p.shadow_of IS NULL),
       SUM(p.shadow_of IS NULL AND p.outcome = 'accepted'),
       SUM(p.shadow_of IS NULL AND p.outcome = 'rejected'),
       SUM(p.shadow_of IS NULL AND (p.outcome IS NULL OR p.outcome = 'pending')),
       SUM(p.shadow_of IS NOT NULL),
       AVG(CASE WHEN p.shadow_of IS NULL AND p.outcome = 'accepted' THEN p.kept_share END),
       AVG(CASE WHEN p.shadow_of IS NULL THEN p.latency_ms END),
       COUNT(DISTINCT CASE WHEN p.shadow_of IS NULL THEN p.episode_id END)
FROM proposals p GROUP BY p.kind, p.source ORDER BY p.kind, p.source
"""

_EPISODES = """
SELECT e.kind, e.source, SUM(e.tests_passed = 1), SUM(e.tests_passed = 0), SUM(e.ended_at IS NOT NULL)
FROM episodes e WHERE e.kind IN ('edit', 'agent') GROUP BY e.kind, e.source
"""


def proposal_stats(db: sqlite_utils.Database) -> dict[str, Any]:
    if "proposals" not in db.table_names():
        return {"by_source": []}
    tests = {(r[0], r[1]): r[2:] for r in db.execute(_EPISODES).fetchall()}
    rows = []
    for kind, source, n, accepted, rejected, pending, shadow, kept, latency, episodes in db.execute(
        _BY_SOURCE
    ).fetchall():
        accepted, rejected = accepted or 0, rejected or 0
        passed, failed, settled = tests.get((kind, source), (0, 0, 0))
        # A shadow proposal is labelled with its own source: its episode is the shown one's.
        rows.append(
            {
                "kind": kind,
                "source": source,
                "proposals": n or 0,
                "accepted": accepted,
                "rejected": rejected,
                "pending": pending or 0,
                "shadow": shadow or 0,
                "acceptance_rate": accepted / (accepted + rejected) if accepted + rejected else None,
                "mean_kept_share": kept,
                "mean_latency_ms": latency,
                "episodes": episodes or 0,
                "settled_episodes": settled or 0,
                "turns_per_episode": (n or 0) / episodes if episodes else None,
                "tests_passed": passed or 0,
                "tests_failed": failed or 0,
            }
        )
    return {"by_source": rows}


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
