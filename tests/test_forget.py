"""`goldiff forget` deletes a workspace's, a document's or a time range's data from the files.

Forgetting is checked on the raw bytes of `traces.db` and its WAL, not through SQL: a row
deleted from a table but still in a free page or an old WAL frame is not forgotten.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from click.testing import CliRunner
from goldiff import audit
from goldiff.cli import main
from goldiff.errors import ForgetError
from goldiff.export import parse_time
from goldiff.migrations import migrate
from goldiff.store import EditRecord, TraceStore, forget, open_database
from lsprotocol import types

from tests.lsp_client import Editor, goldiff_client, server_env
from tests.sources.test_completion_lsp import complete


def _marks(name: str) -> dict[str, str]:
    """Text unique to one workspace, one piece per way it reaches the store."""
    return {
        "opened": f"def opened_in_{name}_7731():\n    return 1\n",
        "typed": f"typed_in_{name}_5519 = 2\n",
        "terminal": f"pytest -k only_in_{name}_8802",
        "output": f"output_of_{name}_4410 passed",
        "instruction": f"rename to renamed_{name}_6624",
        "proposal": f"def proposed_in_{name}_9913(r):\n    return r\n",
    }


async def _record(home: Path, ws: Path, name: str) -> None:
    marks = _marks(name)
    rules = {
        "rules": [{"after": "# go\n", "text": f"suggested_in_{name}_3307 = 3"}],
        "edits": [{"instruction": "rename", "text": marks["proposal"]}],
    }
    options = {"mode": "frontier", "frontier": {"model": "test:" + json.dumps(rules)}}
    env = server_env(home)
    path = ws / "mod.py"
    text = marks["opened"] + "\n# go\n"
    path.write_text(text)
    async with goldiff_client(
        home, workspace=ws, env=env, options=options, server_args=["--clock", "logical"]
    ) as client:

        @client.feature(types.WORKSPACE_APPLY_EDIT)
        def apply_edit(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
            return types.ApplyWorkspaceEditResult(applied=False)  # the developer declines

        async def command(name: str, *args: Any) -> Any:
            return await client.workspace_execute_command_async(
                types.ExecuteCommandParams(command=name, arguments=list(args))
            )

        editor = Editor(client)
        uri = path.as_uri()
        editor.open(uri, text)
        editor.type(uri, len(text), marks["typed"])
        client.protocol.notify(
            "goldiff/terminalCommand",
            {"commandLine": marks["terminal"], "cwd": str(ws), "exitCode": 0, "output": marks["output"]},
        )
        await command(
            "goldiff.proposeEdit",
            {
                "uri": uri,
                "instruction": marks["instruction"],
                "range": {"start": {"line": 0, "character": 0}, "end": {"line": 2, "character": 0}},
            },
        )
        # The declined edit left the text ending in a newline: the completion is asked on a new line.
        await complete(client, uri, editor.texts[uri])
        editor.save(uri)
        await command("goldiff.advanceClock", {"seconds": 120})
        await command("goldiff.stats")


def _files(home: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(home.glob("traces.db*")) if not p.name.endswith("-shm"))


def _fragments(name: str) -> list[bytes]:
    # The distinctive part of each mark: what must vanish (or stay) in the files.
    return [f"{kind}_in_{name}".encode() for kind in ("opened", "typed", "proposed", "suggested")] + [
        f"only_in_{name}".encode(),
        f"output_of_{name}".encode(),
        f"renamed_{name}".encode(),
    ]


async def test_forget_a_workspace_removes_its_bytes_and_keeps_the_other(tmp_path: Path) -> None:
    home = tmp_path / "home"
    for name in ("alpha", "beta"):
        (tmp_path / name).mkdir()
        await _record(home, tmp_path / name, name)
    before = _files(home)
    assert all(f in before for name in ("alpha", "beta") for f in _fragments(name))
    db, _ = open_database(home / "traces.db")
    proposals = db.execute("SELECT COUNT(*) FROM proposals").fetchone()[0]
    db.conn.close()
    assert proposals == 2

    result = CliRunner().invoke(
        main, ["forget", "--workspace", str(tmp_path / "alpha"), "--yes", "--home", str(home)]
    )
    assert result.exit_code == 0, result.output
    deleted = json.loads(result.output)
    assert deleted["proposals"] == 1 and deleted["documents"] >= 1

    after = _files(home)
    assert [f for f in _fragments("alpha") if f in after] == []
    assert [f for f in _fragments("beta") if f not in after] == []
    wal = home / "traces.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0
    db, _ = open_database(home / "traces.db")
    try:
        beta = (tmp_path / "beta" / "mod.py").as_uri()
        rebuilt = audit.rebuild(db, beta)
        assert rebuilt.verified and "typed_in_beta_5519 = 2\n" in rebuilt.text
        assert db.execute("SELECT COUNT(*) FROM proposals").fetchone()[0] == 1
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        db.conn.close()


def _store_with_two_documents(path: Path) -> None:
    store = TraceStore(path)
    for name, ts in (("a", 1000.0), ("b", 5000.0)):
        uri = f"file:///ws/{name}.py"
        store.record_document(
            {"id": name, "session_id": "s", "uri": uri, "workspace": "file:///ws", "opened_at": ts}
        )
        store.record_edit(EditRecord(name, "open", 1, ts, 0.0, inserted=f"text_of_{name}_1234\n"))
        store.record_proposal(
            {
                "id": f"p{name}",
                "episode_id": f"e{name}",
                "document_id": name,
                "ts": ts,
                "instruction": f"ask_{name}",
            },
        )
        store.record_episode({"id": f"e{name}", "document_id": name, "started_at": ts, "detail": "{}"})
        store.record_event("gap", session_id="s", detail={"uri": uri, "reason": "test"}, ts=ts)
    store.close()


@pytest.mark.parametrize(
    ("args", "gone", "kept"),
    [
        (["--document", "file:///ws/a.py"], "a", "b"),
        (["--since", "4000"], "b", "a"),
        (["--until", "1970-01-01T01:00:00+00:00"], "a", "b"),
    ],
)
def test_forget_a_document_or_a_time_range(tmp_path: Path, args: list[str], gone: str, kept: str) -> None:
    home = tmp_path / "home"
    _store_with_two_documents(home / "traces.db")
    result = CliRunner().invoke(main, ["forget", *args, "--yes", "--home", str(home)])
    assert result.exit_code == 0, result.output
    raw = _files(home)
    for fragment in (f"text_of_{gone}_1234", f"ask_{gone}", f"/ws/{gone}.py"):
        assert fragment.encode() not in raw
    for fragment in (f"text_of_{kept}_1234", f"ask_{kept}", f"/ws/{kept}.py"):
        assert fragment.encode() in raw


@pytest.fixture
def an_hour_behind_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "Etc/GMT+1")  # POSIX signs: one hour behind UTC
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("an_hour_behind_utc")
def test_forget_and_export_read_a_time_without_a_zone_as_the_same_local_instant(tmp_path: Path) -> None:
    # 00:00 local is 01:00 UTC, 3600 s: after document a (1000 s), before b (5000 s).
    assert parse_time("1970-01-01T00:00", "--since") == 3600.0
    assert parse_time("1970-01-01T00:00Z", "--since") == 0.0
    home = tmp_path / "home"
    _store_with_two_documents(home / "traces.db")
    result = CliRunner().invoke(main, ["forget", "--since", "1970-01-01T00:00", "--yes", "--home", str(home)])
    assert result.exit_code == 0, result.output
    raw = _files(home)
    assert b"text_of_b_1234" not in raw and b"text_of_a_1234" in raw
    bad = CliRunner().invoke(main, ["forget", "--since", "yesterday", "--yes", "--home", str(home)])
    assert bad.exit_code == 2 and "--since" in bad.output and "2026-11-27T09:00" in bad.output


def test_forget_needs_a_scope_and_all_means_everything(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _store_with_two_documents(home / "traces.db")
    runner = CliRunner()
    bare = runner.invoke(main, ["forget", "--yes", "--home", str(home)])
    assert bare.exit_code == 2 and "--all" in bare.output
    both = runner.invoke(main, ["forget", "--all", "--document", "x.py", "--yes", "--home", str(home)])
    assert both.exit_code == 2
    everything = runner.invoke(main, ["forget", "--all", "--yes", "--home", str(home)])
    assert everything.exit_code == 0
    assert b"text_of_" not in _files(home) and b"ask_" not in _files(home)


def test_every_table_is_reached_by_forget(tmp_path: Path) -> None:
    # Derived from the schema: each table links to a document, suggestion, episode,
    # workspace or time; a table that does not makes forget refuse rather than keep it.
    db = sqlite_utils.Database(sqlite3.connect(tmp_path / "s.db", isolation_level=None))
    migrate(db)
    assert forget(db, "file:///nowhere") == {}
    db.table("notes").create({"id": int, "text": str}, pk="id")
    with pytest.raises(ForgetError, match="notes"):
        forget(db, "file:///nowhere")


def test_forget_deletes_the_engines_saved_file_states(tmp_path: Path) -> None:
    """The local engine's saved KV states (a cache of evaluated code) go with any forget."""
    from goldiff.home import states_dir
    from goldiff.sources.states import StateCache

    home = tmp_path / "home"
    _store_with_two_documents(home / "traces.db")
    cache = StateCache(states_dir(home), "model")
    cache.save("/ws/a.py", [1, 2, 3], b"text_of_a_1234 as evaluated")
    assert cache.flush()
    cache.close()
    assert list(states_dir(home).glob("*.state"))
    result = CliRunner().invoke(
        main, ["forget", "--document", "file:///ws/a.py", "--yes", "--home", str(home)]
    )
    assert result.exit_code == 0, result.output
    assert not list(states_dir(home).iterdir())
