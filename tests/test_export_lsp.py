"""`goldiff.exportTraces` through a real LSP client and `goldiff serve` over stdio."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from goldiff.export import load_rows
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import ClientServerConfig

from tests.lsp_client import goldiff_client, server_env
from tests.test_export import fill_store


def execute(command: str, *args: object) -> types.ExecuteCommandParams:
    return types.ExecuteCommandParams(command=command, arguments=list(args))


async def test_export_traces_command_writes_a_split_export(tmp_path: Path) -> None:
    home = tmp_path / "home"
    fill_store(home)
    async with goldiff_client(home) as client:
        result = await client.workspace_execute_command_async(
            execute(
                "goldiff.exportTraces",
                {
                    "format": "sft",
                    "path": "mine",
                    "filters": {
                        "language": "python",
                        "outcome": ["accepted", "rejected"],
                        "split": True,
                        "testFraction": 0.2,
                    },
                },
            )
        )
        assert result["counts"] == {"train": 2, "test": 1}
        out = home / "exports" / "mine"
        assert result["paths"]["test"] == str(out / "test.jsonl")
        rows = load_rows(out / "train.jsonl") + load_rows(out)
        assert [r["completion"] for r in rows] == ["return a + b", "return a - b", "return a ** 2"]
        assert json.loads((out / "manifest.json").read_text())["filters"]["language"] == "python"

        with pytest.raises(JsonRpcException, match="unknown outcome 'won'"):
            await client.workspace_execute_command_async(
                execute("goldiff.exportTraces", {"format": "sft", "filters": {"outcome": "won"}})
            )
        with pytest.raises(JsonRpcException, match="unknown export format 'csv'"):
            await client.workspace_execute_command_async(execute("goldiff.exportTraces", {"format": "csv"}))


async def test_export_traces_writes_parquet(tmp_path: Path) -> None:
    """The server keeps pandas out of its start-up, not out of a Parquet export."""
    pq = pytest.importorskip("pyarrow.parquet")
    home = tmp_path / "home"
    fill_store(home)
    async with goldiff_client(home) as client:
        result = await client.workspace_execute_command_async(
            execute("goldiff.exportTraces", {"format": "parquet", "path": "rows.parquet"})
        )
    table = pq.read_table(home / "exports" / "rows.parquet")
    assert table.num_rows == sum(result["counts"].values()) > 0
    assert "completion" in table.column_names


async def test_export_traces_reports_work_done_progress(tmp_path: Path) -> None:
    home = tmp_path / "home"
    fill_store(home)
    config = ClientServerConfig(
        server_command=[sys.executable, "-m", "goldiff", "serve"], server_env=server_env(home)
    )
    client = await config.start()
    await client.initialize_session(
        types.InitializeParams(
            capabilities=types.ClientCapabilities(
                window=types.WindowClientCapabilities(work_done_progress=True)
            ),
            initialization_options={"capture": {"enabled": True}},
        )
    )
    try:
        result = await client.workspace_execute_command_async(
            execute("goldiff.exportTraces", {"format": "kto", "path": "k.jsonl"})
        )
    finally:
        await client.shutdown_session()
        await client.stop()
    assert result["counts"] == {"all": 6}
    (reports,) = client.progress_reports.values()
    assert isinstance(reports[0], types.WorkDoneProgressBegin)
    assert reports[0].title == "Goldiff: exporting kto"
    assert reports[-2] == types.WorkDoneProgressReport(message="8/8", percentage=100)
    assert isinstance(reports[-1], types.WorkDoneProgressEnd)
