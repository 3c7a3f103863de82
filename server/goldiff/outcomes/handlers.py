"""The language server's side of outcomes: the tracker's wiring and its LSP handlers.

`register(server)` creates `server.outcomes`, hooks it to the recorder, and handles
`goldiff.accepted` (the command every inline completion item carries) and the
`goldiff/suggestion*` notifications. With `GOLDIFF_TESTING=1` in the environment it also
adds `goldiff.test.suggest` (record a suggestion without a model) and
`goldiff.test.advanceClock` (move the server's clock and run due timers), so tests drive
time without sleeping; neither exists otherwise.
"""

from __future__ import annotations

import logging
import os
import uuid
from typing import TYPE_CHECKING, Any

import attrs

from goldiff import protocol
from goldiff.outcomes.tracker import ManualClock, OutcomeTracker
from goldiff.protocol import PayloadError, structure

if TYPE_CHECKING:
    from goldiff.lsp import GoldiffServer

log = logging.getLogger(__name__)

TESTING_ENV = "GOLDIFF_TESTING"


@attrs.define
class AcceptedArgs:
    id: str


@attrs.define
class TestSuggestArgs:
    uri: str
    line: int
    character: int
    text: str


@attrs.define
class AdvanceClockArgs:
    seconds: float = attrs.field(validator=attrs.validators.ge(0))


def _suggestion_id(args: tuple[Any, ...]) -> str:
    """`goldiff.accepted` takes `[id]`; an `{id}` object is accepted too."""
    plain = protocol.as_plain(list(args))
    if len(plain) == 1 and isinstance(plain[0], str):
        return str(plain[0])
    try:
        return structure(plain, AcceptedArgs).id
    except PayloadError as exc:
        raise ValueError(f"goldiff.accepted expects [suggestionId]: {exc}") from exc


def register(server: GoldiffServer) -> None:
    # The handlers below take `ls: Any`: pygls resolves their annotations at run time, and
    # `GoldiffServer` cannot be imported here without an import cycle (goldiff.lsp calls us).
    testing = os.environ.get(TESTING_ENV) == "1"
    manual: ManualClock | None = None
    if testing:
        manual = ManualClock()
        server.clock = manual
        server.recorder.clock = manual
    tracker = OutcomeTracker(
        server.store,
        session_id=lambda: server.recorder.session_id,
        settle_seconds=lambda: server.settings.settle_seconds,
        clock=server.clock,
        real_timers=not testing,
    )
    server.outcomes = tracker
    server.recorder.on_open(tracker.on_open)
    server.recorder.on_edit(tracker.on_edit)
    server.recorder.on_document_event(
        lambda kind, doc: tracker.on_save(doc) if kind == "save" else tracker.on_close(doc)
    )
    server.recorder.on_commit(lambda workspace, sha: tracker.commit())
    server.recorder.on_terminal_command(
        lambda cmd: tracker.terminal_command(cmd.command_line, cmd.exit_code, cmd.cwd)
    )

    @server.command("goldiff.accepted")
    def accepted(ls: Any, *args: Any) -> None:
        tracker.accepted(_suggestion_id(args))

    @server.feature(protocol.SUGGESTION_SHOWN)
    def shown(ls: Any, params: Any) -> None:
        try:
            tracker.shown(structure(params, protocol.SuggestionShown).id)
        except PayloadError as exc:
            log.warning("ignored %s: %s", protocol.SUGGESTION_SHOWN, exc)

    @server.feature(protocol.SUGGESTION_PARTIALLY_ACCEPTED)
    def partially_accepted(ls: Any, params: Any) -> None:
        try:
            p = structure(params, protocol.SuggestionPartiallyAccepted)
        except PayloadError as exc:
            log.warning("ignored %s: %s", protocol.SUGGESTION_PARTIALLY_ACCEPTED, exc)
            return
        tracker.partially_accepted(p.id, p.accepted_length)

    @server.feature(protocol.SUGGESTION_REJECTED)
    def rejected(ls: Any, params: Any) -> None:
        try:
            p = structure(params, protocol.SuggestionRejected)
        except PayloadError as exc:
            log.warning("ignored %s: %s", protocol.SUGGESTION_REJECTED, exc)
            return
        tracker.rejected(p.id, p.reason)

    if manual is not None:
        _register_test_commands(server, tracker, manual)


def _register_test_commands(server: GoldiffServer, tracker: OutcomeTracker, clock: ManualClock) -> None:
    @server.command("goldiff.test.suggest")
    def suggest(ls: Any, *args: Any) -> dict[str, str]:
        a = structure(list(args), TestSuggestArgs)
        doc = ls.recorder.documents.get(a.uri)
        if doc is None:
            raise ValueError(f"{a.uri} is not open")
        offset = doc.offset_at(a.line, a.character)
        suggestion_id = str(uuid.uuid4())
        ls.store.record_suggestion(
            {
                "id": suggestion_id,
                "session_id": ls.recorder.session_id,
                "document_id": doc.id,
                "version": doc.version,
                "ts": clock(),
                "source": "test",
                "model": "deterministic",
                "mode": ls.settings.mode,
                "line": a.line,
                "character": a.character,
                "offset": offset,
                "prefix": doc.text[:offset],
                "suffix": doc.text[offset:],
                "text": a.text,
                "shown": 0,
            }
        )
        tracker.suggestion_made(doc, suggestion_id, offset, a.text, source="test")
        return {"id": suggestion_id}

    @server.command("goldiff.test.advanceClock")
    def advance_clock(ls: Any, *args: Any) -> dict[str, float]:
        seconds = structure(list(args), AdvanceClockArgs).seconds
        tracker.advance(clock, seconds)
        ls.store.flush()
        return {"now": clock.now}
