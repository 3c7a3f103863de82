"""From a scripted editor session to training rows: outcomes' real gold, exported over LSP.

The server is `tests.testing_server`: suggestions on demand (`goldiff.test.suggest`) and a
logical clock moved by the test (`goldiff.advanceClock`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from goldiff.export import load_rows
from goldiff.prompts import EDIT_CURSOR, EDIT_REGION_END, EDIT_REGION_START, parse_edit_completion
from lsprotocol import types

from tests.lsp_client import Editor, goldiff_client, utf16_pos

pytest.importorskip("goldiff.outcomes")

SOURCE = "import math\n\n\ndef area(r):\n    \n\n\nprint(area(2))\n"
CURSOR = SOURCE.index("    \n") + 4


async def test_settled_suggestion_exports_as_sft_and_edit_rows(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    home = tmp_path / "home"
    uri = (ws / "geo.py").as_uri()
    async with goldiff_client(home, workspace=ws, testing=True) as client:

        async def command(name: str, *args: Any) -> Any:
            return await client.workspace_execute_command_async(
                types.ExecuteCommandParams(command=name, arguments=list(args))
            )

        editor = Editor(client)
        editor.open(uri, SOURCE)
        await command("goldiff.advanceClock", {"seconds": 0})
        pos = utf16_pos(SOURCE, CURSOR)
        suggestion = "return 3.14 * r * r"
        sid = (
            await command(
                "goldiff.test.suggest",
                {"uri": uri, "line": pos.line, "character": pos.character, "text": suggestion},
            )
        )["id"]
        client.protocol.notify("goldiff/suggestionShown", {"id": sid})
        await command("goldiff.advanceClock", {"seconds": 1})
        editor.replace(uri, CURSOR, CURSOR, suggestion)  # Tab
        await command("goldiff.accepted", sid)
        await command("goldiff.advanceClock", {"seconds": 5})
        editor.replace(uri, CURSOR + 7, CURSOR + 11, "math.pi")  # the developer's fix: 3.14 → math.pi
        editor.save(uri)
        await command("goldiff.advanceClock", {"seconds": 700})  # settled, every checkpoint
        sft = await command("goldiff.exportTraces", {"format": "sft", "path": "sft.jsonl"})
        edits = await command("goldiff.exportTraces", {"format": "edits", "path": "edits.jsonl"})
        kto = await command("goldiff.exportTraces", {"format": "kto", "path": "kto.jsonl"})
    assert (sft["counts"], edits["counts"], kto["counts"]) == ({"all": 1}, {"all": 1}, {"all": 1})
    (row,) = load_rows(Path(sft["paths"]["all"]))
    assert row["completion"] == "return math.pi * r * r"
    assert row["suggestion"] == suggestion and row["outcome"] == "accepted"
    assert row["prefix"] == SOURCE[:CURSOR] and row["suffix"].startswith("\n")
    assert (row["path"], row["language"], row["workspace"]) == ("geo.py", "python", ws.resolve().as_uri())
    (kto_row,) = load_rows(Path(kto["paths"]["all"]))
    assert kto_row["label"] is False  # accepted, but 4 of its 19 characters were rewritten
    (edit,) = load_rows(Path(edits["paths"]["all"]))
    assert parse_edit_completion(edit["completion"]) == "    return math.pi * r * r\n"
    assert edit["completion"].endswith(EDIT_REGION_END)
    assert (
        f"import math\n\n\ndef area(r):\n{EDIT_REGION_START}    {EDIT_CURSOR}\n{EDIT_REGION_END}"
        in edit["prompt"]
    )
    assert edit["prompt"].endswith(f"### Rewrite\n{EDIT_REGION_START}")
    assert edit["model"] == row["model"] and edit["outcome"] == "accepted"
    assert "+    return math.pi * r * r" in edit["gold_diff"]
