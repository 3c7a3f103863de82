"""An export with no rows says why: nothing recorded, filters too narrow, no settled gold yet."""

from __future__ import annotations

from pathlib import Path

from goldiff.export import ExportFilters, ExportOptions, export
from goldiff.export.why import explain_empty
from goldiff.store import open_database
from lsprotocol import types

from tests.lsp_client import goldiff_client
from tests.test_export import SUGGESTIONS, fill_store


def test_the_reason_names_what_is_missing(tmp_path: Path) -> None:
    db, _ = open_database(fill_store(tmp_path / "empty", []))
    assert "recorded no suggestions yet" in explain_empty(db, ExportOptions())
    db.conn.close()

    db, _ = open_database(fill_store(tmp_path / "full"))
    narrow = ExportOptions(filters=ExportFilters.build(since="2099-01-01", language="python"))
    why = explain_empty(db, narrow)
    assert f"None of the {len(SUGGESTIONS)} recorded suggestions match" in why
    assert "Nothing at all matches since 2099-01-01 00:00 UTC." in why  # python alone matches
    assert "language python" in why
    db.conn.close()

    pending = [s for s in SUGGESTIONS if s[6] is None]
    assert pending, "the fixture has a suggestion whose outcome is still open"
    db, _ = open_database(fill_store(tmp_path / "pending", pending))
    result = export(db, ExportOptions(), tmp_path / "out.jsonl")
    assert sum(result.counts.values()) == 0
    assert "none has settled gold yet" in explain_empty(db, ExportOptions())
    db.conn.close()


async def test_the_export_command_reports_percent_progress_and_explains_zero_rows(tmp_path: Path) -> None:
    home = tmp_path / "home"
    fill_store(home)
    async with goldiff_client(home) as client:
        client.progress_reports.setdefault("export-1", [])
        full = await client.workspace_execute_command_async(
            types.ExecuteCommandParams(
                command="goldiff.exportTraces",
                arguments=[{"format": "sft", "path": "all.jsonl", "progressToken": "export-1"}],
            )
        )
        assert sum(full["counts"].values()) > 0 and "why" not in full
        reports = client.progress_reports["export-1"]
        assert isinstance(reports[0], types.WorkDoneProgressBegin) and reports[0].cancellable
        percents = [r.percentage for r in reports if isinstance(r, types.WorkDoneProgressReport)]
        assert percents and percents[-1] == 100
        assert isinstance(reports[-1], types.WorkDoneProgressEnd)
        empty = await client.workspace_execute_command_async(
            types.ExecuteCommandParams(
                command="goldiff.exportTraces",
                arguments=[{"format": "sft", "path": "none.jsonl", "filters": {"since": "2099-01-01"}}],
            )
        )
        assert empty["counts"] == {"all": 0}
        assert "match the filters (since 2099-01-01 00:00 UTC)" in empty["why"]
