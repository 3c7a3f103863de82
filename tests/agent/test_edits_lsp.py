"""Scripted editor sessions over real LSP: edit proposals, their turns, agents, and the gold.

The server runs on a logical clock (time moves only through `goldiff.advanceClock`)
and the deterministic test source answers edit requests from its `edits` rules. The test
client answers `workspace/applyEdit` as VS Code's refactor preview does: it either applies
the edit (sending the didChange) and answers `applied: true`, or discards it.
"""

from __future__ import annotations

import json
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from goldiff.agent.rewrite import build_request
from goldiff.export import load_rows
from goldiff.outcomes.diffs import unified_diff, validate
from goldiff.prompts import edit_completion
from lsprotocol import converters, types
from pytest_lsp import LanguageClient

from tests.lsp_client import Editor, goldiff_client, server_env
from tests.outcomes.test_diffs import apply_patch

SOURCE = "import math\n\n\ndef area(r):\n    return 3.14 * r * r\n\n\nprint(area(2))\n"
REGION = "def area(r):\n    return 3.14 * r * r\n"
DOCSTRING = '    """The area of a circle of radius r."""\n'
PROPOSAL = "def area(r):\n" + DOCSTRING + "    return math.pi * r ** 2\n"
SECOND = "def area(r: float) -> float:\n" + DOCSTRING + "    return math.pi * r ** 2\n"
EDIT_RULES = {
    "edits": [
        {"instruction": "docstring", "text": PROPOSAL},
        {"instruction": "type hints", "text": SECOND},
        {"instruction": "Improve this code", "text": PROPOSAL},
    ]
}
AGENT_SCRIPT = """#!{python}
import pathlib, sys
path = pathlib.Path(sys.argv[1])
text = path.read_text()
text = text.replace("def area(r):\\n", "def area(r):\\n    \\"\\"\\"Circle area.\\"\\"\\"\\n")
text = text.replace("3.14 * r * r", "math.pi * r * r")
path.write_text(text)
"""


def offset_of(text: str, line: int, character: int) -> int:
    lines = text.splitlines(keepends=True)
    return sum(len(x) for x in lines[:line]) + character  # ASCII only: UTF-16 = code points


class Session:
    def __init__(self, client: LanguageClient, home: Path, ws: Path, uri: str) -> None:
        self.client = client
        self.home = home
        self.ws = ws
        self.uri = uri
        self.editor = Editor(client)
        self.decisions: list[bool] = []  # what the "developer" does with each preview
        self.edits_seen: list[types.ApplyWorkspaceEditParams] = []

        @client.feature(types.WORKSPACE_APPLY_EDIT)
        def apply_edit(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
            self.edits_seen.append(params)
            applied = self.decisions.pop(0)
            if applied:
                for change in params.edit.document_changes or []:
                    assert isinstance(change, types.TextDocumentEdit)
                    for edit in change.edits:
                        text = self.editor.texts[change.text_document.uri]
                        start = offset_of(text, edit.range.start.line, edit.range.start.character)
                        end = offset_of(text, edit.range.end.line, edit.range.end.character)
                        self.editor.replace(change.text_document.uri, start, end, edit.new_text)
            return types.ApplyWorkspaceEditResult(applied=applied)

    async def command(self, name: str, *args: Any) -> Any:
        return await self.client.workspace_execute_command_async(
            types.ExecuteCommandParams(command=name, arguments=list(args))
        )

    async def propose(self, instruction: str, *, accept: bool, episode: str | None = None) -> dict[str, Any]:
        self.decisions.append(accept)
        arg: dict[str, Any] = {"uri": self.uri, "instruction": instruction}
        if episode is None:
            arg["range"] = {"start": {"line": 3, "character": 4}, "end": {"line": 4, "character": 10}}
        else:
            arg["episode"] = episode
        return dict(await self.command("goldiff.proposeEdit", arg))

    async def advance(self, seconds: float) -> None:
        await self.command("goldiff.advanceClock", {"seconds": seconds})

    @property
    def text(self) -> str:
        return self.editor.texts[self.uri]

    def replace(self, old: str, new: str) -> None:
        start = self.text.index(old)
        self.editor.replace(self.uri, start, start + len(old), new)

    def rows(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        conn = sqlite3.connect(self.home / "traces.db")
        conn.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in conn.execute(sql, args).fetchall()]
        finally:
            conn.close()

    def episode(self, episode_id: str) -> dict[str, Any]:
        (row,) = self.rows("SELECT * FROM episodes WHERE id = ?", episode_id)
        row["detail"] = json.loads(row["detail"]) if row["detail"] else None
        return row

    def proposals(self, episode_id: str) -> list[dict[str, Any]]:
        return self.rows("SELECT * FROM proposals WHERE episode_id = ? ORDER BY turn", episode_id)

    async def settle(self) -> None:
        self.editor.save(self.uri)
        await self.advance(11)
        await self.command("goldiff.stats")  # flushes the store


@pytest.fixture
async def session(tmp_path: Path) -> AsyncIterator[Session]:
    ws = tmp_path / "ws"
    ws.mkdir()
    home = tmp_path / "home"
    path = ws / "geometry.py"
    path.write_text(SOURCE)
    options = {
        "mode": "frontier",
        "frontier": {"model": "test:" + json.dumps(EDIT_RULES)},
        "agents": ["claude", "fakeagent"],
    }
    env = server_env(home)
    async with goldiff_client(
        home, workspace=ws, env=env, options=options, server_args=["--clock", "logical"]
    ) as client:
        s = Session(client, home, ws, path.as_uri())
        s.editor.open(s.uri, SOURCE)
        await s.advance(0)
        yield s


def expected_diff(before: str, after: str) -> str:
    return unified_diff(before, after, "geometry.py", 3, 3)


async def test_propose_accept_then_developer_edits_part_of_it(session: Session) -> None:
    result = await session.propose("add a docstring", accept=True)
    assert result["applied"] is True and result["turn"] == 1 and result["source"] == "frontier"
    (sent,) = session.edits_seen
    (change,) = sent.edit.document_changes or []
    assert isinstance(change, types.TextDocumentEdit)
    assert list(change.edits) == [
        types.AnnotatedTextEdit(
            range=types.Range(start=types.Position(3, 0), end=types.Position(5, 0)),
            new_text=PROPOSAL,
            annotation_id="goldiff.proposal",
        )
    ]
    annotation = (sent.edit.change_annotations or {})["goldiff.proposal"]
    assert annotation.needs_confirmation is True
    assert session.text == SOURCE.replace(REGION, PROPOSAL)

    session.replace("r ** 2", "r * r")  # the developer keeps the docstring, not the power
    await session.settle()

    final = SOURCE.replace(REGION, PROPOSAL.replace("r ** 2", "r * r"))
    assert session.text == final
    episode = session.episode(result["episode"])
    assert episode["kind"] == "edit" and episode["source"] == "frontier"
    assert episode["before"] == REGION
    assert episode["after"] == PROPOSAL.replace("r ** 2", "r * r")
    assert episode["gold_diff"] == expected_diff(REGION, episode["after"])
    assert validate(episode["gold_diff"]) and apply_patch(SOURCE, episode["gold_diff"]) == final
    assert episode["detail"]["instruction"] == "add a docstring"
    assert episode["detail"]["context_before"] == "import math\n\n\n"
    (proposal,) = session.proposals(result["episode"])
    assert proposal["outcome"] == "accepted"
    assert proposal["instruction"] == "add a docstring"
    assert proposal["before"] == REGION and proposal["text"] == PROPOSAL
    assert proposal["kept_share"] == 0.5  # 1 of its 2 added lines is in the settled text
    assert proposal["latency_ms"] is not None and proposal["latency_ms"] >= 0
    context = json.loads(proposal["context"])
    assert context["context_after"] == "\n\nprint(area(2))\n"

    # The `edits` export turns the episode into a training row whose prompt is the very
    # prompt the model was shown (same format, same context), and whose answer is the gold.
    exported = await session.command("goldiff.exportTraces", {"format": "edits", "path": "edits.jsonl"})
    rows = [r for r in load_rows(Path(exported["paths"]["all"])) if r["kind"] == "edit"]
    (row,) = rows
    shown = build_request(
        SOURCE, SOURCE.index(REGION), SOURCE.index(REGION) + len(REGION),
        path="geometry.py", language="python", instruction="add a docstring", recent_edits=[],
    ).prompt()  # fmt: skip
    assert row["prompt"] == shown
    assert row["completion"] == edit_completion(episode["after"])
    assert row["source"] == "frontier" and row["gold_diff"] == episode["gold_diff"]


async def test_propose_discard_then_written_by_hand(session: Session) -> None:
    result = await session.propose("add a docstring", accept=False)
    assert result["applied"] is False
    assert session.text == SOURCE  # nothing applied
    at = session.text.index("    return")
    session.editor.type(session.uri, at, DOCSTRING)
    await session.settle()

    episode = session.episode(result["episode"])
    after = "def area(r):\n" + DOCSTRING + "    return 3.14 * r * r\n"
    assert episode["before"] == REGION and episode["after"] == after
    assert episode["gold_diff"] == expected_diff(REGION, after)
    (proposal,) = session.proposals(result["episode"])
    assert proposal["outcome"] == "rejected"
    assert proposal["kept_share"] == 0.5  # the hand-written docstring is one of its lines


async def test_two_turns_on_one_episode(session: Session) -> None:
    first = await session.propose("add a docstring", accept=True)
    second = await session.propose("add type hints", accept=True, episode=first["episode"])
    assert second["episode"] == first["episode"] and second["turn"] == 2
    # The second turn rewrote the episode's region as it was after the first.
    assert session.edits_seen[1].edit.document_changes[0].edits[0].range == types.Range(  # type: ignore[union-attr]
        start=types.Position(3, 0), end=types.Position(6, 0)
    )
    await session.settle()

    episode = session.episode(first["episode"])
    assert episode["before"] == REGION and episode["after"] == SECOND
    assert episode["gold_diff"] == expected_diff(REGION, SECOND)
    assert episode["detail"]["turns"] == 2
    assert episode["detail"]["instruction"] == "add a docstring\nadd type hints"
    one, two = session.proposals(first["episode"])
    assert (one["turn"], one["outcome"], one["before"]) == (1, "accepted", REGION)
    assert (two["turn"], two["outcome"], two["before"]) == (2, "accepted", PROPOSAL)
    assert one["kept_share"] == 1.0  # its docstring and return line are both still there
    assert two["kept_share"] == 1.0

    # Test runs after the episode settled are linked to it: the last one decides.
    for exit_code in (1, 0):
        session.client.protocol.notify(
            "goldiff/terminalCommand", {"commandLine": "pytest -q", "exitCode": exit_code}
        )
        await session.command("goldiff.stats")
        assert session.episode(first["episode"])["tests_passed"] == exit_code ^ 1

    stats = await session.command("goldiff.stats")
    (row,) = stats["proposals"]["by_source"]
    assert row == {
        **row,
        "kind": "edit",
        "source": "frontier",
        "proposals": 2,
        "accepted": 2,
        "rejected": 0,
        "episodes": 1,
        "turns_per_episode": 2.0,
        "mean_kept_share": 1.0,
        "tests_passed": 1,
        "tests_failed": 0,
    }


async def test_follow_up_on_a_settled_episode_says_what_to_do(session: Session) -> None:
    first = await session.propose("add a docstring", accept=True)
    await session.settle()
    with pytest.raises(Exception, match="it has settled"):
        await session.propose("add type hints", accept=True, episode=first["episode"])


async def code_actions(session: Session, rng: types.Range) -> list[types.CodeAction]:
    # The client's typed result structures `Command | CodeAction` as a Command whenever
    # `title` and `command` are present; take the raw JSON and structure it as CodeAction.
    protocol = session.client.protocol
    typed = protocol.get_result_type
    protocol.get_result_type = lambda method: (
        None if method == types.TEXT_DOCUMENT_CODE_ACTION else typed(method)
    )  # type: ignore[method-assign]
    try:
        raw = await protocol.send_request_async(
            types.TEXT_DOCUMENT_CODE_ACTION,
            types.CodeActionParams(
                text_document=types.TextDocumentIdentifier(uri=session.uri),
                range=rng,
                context=types.CodeActionContext(diagnostics=[]),
            ),
        )
    finally:
        protocol.get_result_type = typed  # type: ignore[method-assign]
    plain = json.loads(json.dumps(raw, default=lambda o: o._asdict()))
    return [converters.get_converter().structure(a, types.CodeAction) for a in plain or []]


async def test_code_action_on_a_selection(session: Session) -> None:
    rng = types.Range(start=types.Position(3, 0), end=types.Position(4, 5))
    (action,) = await code_actions(session, rng)
    assert isinstance(action, types.CodeAction)
    assert action.title == "Goldiff: Edit with model"
    assert action.kind == types.CodeActionKind.RefactorRewrite
    assert action.command is not None and action.command.command == "goldiff.proposeEdit"
    (arg,) = action.command.arguments or []
    assert arg["uri"] == session.uri and arg["askInstruction"] is True
    assert arg["range"] == {"start": {"line": 3, "character": 0}, "end": {"line": 4, "character": 5}}
    empty = types.Range(start=types.Position(3, 0), end=types.Position(3, 0))
    assert await code_actions(session, empty) == []  # offered on a selection only

    # A client without an input box runs the action's command as it is.
    session.decisions.append(True)
    result = await session.command(action.command.command, *(action.command.arguments or []))
    assert result["applied"] is True
    assert session.text == SOURCE.replace(REGION, PROPOSAL)
    await session.command("goldiff.stats")  # flushes the store
    (proposal,) = session.proposals(result["episode"])
    assert proposal["instruction"] == "Improve this code"


async def test_external_agent_run_attributed_then_partly_reverted(session: Session, tmp_path: Path) -> None:
    agent = tmp_path / "bin" / "fakeagent"
    agent.parent.mkdir()
    agent.write_text(AGENT_SCRIPT.format(python=sys.executable))
    agent.chmod(agent.stat().st_mode | stat.S_IEXEC)
    path = session.ws / "geometry.py"
    started = time.time() * 1000
    subprocess.run([str(agent), str(path)], check=True, timeout=60)
    ended = time.time() * 1000
    disk = path.read_text()
    agent_region = 'def area(r):\n    """Circle area."""\n    return math.pi * r * r\n'
    assert disk == SOURCE.replace(REGION, agent_region)

    # Our watcher sees the file change on disk under the open editor ...
    deadline = time.monotonic() + 20
    while not session.rows("SELECT 1 FROM events WHERE kind = 'external'"):
        assert time.monotonic() < deadline, "the watcher never saw the agent's write"
        await session.command("goldiff.stats")  # flushes the store
    # ... the editor reloads the file (as VS Code does for a clean document), and the
    # terminal reports the finished command with its real start and end.
    session.editor.replace(session.uri, 0, len(session.text), disk)
    session.client.protocol.notify(
        "goldiff/terminalCommand",
        {
            "commandLine": f"fakeagent {path.name}",
            "cwd": str(session.ws),
            "exitCode": 0,
            "startedAt": started,
            "endedAt": ended,
        },
    )
    # The developer takes the docstring back out and keeps the rest.
    session.replace('    """Circle area."""\n', "")
    await session.settle()

    (episode,) = session.rows("SELECT * FROM episodes WHERE kind = 'agent'")
    assert episode["source"] == "fakeagent"
    # The episode's region is the lines the agent changed: the docstring and the return.
    old_return, new_return = "    return 3.14 * r * r\n", "    return math.pi * r * r\n"
    assert episode["before"] == old_return and episode["after"] == new_return
    assert episode["gold_diff"] == unified_diff(old_return, new_return, "geometry.py", 4, 4)
    assert apply_patch(SOURCE, episode["gold_diff"]) == session.text
    (proposal,) = session.proposals(episode["id"])
    assert proposal["kind"] == "agent" and proposal["source"] == "fakeagent"
    assert proposal["instruction"] == "fakeagent geometry.py"
    assert proposal["before"] == old_return
    assert proposal["text"] == '    """Circle area."""\n' + new_return
    assert proposal["outcome"] == "accepted"
    assert proposal["kept_share"] == 0.5  # the new return line stayed, the docstring went
    assert proposal["latency_ms"] == pytest.approx(ended - started, abs=0.01)


async def test_a_command_that_is_no_agent_claims_nothing(session: Session) -> None:
    path = session.ws / "geometry.py"
    started = time.time() * 1000
    path.write_text(SOURCE.replace("3.14", "3.1416"))
    ended = time.time() * 1000
    deadline = time.monotonic() + 20
    while not session.rows("SELECT 1 FROM events WHERE kind = 'external'"):
        assert time.monotonic() < deadline, "the watcher never saw the write"
        await session.command("goldiff.stats")
    session.editor.replace(session.uri, 0, len(session.text), path.read_text())
    session.client.protocol.notify(
        "goldiff/terminalCommand",
        {
            "commandLine": "sed -i s/3.14/3.1416/ geometry.py",
            "exitCode": 0,
            "startedAt": started,
            "endedAt": ended,
        },
    )
    await session.settle()
    assert session.rows("SELECT * FROM proposals") == []


async def test_agent_run_when_the_editor_reloads_before_our_watcher_sees_the_file(
    session: Session, tmp_path: Path
) -> None:
    path = session.ws / "geometry.py"
    started = time.time() * 1000
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import pathlib, sys; p = pathlib.Path(sys.argv[1]); "
            "p.write_text(p.read_text().replace('3.14', 'math.pi'))",
            str(path),
        ],
        check=True,
        timeout=60,
    )
    ended = time.time() * 1000
    session.editor.replace(session.uri, 0, len(session.text), path.read_text())  # the reload first
    session.client.protocol.notify(
        "goldiff/terminalCommand",
        {"commandLine": "claude -p 'use math.pi'", "exitCode": 0, "startedAt": started, "endedAt": ended},
    )
    deadline = time.monotonic() + 20
    while not session.rows("SELECT 1 FROM proposals WHERE kind = 'agent'"):
        assert time.monotonic() < deadline, "the agent's change was never attributed"
        await session.command("goldiff.stats")
    await session.settle()
    (episode,) = session.rows("SELECT * FROM episodes WHERE kind = 'agent'")
    assert episode["source"] == "claude"
    assert (episode["before"], episode["after"]) == (
        "    return 3.14 * r * r\n",
        "    return math.pi * r * r\n",
    )
    (proposal,) = session.proposals(episode["id"])
    assert (proposal["outcome"], proposal["kept_share"]) == ("accepted", 1.0)


async def test_agent_run_on_a_closed_file_starts_from_the_committed_text(session: Session) -> None:
    path = session.ws / "shapes.py"
    path.write_text(SOURCE)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    for args in (["init", "-q"], ["add", "shapes.py"], ["commit", "-qm", "shapes"]):
        subprocess.run([*git, *args], cwd=session.ws, check=True, timeout=60)
    # The watcher has seen the new file (not an agent's doing) before the agent starts.
    deadline = time.monotonic() + 20
    while not session.rows("SELECT 1 FROM edits WHERE kind = 'external'"):
        assert time.monotonic() < deadline, "the watcher never saw the new file"
        await session.command("goldiff.stats")
    started = time.time() * 1000
    path.write_text(SOURCE.replace("3.14 * r * r", "math.pi * r**2"))
    ended = time.time() * 1000
    session.client.protocol.notify(
        "goldiff/terminalCommand",
        {"commandLine": "npx fakeagent 'use math.pi'", "exitCode": 0, "startedAt": started, "endedAt": ended},
    )
    deadline = time.monotonic() + 20
    while not session.rows("SELECT 1 FROM proposals WHERE kind = 'agent'"):
        assert time.monotonic() < deadline, "the agent's change was never attributed"
        await session.command("goldiff.stats")
    # The developer opens the file and writes the power back as a product.
    uri = path.as_uri()
    session.editor.open(uri, path.read_text())
    at = session.editor.texts[uri].index("r**2")
    session.editor.replace(uri, at, at + 4, "r * r")
    session.editor.save(uri)
    await session.advance(11)
    await session.command("goldiff.stats")

    (episode,) = session.rows("SELECT * FROM episodes WHERE kind = 'agent'")
    assert episode["source"] == "fakeagent"
    assert (episode["before"], episode["after"]) == (
        "    return 3.14 * r * r\n",
        "    return math.pi * r * r\n",
    )
    (proposal,) = session.proposals(episode["id"])
    assert proposal["text"] == "    return math.pi * r**2\n"
    assert (proposal["outcome"], proposal["kept_share"]) == ("rejected", 0.0)  # none of it kept as written


async def test_shadow_mode_records_the_local_rewrite_beside_the_shown_one(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    home = tmp_path / "home"
    path = ws / "geometry.py"
    path.write_text(SOURCE)
    local_rules = {
        "model": "tiny-edit",
        "edits": [{"instruction": "docstring", "text": "def area(r):\n    pass\n"}],
    }
    options = {
        "mode": "shadow",
        "frontier": {"model": "test:" + json.dumps(EDIT_RULES)},
        "local": {"model": "test:" + json.dumps(local_rules)},
    }
    env = server_env(home)
    async with goldiff_client(
        home, workspace=ws, env=env, options=options, server_args=["--clock", "logical"]
    ) as client:
        s = Session(client, home, ws, path.as_uri())
        s.editor.open(s.uri, SOURCE)
        result = await s.propose("add a docstring", accept=True)
        assert s.text == SOURCE.replace(REGION, PROPOSAL)  # the frontier's is the one shown
        deadline = time.monotonic() + 20
        while len(s.proposals(result["episode"])) < 2:
            assert time.monotonic() < deadline, "the shadow rewrite was never recorded"
            await s.command("goldiff.stats")
        await s.settle()
        stats = await s.command("goldiff.stats")
    shown, shadow = sorted(s.proposals(result["episode"]), key=lambda p: p["shadow_of"] is not None)
    assert (shown["source"], shown["outcome"], shown["shadow_of"]) == ("frontier", "accepted", None)
    assert (shadow["source"], shadow["model"], shadow["shadow_of"]) == ("local", "tiny-edit", shown["id"])
    assert shadow["outcome"] is None and shadow["text"] == "def area(r):\n    pass\n"
    assert shadow["context"] == shown["context"]  # the same question, word for word
    assert shadow["kept_share"] == 0.0  # the developer kept the frontier's, not this
    by_source = {r["source"]: r for r in stats["proposals"]["by_source"]}
    assert by_source["local"]["proposals"] == 0 and by_source["local"]["shadow"] == 1
    assert s.episode(result["episode"])["detail"]["turns"] == 1
