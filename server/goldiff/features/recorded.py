"""`goldiff.recorded {uri}`: one document as the store holds it, for "Show What Was Recorded".

The answer is read back from the store alone (`audit.recorded`): the text rebuilt from the
recorded edits, whether every step matched its recorded hash, and the document's newest
suggestions with their outcome and gold. A user compares it with the file to see exactly
what Goldiff kept, secrets masked as they were stored.
"""

from __future__ import annotations

import contextlib
from typing import Any

from goldiff import audit, protocol
from goldiff.errors import NotRecordedError
from goldiff.server import GoldiffServer


def register(server: GoldiffServer) -> None:
    @server.command(protocol.RECORDED)
    def recorded(ls: GoldiffServer, *args: Any) -> Any:
        params = protocol.structure(list(args), protocol.RecordedArgs)
        ls.store.flush()  # the edits typed a moment ago are part of the answer
        with contextlib.closing(ls.store.reader()) as db:
            try:
                answer = audit.recorded(db, params.uri, params.limit)
            except NotRecordedError as exc:
                raise NotRecordedError(f"not recorded: {exc}. {_how_to_record(ls, params.uri)}") from None
        return protocol.unstructure(answer)


def _how_to_record(ls: GoldiffServer, uri: str) -> str:
    doc = ls.recorder.documents.get(uri)
    if not ls.settings.capture.enabled:
        return (
            'Recording is off: turn it on ("Goldiff: Enable Capture for This Workspace"), '
            "then open the file again and edit it."
        )
    if doc is not None and not doc.captured:
        return "Recording skips this file (outside the workspace folders, excluded, or too large)."
    return "Open it with recording on and edit it; Goldiff records it from then on."
