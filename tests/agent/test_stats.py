"""`goldiff stats` reports edit proposals per source, from a real trace store."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from goldiff.cli import main
from goldiff.store import TraceStore


def fill(home: Path) -> None:
    store = TraceStore(home / "traces.db")
    rows = [
        ("p1", "e1", 1, "edit", "frontier", "accepted", 0.5, None),
        ("p2", "e1", 2, "edit", "frontier", "rejected", 0.0, None),
        ("p3", "e1", 2, "edit", "local", None, 0.0, "p2"),  # a shadow beside turn 2
        ("p4", "e2", 1, "agent", "claude", "accepted", 1.0, None),
        ("p5", "e3", 1, "agent", "claude", "rejected", 0.0, None),
    ]
    for pid, episode, turn, kind, source, outcome, kept, shadow_of in rows:
        store.record_proposal(
            {
                "id": pid,
                "episode_id": episode,
                "turn": turn,
                "kind": kind,
                "source": source,
                "outcome": outcome,
                "kept_share": kept,
                "shadow_of": shadow_of,
                "latency_ms": 10.0 * turn,
            },
        )
    store.record_episode({"id": "e2", "kind": "agent", "source": "claude", "tests_passed": 1, "ended_at": 1})
    store.record_episode({"id": "e3", "kind": "agent", "source": "claude", "tests_passed": 0, "ended_at": 2})
    store.flush()
    store.close()


def test_stats_json_reports_proposals_per_source(tmp_path: Path) -> None:
    fill(tmp_path)
    result = CliRunner().invoke(main, ["stats", "--home", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    rows = {(r["kind"], r["source"]): r for r in json.loads(result.output)["proposals"]["by_source"]}
    assert rows[("edit", "frontier")] == {
        "kind": "edit",
        "source": "frontier",
        "proposals": 2,
        "accepted": 1,
        "rejected": 1,
        "pending": 0,
        "shadow": 0,
        "acceptance_rate": 0.5,
        "mean_kept_share": 0.5,
        "mean_latency_ms": 15.0,
        "episodes": 1,
        "settled_episodes": 0,
        "turns_per_episode": 2.0,
        "tests_passed": 0,
        "tests_failed": 0,
    }
    local = rows[("edit", "local")]
    assert (local["proposals"], local["shadow"], local["turns_per_episode"]) == (0, 1, None)
    claude = rows[("agent", "claude")]
    assert (claude["proposals"], claude["accepted"], claude["rejected"]) == (2, 1, 1)
    assert (claude["mean_kept_share"], claude["turns_per_episode"]) == (1.0, 1.0)
    assert (claude["tests_passed"], claude["tests_failed"], claude["settled_episodes"]) == (1, 1, 2)


def test_stats_table_shows_proposals(tmp_path: Path) -> None:
    fill(tmp_path)
    result = CliRunner().invoke(main, ["stats", "--home", str(tmp_path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Edit proposals by source" in result.output
    assert "claude (agent)" in result.output
