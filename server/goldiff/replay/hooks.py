"""The server side of replay: the `goldiff.commit` command, a commit boundary.

A commit is where a developer says "this is what I keep": outcome tracking settles every
pending suggestion there (`server.outcomes.commit()`, when outcome tracking is loaded).
The command records an `events` row of kind `commit` (sha, subject, repository, source),
settles, and flushes the store before it answers, so a client that got the answer knows
the commit and everything before it are on disk — replay resumes from the store on that
promise. Kept free of client-side imports: the server loads this module at start.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from pygls.lsp.server import LanguageServer

from goldiff import protocol
from goldiff.protocol import PayloadError, structure

if TYPE_CHECKING:
    from goldiff.lsp import GoldiffServer

log = logging.getLogger(__name__)


def record_commit(server: GoldiffServer, commit: protocol.CommitArgs) -> dict[str, Any]:
    """Record the boundary, settle what is pending, and make it durable."""
    server.store.record_event(
        "commit",
        session_id=server.recorder.session_id,
        detail={
            "sha": commit.sha,
            "subject": commit.message.split("\n", 1)[0],
            "workspace": commit.repository,
            "author_time": commit.author_time,
            "source": commit.source,
        },
        ts=server.clock(),
    )
    settled = 0
    outcomes = getattr(server, "outcomes", None)
    if outcomes is not None and hasattr(outcomes, "commit"):
        result = outcomes.commit()
        settled = result if isinstance(result, int) else 0
    durable = server.store.flush()
    return {"sha": commit.sha, "settled": settled, "durable": durable}


def register(server: GoldiffServer) -> None:
    # pygls reads the first parameter's annotation at run time: it must be a real class.
    @server.command(protocol.COMMIT)
    def commit(ls: LanguageServer, *args: Any) -> dict[str, Any]:
        try:
            parsed = structure(list(args), protocol.CommitArgs)
        except PayloadError as exc:
            raise ValueError(str(exc)) from exc
        return record_commit(server, parsed)
