"""The tracker without a language server: edge cases of the lifecycle, against a real store."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from goldiff.capture.documents import Document
from goldiff.clock import LogicalClock
from goldiff.outcomes.suggestions import PENDING_TIMEOUT_SECONDS, OutcomeTracker
from goldiff.store import TraceStore


class Rig:
    def __init__(self, path: Path, *, real_timers: bool = False, settle: float = 10.0) -> None:
        self.store = TraceStore(path)
        self.clock = LogicalClock(1_000_000.0)
        self.tracker = OutcomeTracker(
            self.store,
            session_id=lambda: "s1",
            settle_seconds=lambda: settle,
            clock=self.clock,
            real_timers=real_timers,
        )
        self.doc = Document.new("file:///w/a.py", "python", 1, "def f():\n    \n")
        self.doc.path = "a.py"

    def suggest(self, offset: int, text: str, sid: str) -> str:
        self.store.record_suggestion({"id": sid, "document_id": self.doc.id, "text": text, "source": "t"})
        self.tracker.suggestion_made(self.doc, sid, offset, text, source="t")
        return sid

    def edit(self, offset: int, removed: int, inserted: str, kind: str = "change") -> None:
        if kind == "change":
            pos = self.doc.position_at(offset)
            end = self.doc.position_at(offset + removed)
            record = self.doc.apply(pos, end, inserted, (self.doc.version or 0) + 1, now=self.clock())
        else:
            text = self.doc.text[:offset] + inserted + self.doc.text[offset + removed :]
            record = self.doc.replace_all(text, (self.doc.version or 0) + 1, kind, now=self.clock())
        self.tracker.on_edit(self.doc, record)

    def advance(self, seconds: float) -> None:
        self.tracker.timers.advance(self.clock, seconds)

    def live_spans(self) -> int:
        return sum(len(s.items) for s in self.tracker._docs.values())

    def row(self, sid: str) -> dict[str, Any]:
        self.store.flush()
        conn = sqlite3.connect(self.store.path)
        conn.row_factory = sqlite3.Row
        try:
            out = dict(conn.execute("SELECT * FROM suggestions WHERE id = ?", [sid]).fetchone())
        finally:
            conn.close()
        out["survival"] = json.loads(out["survival"]) if out["survival"] else None
        return out


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = Rig(tmp_path / "traces.db")
    yield r
    r.store.close()


CURSOR = 13  # after the indentation on line 1


def test_untouched_suggestion_times_out_and_settles(rig: Rig) -> None:
    rig.suggest(CURSOR, "return 1", "a")
    rig.advance(PENDING_TIMEOUT_SECONDS - 1)
    assert rig.row("a")["outcome"] is None
    rig.advance(1)
    row = rig.row("a")
    assert (row["outcome"], row["reason"], row["gold"]) == ("rejected", "timeout", "")


def test_edit_elsewhere_dismisses_and_gold_is_what_is_written_there_later(rig: Rig) -> None:
    rig.suggest(CURSOR, "return 1", "a")
    rig.edit(0, 0, "# top\n")  # the cursor left
    assert rig.row("a")["reason"] == "dismissed"
    rig.edit(CURSOR + 6, 0, "return 2")  # the developer comes back and writes at that place
    rig.tracker.on_save(rig.doc)
    rig.advance(10)
    assert rig.row("a")["gold"] == "return 2"


def test_command_overrides_an_inferred_rejection(rig: Rig) -> None:
    rig.suggest(CURSOR, "return 1", "a")
    rig.edit(0, 0, "#\n")  # inferred: dismissed
    assert rig.row("a")["reason"] == "dismissed"
    rig.edit(CURSOR + 2, 0, "return 1")
    rig.tracker.accepted("a")
    row = rig.row("a")
    assert (row["outcome"], row["reason"], row["accepted_length"]) == ("accepted", None, 8)
    rig.tracker.on_save(rig.doc)
    rig.advance(30)
    assert rig.row("a")["survival"] == {"30": 1.0}


def test_completion_whose_range_starts_at_the_line_is_accepted(rig: Rig) -> None:
    rig.suggest(CURSOR, "return 1", "a")
    rig.edit(9, 4, "    return 1")  # replaces the typed indentation with itself + the text
    row = rig.row("a")
    assert (row["outcome"], row["accepted_length"]) == ("accepted", 8)


def test_partial_notification_before_its_edit_counts_utf16(rig: Rig) -> None:
    rig.suggest(CURSOR, "x = '😀' + y", "a")
    rig.tracker.partially_accepted("a", 7)  # "x = '😀" is 7 UTF-16 units, 6 code points
    rig.edit(CURSOR, 0, "x = '😀")
    row = rig.row("a")
    assert (row["outcome"], row["accepted_length"]) == ("partial", 6)


def test_external_change_moves_the_span(rig: Rig) -> None:
    rig.suggest(CURSOR, "return 1", "a")
    rig.edit(CURSOR, 0, "return 1")
    rig.edit(0, 0, "import os\n\n", kind="external")
    rig.edit(CURSOR + 11 + 7, 1, "42", kind="external")  # "1" → "42" inside the span
    rig.tracker.commit()
    assert rig.row("a")["gold"] == "return 42"


def test_save_with_a_text_the_tracker_did_not_see_resynchronises(rig: Rig) -> None:
    rig.suggest(CURSOR, "return 1", "a")
    rig.edit(CURSOR, 0, "return 1")
    # The recorder resynchronised from a saved text without telling listeners.
    rig.doc.replace_all(
        "# new\n" + rig.doc.text.replace("return 1", "return 2"), 9, "resync", now=rig.clock()
    )
    rig.tracker.on_save(rig.doc)
    rig.advance(10)
    assert rig.row("a")["gold"] == "return 2"


def test_close_settles_and_later_checkpoints_are_unknown(rig: Rig) -> None:
    rig.suggest(CURSOR, "return 1", "a")
    rig.edit(CURSOR, 0, "return 1")
    rig.advance(30)
    rig.tracker.on_close(rig.doc)
    rig.advance(600)
    row = rig.row("a")
    assert (row["gold"], row["survival"]) == ("return 1", {"30": 1.0})


def test_unknown_ids_are_recorded_as_the_client_says(rig: Rig) -> None:
    rig.store.record_suggestion({"id": "z", "text": "x"})
    rig.tracker.rejected("z", "dismissed")
    assert (rig.row("z")["outcome"], rig.row("z")["reason"]) == ("rejected", "dismissed")
    rig.tracker.accepted("z")
    assert rig.row("z")["outcome"] == "accepted"


async def test_real_timers_run_on_the_event_loop(tmp_path: Path) -> None:
    rig = Rig(tmp_path / "traces.db", real_timers=True, settle=0.0)
    try:
        rig.suggest(CURSOR, "return 1", "a")
        rig.edit(CURSOR, 0, "return 1")
        rig.tracker.on_save(rig.doc)
        for _ in range(20):  # a due timer fires within a few turns of the loop
            await asyncio.sleep(0)
            if rig.live_spans() == 0 or rig.row("a")["gold"] is not None:
                break
        assert rig.row("a")["gold"] == "return 1"
    finally:
        rig.tracker.close()
        rig.store.close()


def test_typing_through_then_accepting_the_rest(rig: Rig) -> None:
    rig.suggest(CURSOR, "return 1", "a")
    rig.edit(CURSOR, 0, "r")  # typed the first character of the ghost text
    assert (rig.row("a")["outcome"], rig.row("a")["accepted_length"]) == ("partial", 1)
    rig.tracker.suggestion_reused(rig.doc, "a", CURSOR + 1, "eturn 1")  # shown again, same id
    rig.edit(CURSOR + 1, 0, "eturn 1")  # Tab
    rig.tracker.accepted("a")
    row = rig.row("a")
    assert (row["outcome"], row["accepted_length"]) == ("accepted", 8)
    rig.tracker.commit()
    assert rig.row("a")["gold"] == "return 1"


def test_a_commit_the_watcher_sees_settles(tmp_path: Path) -> None:
    from goldiff.capture.recorder import Recorder
    from goldiff.settings import CaptureSettings, Settings

    rig = Rig(tmp_path / "traces.db")
    try:
        recorder = Recorder(rig.store, Settings(capture=CaptureSettings(enabled=True)), rig.clock)
        recorder.listeners.commit.append(rig.tracker.commit)
        rig.suggest(CURSOR, "return 1", "a")
        rig.edit(CURSOR, 0, "return 1")
        recorder.commit(tmp_path, "0123abcd")
        assert rig.row("a")["gold"] == "return 1"
    finally:
        rig.store.close()


def test_a_completion_episode_keeps_the_context_it_was_opened_in(rig: Rig) -> None:
    # What an exporter needs to show the episode as an edit: the lines around the region
    # as the first suggestion saw them, the cursor in it and the edits before it.
    rig.tracker.on_open(rig.doc)
    rig.edit(0, 0, "# a\n")
    cursor = CURSOR + 4
    rig.suggest(cursor, "return 1", "a")
    rig.edit(cursor, 0, "return 1")
    rig.edit(0, 0, "import os\n")  # after the episode opened: not part of its history
    rig.tracker.on_close(rig.doc)
    rig.store.flush()
    conn = sqlite3.connect(rig.store.path)
    try:
        before, after, detail = conn.execute("SELECT before, after, detail FROM episodes").fetchone()
    finally:
        conn.close()
    assert (before, after) == ("    \n", "    return 1\n")
    context = json.loads(detail)["context"]
    assert context["context_before"] == "# a\ndef f():\n"
    assert context["context_after"] == ""
    assert context["cursor"] == 4
    assert context["recent_edits"] == ["--- a/a.py\n+++ b/a.py\n@@ -1 +1,2 @@\n+# a\n def f():\n"]
