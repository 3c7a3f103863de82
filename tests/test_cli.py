"""The command line over a store filled through the real server."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from goldiff.cli import main

from tests.lsp_client import Editor, goldiff_client


async def _record(home: Path, ws: Path) -> tuple[str, str]:
    uri = (ws / "cli.py").as_uri()
    async with goldiff_client(home, workspace=ws) as client:
        editor = Editor(client)
        editor.open(uri, "one\n")
        editor.type(uri, 4, "two\n")
        client.protocol.notify(
            "goldiff/terminalCommand",
            {
                "commandLine": "export API_TOKEN=abcd1234efgh5678 && pytest",
                "cwd": str(ws),
                "exitCode": 1,
                "startedAt": 1_700_000_000_000,
                "endedAt": 1_700_000_001_000,
                "output": "1 failed",
            },
        )
        await client.workspace_execute_command_async(
            __import__("lsprotocol").types.ExecuteCommandParams(command="goldiff.stats")
        )
    return uri, editor.texts[uri]


async def test_stats_show_and_forget(tmp_path: Path) -> None:
    home, ws = tmp_path / "home", tmp_path / "ws"
    ws.mkdir()
    uri, text = await _record(home, ws)
    runner = CliRunner()
    stats = json.loads(runner.invoke(main, ["stats", "--json", "--home", str(home)]).output)
    assert stats["sessions"] == 1 and stats["documents"] == 1 and stats["terminal_commands"] == 1
    assert stats["keystroke_versions"] == 5  # the open plus four typed characters
    table = runner.invoke(main, ["stats", "--home", str(home)])
    assert table.exit_code == 0 and "terminal commands" in table.output
    shown = runner.invoke(main, ["show", uri, "--home", str(home)])
    assert shown.exit_code == 0 and shown.output == text
    version_2 = runner.invoke(main, ["show", str(ws / "cli.py"), "--version", "2", "--home", str(home)])
    assert version_2.output == "one\nt"
    missing = runner.invoke(main, ["show", "file:///nowhere.py", "--home", str(home)])
    assert missing.exit_code == 1 and "nothing is recorded" in missing.output
    doctor = runner.invoke(main, ["doctor", "--home", str(home)])
    assert "integrity ok" in doctor.output
    forgot = runner.invoke(main, ["forget", "--workspace", str(ws), "--yes", "--home", str(home)])
    assert json.loads(forgot.output)["documents"] == 1
    after = json.loads(runner.invoke(main, ["stats", "--json", "--home", str(home)]).output)
    assert after["documents"] == 0 and after["terminal_commands"] == 0


async def test_terminal_secrets_are_masked(tmp_path: Path) -> None:
    home, ws = tmp_path / "home", tmp_path / "ws"
    ws.mkdir()
    await _record(home, ws)
    raw = (home / "traces.db").read_bytes()
    wal = home / "traces.db-wal"
    if wal.exists():
        raw += wal.read_bytes()
    assert b"abcd1234efgh5678" not in raw


def test_commands_without_a_store_say_what_to_do(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["stats", "--home", str(tmp_path / "empty")])
    assert result.exit_code == 1 and "goldiff demo" in result.output
    bad = CliRunner().invoke(main, ["serve", "--tcp", "nonsense", "--home", str(tmp_path)])
    assert bad.exit_code == 2 and "HOST:PORT" in bad.output
