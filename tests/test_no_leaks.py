"""No input the server accepts carries a secret into the store, its WAL, the log or an export.

One session plants a different secret through each way text reaches the server (the
settings, didOpen, typing, pasting, didSave, the workspace watcher, terminal commands with
and without an open episode, a coding agent's run, an edit proposal's instruction and
text, inline completions, a commit message) and then scans the raw bytes of every file
Goldiff wrote. Each channel is also checked to have recorded something, so a secret that
never arrived cannot pass for one that was masked.
"""

from __future__ import annotations

import json
import random
import sqlite3
import string
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from click.testing import CliRunner
from goldiff.cli import main
from lsprotocol import types

from tests.lsp_client import Editor, goldiff_client, server_env
from tests.sources.test_completion_lsp import complete

_rng = random.Random(1414)
ALNUM = string.ascii_letters + string.digits


def _r(n: int, chars: str = ALNUM) -> str:
    return "".join(_rng.choice(chars) for _ in range(n))


SECRETS = {
    "init_api_key": "sk-proj-" + _r(48),
    "config_api_key": "sk-ant-api03-" + _r(60) + "AA",
    "opened": "ghp_" + _r(36),
    "typed": "sk-svcacct-" + _r(40),
    "pasted": "xoxb-" + _r(12, string.digits) + "-" + _r(13, string.digits) + "-" + _r(24),
    "saved": "sk_live_" + _r(32),
    "watched": "glpat-" + _r(20),
    "terminal_in_episode": "sk-proj-" + _r(48),
    "terminal_output": "ghp_" + _r(36),
    "agent": "sk-ant-api03-" + _r(60) + "AA",
    "instruction": "AIza" + _r(35),
    "proposal_text": "hf_" + _r(34, string.ascii_letters),
    "suggestion_text": "npm_" + _r(36),
    "commit_message": "sk-svcacct-" + _r(40),
}
REGION = "def area(r):\n    return 3.14 * r * r\n"
SOURCE = f'import math\n\nTOKEN = "{SECRETS["opened"]}"\n\n' + REGION + "\n\nprint(area(2))\n"
PROPOSAL = f'def area(r):\n    key = "{SECRETS["proposal_text"]}"\n    return math.pi * r * r\n'
SUGGESTION = f'HF_TOKEN = "{SECRETS["suggestion_text"]}"'


def _rows(home: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(home / "traces.db")
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


async def test_a_secret_planted_through_every_input_is_nowhere_in_the_files(tmp_path: Path) -> None:
    home, ws = tmp_path / "home", tmp_path / "ws"
    ws.mkdir()
    log = tmp_path / "server.log"
    exports = tmp_path / "exports"
    geometry = ws / "geometry.py"
    geometry.write_text(SOURCE)
    uri = geometry.as_uri()
    rules = {
        "rules": [{"after": "# next\n", "text": SUGGESTION}],
        "edits": [{"instruction": "docstring", "text": PROPOSAL}],
    }
    options = {
        "mode": "frontier",
        "frontier": {"model": "test:" + json.dumps(rules), "apiKey": SECRETS["init_api_key"]},
        "agents": ["claude"],
    }
    env = server_env(home)
    async with goldiff_client(
        home,
        workspace=ws,
        env=env,
        options=options,
        server_args=["--log-file", str(log), "--verbose", "--clock", "logical"],
    ) as client:
        editor = Editor(client)

        async def command(name: str, *args: Any) -> Any:
            return await client.workspace_execute_command_async(
                types.ExecuteCommandParams(command=name, arguments=list(args))
            )

        decisions: list[bool] = []

        @client.feature(types.WORKSPACE_APPLY_EDIT)
        def apply_edit(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
            for change in params.edit.document_changes or []:
                assert isinstance(change, types.TextDocumentEdit)
                for edit in change.edits:
                    text = editor.texts[change.text_document.uri]
                    start = text.index(REGION)
                    editor.replace(change.text_document.uri, start, start + len(REGION), edit.new_text)
            return types.ApplyWorkspaceEditResult(applied=decisions.pop(0))

        # Settings: the API key arrives again through didChangeConfiguration.
        client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(
                settings={
                    "goldiff": {
                        **options,
                        "frontier": {**options["frontier"], "apiKey": SECRETS["config_api_key"]},
                    }
                }
            )
        )
        editor.open(uri, SOURCE)
        await command("goldiff.advanceClock", {"seconds": 0})
        # An edit proposal whose instruction holds a secret, and whose text holds another;
        # its episode stays open while a terminal command exports a key.
        decisions.append(True)
        start = SOURCE.index(REGION)
        line = SOURCE[:start].count("\n")
        await command(
            "goldiff.proposeEdit",
            {
                "uri": uri,
                "instruction": f"docstring, and call the API with {SECRETS['instruction']}",
                "range": {"start": {"line": line, "character": 0}, "end": {"line": line + 2, "character": 0}},
            },
        )
        client.protocol.notify(
            "goldiff/terminalCommand",
            {
                "commandLine": f"export OPENAI_API_KEY={SECRETS['terminal_in_episode']}",
                "cwd": str(ws),
                "exitCode": 0,
                "output": f"token: {SECRETS['terminal_output']}\n",
            },
        )
        # Typing one key at a time, then a paste, then a save whose text differs.
        offset = len(editor.texts[uri])
        offset = editor.type(uri, offset, f'OPENAI_KEY = "{SECRETS["typed"]}"\n')
        editor.replace(uri, offset, offset, f'SLACK_TOKEN = "{SECRETS["pasted"]}"\n# next\n')
        # An inline completion after `# next`: the deterministic source suggests a secret.
        await complete(client, uri, editor.texts[uri])
        saved = editor.texts[uri] + f'STRIPE = "{SECRETS["saved"]}"\n'
        client.text_document_did_save(
            types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri), text=saved)
        )
        editor.texts[uri] = saved
        # The watcher: a file written on disk by another program.
        (ws / "deploy.py").write_text(f'GITLAB_TOKEN = "{SECRETS["watched"]}"\n')
        # A coding agent run with its key on the command line, changing a file on disk.
        started = time.time() * 1000
        subprocess.run(
            [
                sys.executable,
                "-c",
                "import pathlib, sys; p = pathlib.Path(sys.argv[1]); "
                "p.write_text(p.read_text().replace('print(area(2))', 'print(area(3))'))",
                str(geometry),
            ],
            check=True,
            timeout=60,
        )
        geometry_now = geometry.read_text()
        ended = time.time() * 1000
        editor.replace(uri, 0, len(editor.texts[uri]), geometry_now)
        client.protocol.notify(
            "goldiff/terminalCommand",
            {
                "commandLine": f'ANTHROPIC_API_KEY={SECRETS["agent"]} claude "fix it"',
                "cwd": str(ws),
                "exitCode": 0,
                "startedAt": started,
                "endedAt": ended,
            },
        )
        await command("goldiff.commit", {"sha": "a" * 40, "message": f"rotate {SECRETS['commit_message']}"})
        deadline = time.monotonic() + 30
        while not _rows(home, "SELECT 1 FROM proposals WHERE kind = 'agent'") or not _rows(
            home, "SELECT 1 FROM documents WHERE path = 'deploy.py'"
        ):
            assert time.monotonic() < deadline, "the agent run or the watched file was never recorded"
            await command("goldiff.stats")
        editor.save(uri)
        await command("goldiff.advanceClock", {"seconds": 120})
        await command("goldiff.stats")
        for fmt in ("sft", "preference", "kto", "edits", "openai"):
            await command("goldiff.exportTraces", {"format": fmt, "path": str(exports / f"all.{fmt}")})
    # Parquet from the command line: the server keeps pandas (which pyarrow's writer
    # imports) out of its process to start fast.
    for rows in ("sft", "edits"):
        out = exports / f"all-{rows}.parquet"
        result = CliRunner().invoke(
            main, ["export", "--format", "parquet", "--rows", rows, "--out", str(out), "--home", str(home)]
        )
        assert result.exit_code == 0, result.output

    # Every channel recorded something: the secrets were carried, and masked.
    assert _rows(home, "SELECT COUNT(*) FROM terminal_commands")[0][0] >= 2
    assert _rows(home, "SELECT COUNT(*) FROM proposals WHERE kind = 'edit'")[0][0] >= 1
    assert _rows(home, "SELECT COUNT(*) FROM suggestions")[0][0] >= 1
    assert _rows(home, "SELECT COUNT(*) FROM episodes WHERE kind = 'agent'")[0][0] >= 1
    assert _rows(home, "SELECT COUNT(*) FROM events WHERE kind = 'commit'")[0][0] >= 1
    (instruction,) = _rows(home, "SELECT instruction FROM proposals WHERE kind = 'agent'")[0]
    assert instruction.endswith('claude "fix it"') and "ANTHROPIC_API_KEY=*" in instruction
    blobs: dict[str, bytes] = {p.name: p.read_bytes() for p in home.rglob("*") if p.is_file()}
    blobs["server.log"] = log.read_bytes()
    for path in exports.rglob("*"):
        if path.is_file():
            blobs[str(path)] = path.read_bytes()
            if path.suffix == ".parquet":  # compressed: scan its values too
                blobs[f"{path} (values)"] = json.dumps(pq.read_table(path).to_pylist(), default=str).encode()
    assert any("parquet" in name for name in blobs)
    leaks = [
        (name, channel)
        for channel, s in SECRETS.items()
        for name, blob in blobs.items()
        if s.encode() in blob
    ]
    assert leaks == []
