"""Pooled traces: developers' exports as one hive-partitioned dataset that other engines read.

Two real stores (two developers, two workspaces) are exported through the command line into
a folder, a `file://` URL and a `memory://` URL; `goldiff pool` merges them, and HF
`datasets` and DuckDB read the result and see exactly the rows each developer exported.
"""

from __future__ import annotations

import datetime
import json
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from goldiff.cli import main
from goldiff.store import TraceStore

from tests.test_export import SUGGESTIONS, T0, suggestion_row

pa = pytest.importorskip("pyarrow")
pytest.importorskip("fsspec")

DEVELOPERS = {"alice": "file:///home/alice/app", "bob": "file:///home/bob/shop"}


def fill_developer(home: Path, who: str, workspace: str) -> Path:
    """A developer's store: the export tests' suggestions under this developer's own ids."""
    home.mkdir(parents=True, exist_ok=True)
    store = TraceStore(home / "traces.db")
    store.record_session(
        {"id": f"{who}-sess", "started_at": T0 - 10, "workspace": workspace, "mode": "local"}
    )
    for path, lang in {(s[2], s[3]) for s in SUGGESTIONS}:
        store.record_document(
            {
                "id": f"{who}-doc-{path}",
                "session_id": f"{who}-sess",
                "uri": f"{workspace}/{path}",
                "workspace": workspace,
                "path": path,
                "language": lang,
                "opened_at": T0 - 5,
            }
        )
    for spec in SUGGESTIONS:
        # Bob works a day later, so the pool has two dates as well as two workspaces.
        minutes = spec[1] + (24 * 60 if who == "bob" else 0)
        renamed = (f"{who}-{spec[0]}", minutes, *spec[2:])
        store.record_suggestion(
            suggestion_row(renamed, session_id=f"{who}-sess", document_id=f"{who}-doc-{spec[2]}")
        )
    store.close()
    return home


def cli(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.output[result.output.index("{") :]))


def export(home: Path, out: str, *extra: str) -> dict[str, Any]:
    return cli("export", "--home", str(home), "--format", "parquet", "--out", out, *extra)


def single_file_rows(home: Path, tmp_path: Path, *extra: str) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    out = tmp_path / f"single-{home.name}-{len(extra)}.parquet"
    export(home, str(out), *extra)
    return list(pq.read_table(out).to_pylist())


@pytest.fixture
def homes(tmp_path: Path) -> dict[str, Path]:
    return {who: fill_developer(tmp_path / who, who, ws) for who, ws in DEVELOPERS.items()}


def test_export_writes_hive_partitions_that_hold_whole_rows(homes: dict[str, Path], tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    out = tmp_path / "alice-dataset"
    summary = export(homes["alice"], str(out), "--partitioned")
    store = (homes["alice"] / "store-id").read_text().strip()
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.parquet"))
    assert summary["rows"] == 5 and summary["files"] == len(files) == 1
    [name] = files
    folder, part = name.rsplit("/", 1)
    assert folder == "workspace=file%3A%2F%2F%2Fhome%2Falice%2Fapp/date=2026-09-21"
    assert part.startswith(f"part-{store[:12]}-") and part.endswith(".parquet")
    rows = pq.read_table(out / name).to_pylist()
    plain = single_file_rows(homes["alice"], tmp_path)
    # The dataset's rows are the single-file export's rows plus the pooling columns.
    assert [{k: r[k] for k in plain[0]} for r in rows] == plain
    assert {(r["store"], r["date"]) for r in rows} == {(store, datetime.date(2026, 9, 21))}
    assert all(r["exported_at"] > T0 for r in rows)
    # The store id is made once and kept.
    export(homes["alice"], str(tmp_path / "again"), "--partitioned")
    assert (homes["alice"] / "store-id").read_text().strip() == store


def test_pool_merges_developers_drops_duplicates_and_reads_in_datasets_and_duckdb(
    homes: dict[str, Path], tmp_path: Path
) -> None:
    datasets = pytest.importorskip("datasets")
    duckdb = pytest.importorskip("duckdb")

    shared = tmp_path / "shared"
    # Alice exports twice into the shared folder (the second export overlaps the first);
    # Bob exports to his own file:// URL.
    export(homes["alice"], str(shared), "--partitioned")
    time.sleep(0.01)
    export(homes["alice"], str(shared))  # an existing folder is a dataset target
    bob_url = (tmp_path / "bob-export").as_uri()
    export(homes["bob"], bob_url)
    assert len(list(shared.rglob("*.parquet"))) == 1  # same rows: the same part file

    pooled = tmp_path / "pooled"
    summary = cli("pool", str(shared), bob_url, "--out", str(pooled))
    assert (summary["rows"], summary["stores"], summary["sources"]) == (10, 2, 2)
    assert summary["partitions"] == 2

    expected = {}
    for home in homes.values():
        store = (home / "store-id").read_text().strip()
        for row in single_file_rows(home, tmp_path):
            expected[row["id"]] = {**row, "store": store}

    files = str(pooled / "**" / "*.parquet")
    by_datasets = datasets.load_dataset("parquet", data_files=files, split="train").to_list()
    by_duckdb = duckdb.sql(f"SELECT * FROM read_parquet('{files}', hive_partitioning = true)").fetchall()
    columns = duckdb.sql(f"SELECT * FROM read_parquet('{files}', hive_partitioning = true) LIMIT 0").columns
    by_duckdb_rows = [dict(zip(columns, values, strict=True)) for values in by_duckdb]
    for reader, rows in (("datasets", by_datasets), ("duckdb", by_duckdb_rows)):
        assert sorted(r["id"] for r in rows) == sorted(expected), reader
        for row in rows:
            want = expected[row["id"]]
            got = {k: row[k] for k in want}
            assert got == want, reader
            day = datetime.datetime.fromtimestamp(row["ts"], datetime.UTC).date()
            assert row["date"] == day, reader
    # DuckDB reads the partition columns from the folder names: they agree with the files.
    query = f"SELECT workspace, count(*) FROM read_parquet('{files}', hive_partitioning = true) GROUP BY 1"
    by_workspace = duckdb.sql(query + " ORDER BY 1").fetchall()
    assert by_workspace == [(DEVELOPERS["alice"], 5), (DEVELOPERS["bob"], 5)]

    # Pooling again, with the pool itself among the inputs, changes nothing.
    before = sorted(p.name for p in pooled.rglob("*.parquet"))
    again = cli("pool", str(shared), bob_url, str(pooled), "--out", str(pooled))
    assert again["rows"] == 10 and again["duplicatesDropped"] == 20
    assert sorted(p.name for p in pooled.rglob("*.parquet")) == before


def test_pool_keeps_the_row_exported_last(homes: dict[str, Path], tmp_path: Path) -> None:
    from goldiff import pool

    first, second = tmp_path / "first", tmp_path / "second"
    export(homes["alice"], str(first), "--partitioned")
    export(homes["alice"], str(second), "--partitioned")
    newest = {r["exported_at"] for r in pool.read_rows(second)}
    result = pool.pool([str(second), str(first)], "memory://team/pooled")
    assert result.rows == 5 and result.duplicates == 5
    assert {r["exported_at"] for r in pool.read_rows("memory://team/pooled")} == newest


def test_memory_url_no_code_and_hashed_provenance(homes: dict[str, Path]) -> None:
    from goldiff import pool

    url = "memory://team/metrics"
    for home in homes.values():
        export(home, url, "--no-code", "--hash-provenance")
    rows = pool.read_rows(url)
    assert len(rows) == 10
    stores = {(h / "store-id").read_text().strip() for h in homes.values()}
    assert {r["store"] for r in rows} == {pool.hashed(s) for s in stores}
    # Metrics only: no code, and places are hashed in the rows and in the folder names.
    assert all("prompt" not in r and "completion" not in r and "prefix" not in r for r in rows)
    assert all(str(r["workspace"]).startswith("h:") for r in rows)
    fs, root = pool.filesystem(url)
    assert all("home" not in p and "workspace=h%3A" in p for p in fs.glob(f"{root}/**/*.parquet"))

    pooled = pool.pool([url], "memory://team/metrics-pool", hash_provenance=True)
    assert pooled.rows == 10 and pooled.extra["stores"] == 2  # already hashed: hashed once


def test_mistakes_say_what_to_do(homes: dict[str, Path], tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["export", "--home", str(homes["alice"]), "--format", "sft", "--partitioned"]
    )
    assert result.exit_code != 0 and "--format parquet" in result.output
    result = CliRunner().invoke(main, ["pool", str(tmp_path / "nothing"), "--out", str(tmp_path / "p")])
    assert result.exit_code != 0 and "no dataset or export at" in result.output


def test_distill_from_metrics_only_says_what_is_missing(homes: dict[str, Path], tmp_path: Path) -> None:
    metrics = str(tmp_path / "metrics")
    export(homes["alice"], metrics, "--partitioned", "--no-code")
    command = ["distill", "--home", str(tmp_path / "team"), "--data", metrics, "--name", "x"]
    result = CliRunner().invoke(main, command)
    assert result.exit_code != 0
    assert "holds 0 sft row(s) with a completion" in result.output and "--no-code" in result.output
