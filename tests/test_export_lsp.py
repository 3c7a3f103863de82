"""`goldiff.exportTraces` through a real LSP client and `goldiff serve` over stdio."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from goldiff.export import load_rows
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from tests.lsp_client import goldiff_client
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
