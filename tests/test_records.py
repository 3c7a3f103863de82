"""The store read back as typed records: what the writer recorded, by name."""

from __future__ import annotations

from pathlib import Path

import pytest
from goldiff import records
from goldiff.store import EditRecord, TraceStore, open_database


def test_records_read_back_what_was_recorded(tmp_path: Path) -> None:
    store = TraceStore(tmp_path / "traces.db")
    store.record_session({"id": "s", "started_at": 1.0, "mode": "frontier"})
    store.record_document({"id": "d", "session_id": "s", "uri": "file:///w/a.py", "path": "a.py"})
    store.record_edit(EditRecord("d", "open", 1, 1.0, 1.0, inserted="a = 1\n"))
    for version, ch in enumerate("b = 2\n", 2):  # a typing run: one row for six versions
        store.record_edit(EditRecord("d", "change", version, 2.0, 2.0, offset=4 + version, inserted=ch))
    store.record_edit(EditRecord("d", "change", 8, 3.0, 3.0, offset=4, removed=1, inserted="10"))
    store.record_terminal_command({"session_id": "s", "command_line": "pytest -q", "exit_code": 1})
    store.record_event("commit", session_id="s", detail={"sha": "abc"}, ts=4.0)
    store.record_proposal({"id": "p", "episode_id": "e", "turn": 1, "ts": 5.0, "kind": "edit"})
    store.close()
    db, _ = open_database(tmp_path / "traces.db")

    assert [d.id for d in records.iter_documents(db, "file:///w/a.py")] == ["d"]
    latest = records.document_at(db, "d", history=5)
    assert (latest.text, latest.version, latest.verified) == ("a = 10\nb = 2\n", 8, True)
    assert latest.changes[-1] == ("a = 1\nb = 2\n", "a = 10\nb = 2\n")
    assert records.document_at(db, "d", 4).text == "a = 1\nb ="  # cut inside the typing run
    with pytest.raises(records.NotRecordedError):
        records.document_at(db, "d", 0)
    command = db.execute("SELECT command_line, exit_code, session_id FROM terminal_commands").fetchall()
    assert command == [("pytest -q", 1, "s")]
    (event,) = records.iter_events(db, "commit")
    assert (event.detail, event.ts, records.last_event_at(db)) == ({"sha": "abc"}, 4.0, 4.0)
    assert db.execute("SELECT id, episode_id, turn, ts, kind FROM proposals").fetchall() == [
        ("p", "e", 1, 5.0, "edit")
    ]
    assert records.count_rows(db, "documents") == 1 and records.count_rows(db, "keystroke_versions") == 8
    assert records.shadow_tally(db).answers == 0


def test_suggestions_of_one_document_and_its_text_from_the_session_that_kept_it(tmp_path: Path) -> None:
    from goldiff import audit

    store = TraceStore(tmp_path / "traces.db")
    for session in ("s1", "s2"):
        store.record_session({"id": session, "started_at": 1.0, "mode": "local"})
    store.record_document({"id": "a", "session_id": "s1", "uri": "file:///w/a.py", "path": "a.py"})
    store.record_document({"id": "b", "session_id": "s1", "uri": "file:///w/b.py", "path": "b.py"})
    store.record_edit(EditRecord("a", "open", 1, 1.0, 1.0, inserted="a = 1\n"))
    # A later session skipped the same file (it had grown too large, say): no text of its own.
    store.record_document(
        {"id": "a2", "session_id": "s2", "uri": "file:///w/a.py", "opened_at": 9.0, "skipped": "too large"}
    )
    for sid, doc, ts in (("x", "a", 2.0), ("y", "b", 3.0), ("z", "a", 4.0)):
        store.record_suggestion({"id": sid, "session_id": "s1", "document_id": doc, "ts": ts, "text": sid})
    store.close()
    db, _ = open_database(tmp_path / "traces.db")

    only_a = records.Filters(uri="file:///w/a.py")
    assert [s.id for s in records.iter_suggestions(db, only_a)] == ["x", "z"]
    assert records.count_suggestions(db, only_a) == 2
    assert audit.rebuild(db, "file:///w/a.py").text == "a = 1\n"
    answer = audit.recorded(db, "file:///w/a.py", limit=1)
    assert (answer.text, answer.verified, [s.id for s in answer.suggestions]) == ("a = 1\n", True, ["z"])
    with pytest.raises(records.NotRecordedError, match="recorded nothing"):
        audit.recorded(db, "file:///w/never.py")


def test_outcome_stats_of_a_store_without_suggestions_say_there_is_nothing_to_average(tmp_path: Path) -> None:
    TraceStore(tmp_path / "traces.db").close()
    db, _ = open_database(tmp_path / "traces.db")

    overall = records.outcome_stats(db)["overall"]

    assert (overall["suggestions"], overall["shown"], overall["acceptance_rate"]) == (0, 0, None)
    assert overall["mean_survival"] == {"30": None, "120": None, "300": None, "600": None}
