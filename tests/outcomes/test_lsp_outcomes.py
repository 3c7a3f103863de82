"""Scripted editor sessions over real LSP: each suggestion's outcome, survival and gold.

The server is `tests.testing_server`: suggestions come from `goldiff.test.suggest` and
time moves only through `goldiff.advanceClock` (a logical clock), so nothing here sleeps.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from goldiff.outcomes.diffs import validate
from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.lsp_client import Editor, goldiff_client, utf16_pos
from tests.outcomes.test_diffs import apply_patch

SOURCE = "def add(a, b):\n    \n\n\nprint(add(1, 2))\n"
CURSOR = 19  # line 1, after the indentation
SUGGESTION = "return a + b"


class Session:
    def __init__(self, client: LanguageClient, home: Path, uri: str) -> None:
        self.client = client
        self.home = home
        self.uri = uri
        self.editor = Editor(client)
        self.now = 0.0

    async def command(self, name: str, *args: Any) -> Any:
        return await self.client.workspace_execute_command_async(
            types.ExecuteCommandParams(command=name, arguments=list(args))
        )

    async def suggest(self, offset: int, text: str) -> str:
        pos = utf16_pos(self.editor.texts[self.uri], offset)
        result = await self.command(
            "goldiff.test.suggest",
            {"uri": self.uri, "line": pos.line, "character": pos.character, "text": text},
        )
        return str(result["id"])

    async def advance(self, seconds: float) -> float:
        self.now = (await self.command("goldiff.advanceClock", {"seconds": seconds}))["now"]
        return self.now

    def notify(self, method: str, params: dict[str, Any]) -> None:
        self.client.protocol.notify(method, params)

    def terminal(self, command_line: str, exit_code: int) -> None:
        self.notify(
            "goldiff/terminalCommand",
            {"commandLine": command_line, "cwd": str(self.home), "exitCode": exit_code},
        )

    def full_change(self, text: str) -> None:
        """A whole new text, as a client sends after the file changed on disk."""
        self.editor.texts[self.uri] = text
        self.editor.versions[self.uri] += 1
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(
                    uri=self.uri, version=self.editor.versions[self.uri]
                ),
                content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
            )
        )

    @property
    def text(self) -> str:
        return self.editor.texts[self.uri]

    def db(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.home / "traces.db")
        conn.row_factory = sqlite3.Row
        return conn

    def suggestion(self, suggestion_id: str) -> dict[str, Any]:
        with self.db() as conn:
            row = conn.execute("SELECT * FROM suggestions WHERE id = ?", [suggestion_id]).fetchone()
        assert row is not None
        out = dict(row)
        out["survival"] = json.loads(out["survival"]) if out["survival"] else None
        return out

    def events(self, suggestion_id: str) -> list[tuple[str, dict[str, Any]]]:
        with self.db() as conn:
            rows = conn.execute(
                "SELECT kind, detail FROM suggestion_events WHERE suggestion_id = ? ORDER BY id",
                [suggestion_id],
            ).fetchall()
        return [(r["kind"], json.loads(r["detail"])) for r in rows]

    def episode(self, episode_id: str) -> dict[str, Any]:
        with self.db() as conn:
            row = conn.execute("SELECT * FROM episodes WHERE id = ?", [episode_id]).fetchone()
        assert row is not None
        out = dict(row)
        out["detail"] = json.loads(out["detail"]) if out["detail"] else None
        return out


@pytest.fixture
async def session(tmp_path: Path) -> AsyncIterator[Session]:
    ws = tmp_path / "ws"
    ws.mkdir()
    home = tmp_path / "home"
    uri = (ws / "app.py").as_uri()
    async with goldiff_client(home, workspace=ws, testing=True) as client:
        s = Session(client, home, uri)
        s.editor.open(uri, SOURCE)
        await s.advance(0)
        yield s


ALL_SETTLED = 600  # seconds: past every checkpoint


async def test_accept_then_edit_half_of_it(session: Session) -> None:
    s = session
    sid = await s.suggest(CURSOR, SUGGESTION)
    s.notify("goldiff/suggestionShown", {"id": sid})
    start = await s.advance(1)
    s.editor.replace(s.uri, CURSOR, CURSOR, SUGGESTION)  # Tab: the client inserts the text
    await s.command("goldiff.accepted", sid)  # then runs the item's command
    await s.advance(9)
    s.editor.replace(s.uri, CURSOR + 7, CURSOR + 12, "total")  # "a + b" → "total"
    await s.advance(21)  # 30 s after acceptance
    row = s.suggestion(sid)
    assert (row["outcome"], row["accepted_length"], row["shown"]) == ("accepted", 12, 1)
    assert row["survival"] == {"30": round(1 - 5 / 12, 4)}
    assert row["gold"] is None  # unsaved: not settled yet
    s.editor.save(s.uri)
    await s.advance(10)
    row = s.suggestion(sid)
    assert row["gold"] == "return total"
    assert row["settled_at"] == start + 30  # idle for 21 s already: settled at the save
    await s.advance(ALL_SETTLED)
    row = s.suggestion(sid)
    assert row["survival"] == {k: round(1 - 5 / 12, 4) for k in ("30", "120", "300", "600")}
    assert row["reverted"] == 0
    kinds = [(k, d.get("inferred")) for k, d in s.events(sid)]
    assert kinds[:3] == [("shown", None), ("accepted", True), ("accepted", False)]
    assert [k for k, _ in kinds[3:]] == ["checkpoint", "settled", "checkpoint", "checkpoint", "checkpoint"]
    episode = s.episode(row["episode_id"])
    assert episode["before"] == "    \n"
    assert episode["after"] == "    return total\n"
    assert episode["gold_diff"] == ("--- a/app.py\n+++ b/app.py\n@@ -2 +2 @@\n-    \n+    return total\n")
    assert validate(episode["gold_diff"])
    assert apply_patch(SOURCE, episode["gold_diff"]) == s.text
    assert episode["source"] == "test" and episode["detail"]["suggestions"] == [sid]
    context = episode["detail"]["context"]  # what the suggestion saw, for an edits export
    assert (context["context_before"], context["context_after"]) == (
        "def add(a, b):\n",
        "\n\nprint(add(1, 2))\n",
    )
    assert (context["cursor"], context["recent_edits"]) == (4, [])


async def test_accept_then_revert(session: Session) -> None:
    s = session
    sid = await s.suggest(CURSOR, SUGGESTION)
    s.editor.replace(s.uri, CURSOR, CURSOR, SUGGESTION)
    await s.command("goldiff.accepted", sid)
    await s.advance(5)
    s.editor.replace(s.uri, CURSOR, CURSOR + len(SUGGESTION), "")  # undo
    s.editor.type(s.uri, CURSOR, "pass")  # typed where it was: it stays reverted
    s.editor.save(s.uri)
    await s.advance(ALL_SETTLED)
    row = s.suggestion(sid)
    assert (row["outcome"], row["reverted"], row["gold"]) == ("accepted", 1, "")
    assert row["survival"] == {"30": 0.0, "120": 0.0, "300": 0.0, "600": 0.0}
    assert [k for k, _ in s.events(sid)][:3] == ["accepted", "accepted", "reverted"]
    episode = s.episode(row["episode_id"])
    assert episode["after"] == "    pass\n"
    assert apply_patch(SOURCE, episode["gold_diff"]) == s.text


async def test_reject_by_typing_something_else(session: Session) -> None:
    s = session
    sid = await s.suggest(CURSOR, SUGGESTION)
    end = s.editor.type(s.uri, CURSOR, "pass\n    x = 1")
    await s.advance(3)
    s.editor.save(s.uri)
    row = s.suggestion(sid)
    assert (row["outcome"], row["reason"], row["gold"]) == ("rejected", "typedOver", None)
    await s.advance(10)
    row = s.suggestion(sid)
    assert (row["outcome"], row["reason"], row["accepted_length"]) == ("rejected", "typedOver", 0)
    assert row["gold"] == "pass"  # what was written instead, to the end of the line
    assert row["survival"] is None and row["reverted"] is None
    assert s.events(sid)[0] == ("rejected", {"reason": "typedOver", "inferred": True})
    episode = s.episode(row["episode_id"])
    assert episode["after"] == "    pass\n    x = 1\n"
    assert episode["gold_diff"] == (
        "--- a/app.py\n+++ b/app.py\n@@ -2 +2,2 @@\n-    \n+    pass\n+    x = 1\n"
    )
    assert end == CURSOR + len("pass\n    x = 1")


async def test_partial_accept(session: Session) -> None:
    s = session
    sid = await s.suggest(CURSOR, SUGGESTION)
    s.editor.replace(s.uri, CURSOR, CURSOR, "return ")  # accept one word
    s.notify("goldiff/suggestionPartiallyAccepted", {"id": sid, "acceptedLength": 7})
    s.editor.type(s.uri, CURSOR + 7, "None")  # then writes the rest differently
    s.editor.save(s.uri)
    await s.advance(ALL_SETTLED)
    row = s.suggestion(sid)
    assert (row["outcome"], row["accepted_length"], row["gold"]) == ("partial", 7, "return ")
    assert row["survival"] == {"30": 1.0, "120": 1.0, "300": 1.0, "600": 1.0}
    events = s.events(sid)
    assert events[0] == ("partial", {"inferred": True, "accepted_length": 7})
    assert events[1] == ("partial", {"inferred": False, "accepted_length": 7})

    # A second suggestion accepted piece by piece, by a client that sends nothing else.
    line_end = s.text.index("\n", CURSOR)
    s.editor.replace(s.uri, line_end, line_end, "\n    ")
    offset = line_end + 5
    sid2 = await s.suggest(offset, "y = a * b")
    for piece in ("y ", "= ", "a * b"):
        s.editor.replace(s.uri, offset, offset, piece)
        offset += len(piece)
    s.editor.save(s.uri)
    await s.advance(ALL_SETTLED)
    row2 = s.suggestion(sid2)
    assert (row2["outcome"], row2["accepted_length"], row2["gold"]) == ("accepted", 9, "y = a * b")
    assert [d["accepted_length"] for _, d in s.events(sid2)[:3]] == [2, 4, 9]


async def test_external_edit_inside_a_span(session: Session) -> None:
    s = session
    sid = await s.suggest(CURSOR, SUGGESTION)
    s.editor.replace(s.uri, CURSOR, CURSOR, SUGGESTION)
    await s.command("goldiff.accepted", sid)
    await s.advance(5)
    # The file changes on disk (a formatter, a git checkout): a line above, "b" → "bb" inside.
    s.full_change("import os\n" + s.text.replace("a + b", "a + bb"))
    s.editor.save(s.uri)
    await s.advance(ALL_SETTLED)
    row = s.suggestion(sid)
    assert (row["outcome"], row["gold"]) == ("accepted", "return a + bb")
    assert row["survival"]["30"] == round(1 - 1 / 12, 4)
    episode = s.episode(row["episode_id"])
    assert episode["gold_diff"] == ("--- a/app.py\n+++ b/app.py\n@@ -2 +3 @@\n-    \n+    return a + bb\n")


async def test_two_overlapping_suggestions(session: Session) -> None:
    s = session
    first = await s.suggest(CURSOR, SUGGESTION)
    second = await s.suggest(CURSOR, "return a * b")  # made before the first was decided
    s.editor.replace(s.uri, CURSOR, CURSOR, "return a * b")
    await s.command("goldiff.accepted", second)
    s.editor.save(s.uri)
    await s.advance(ALL_SETTLED)
    a, b = s.suggestion(first), s.suggestion(second)
    assert (a["outcome"], a["reason"], a["gold"]) == ("rejected", "replaced", "return a * b")
    assert (b["outcome"], b["gold"]) == ("accepted", "return a * b")
    assert b["survival"]["600"] == 1.0 and a["survival"] is None
    assert a["episode_id"] == b["episode_id"]
    episode = s.episode(a["episode_id"])
    assert episode["detail"]["suggestions"] == [first, second]
    assert apply_patch(SOURCE, episode["gold_diff"]) == s.text


async def test_commit_is_a_settle_boundary(session: Session) -> None:
    s = session
    sid = await s.suggest(CURSOR, SUGGESTION)
    s.editor.replace(s.uri, CURSOR, CURSOR, SUGGESTION)
    await s.command("goldiff.accepted", sid)
    s.terminal("python app.py", 0)
    now = await s.advance(2)  # unsaved and only 2 s idle: no settle yet
    assert s.suggestion(sid)["gold"] is None
    s.terminal("git commit -am 'add add()'", 0)
    await s.advance(0)
    row = s.suggestion(sid)
    assert (row["gold"], row["settled_at"]) == (SUGGESTION, now)
    s.editor.replace(s.uri, CURSOR, CURSOR + 6, "yield")  # later edits do not change the gold
    s.editor.save(s.uri)
    await s.advance(ALL_SETTLED)
    row = s.suggestion(sid)
    assert row["gold"] == SUGGESTION
    assert row["survival"]["30"] == round(1 - 6 / 12, 4)
    episode = s.episode(row["episode_id"])
    assert episode["ended_at"] == now
    assert [c["command_line"] for c in episode["detail"]["terminal_commands"]] == [
        "python app.py",
        "git commit -am 'add add()'",
    ]


async def test_failing_then_passing_test_run_after_an_episode(session: Session) -> None:
    s = session
    sid = await s.suggest(CURSOR, SUGGESTION)
    s.editor.replace(s.uri, CURSOR, CURSOR, SUGGESTION)
    await s.command("goldiff.accepted", sid)
    s.editor.save(s.uri)
    await s.advance(10)
    episode_id = s.suggestion(sid)["episode_id"]
    assert s.episode(episode_id)["tests_passed"] is None
    s.terminal("pytest -q", 1)
    await s.advance(60)
    episode = s.episode(episode_id)
    assert episode["tests_passed"] == 0
    s.terminal("ls", 0)
    s.terminal("CI=1 python -m pytest -q", 0)
    await s.advance(1)
    episode = s.episode(episode_id)
    assert episode["tests_passed"] == 1
    runs = episode["detail"]["test_runs"]
    assert [(r["command"], r["passed"]) for r in runs] == [
        ("pytest -q", False),
        ("python -m pytest -q", True),
    ]
    assert episode["detail"]["terminal_commands"] == []  # all ran after the episode ended


async def test_stats_report_outcomes(session: Session) -> None:
    s = session
    accepted = await s.suggest(CURSOR, SUGGESTION)
    s.editor.replace(s.uri, CURSOR, CURSOR, SUGGESTION)
    await s.command("goldiff.accepted", accepted)
    s.editor.save(s.uri)
    await s.advance(ALL_SETTLED)
    rejected = await s.suggest(len(s.text), "print('done')")
    s.notify("goldiff/suggestionRejected", {"id": rejected, "reason": "dismissed"})
    await s.advance(0)
    stats = await s.command("goldiff.stats")
    outcomes = stats["outcomes"]
    overall = outcomes["overall"]
    assert (overall["accepted"], overall["rejected"], overall["acceptance_rate"]) == (1, 1, 0.5)
    assert overall["mean_survival"] == {"30": 1.0, "120": 1.0, "300": 1.0, "600": 1.0}
    assert [(e["source"], e["model"], e["suggestions"]) for e in outcomes["by_source"]] == [
        ("test", "deterministic", 2)
    ]
    # The test clock runs minutes ahead: near midnight the two suggestions span two days.
    assert 1 <= len(outcomes["by_day"]) <= 2
    assert sum(day["suggestions"] for day in outcomes["by_day"]) == 2
    assert s.suggestion(rejected)["reason"] == "dismissed"
