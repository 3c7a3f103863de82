"""`goldiff.commit`: a commit boundary, where a developer says "this is what I keep".

The command records an `events` row of kind `commit` (sha, subject, repository, source),
settles every pending suggestion, and flushes the store before it
answers, so a client that got the answer knows the commit and everything before it are on
disk: `goldiff replay` resumes from the store on that promise.
"""

from __future__ import annotations

from typing import Any

from goldiff import protocol
from goldiff.server import GoldiffServer


def register(server: GoldiffServer) -> None:
    @server.command(protocol.COMMIT)
    def commit(ls: GoldiffServer, *args: Any) -> dict[str, Any]:
        parsed = protocol.structure(list(args), protocol.CommitArgs)
        ls.store.record_event(
            "commit",
            session_id=ls.recorder.session_id,
            detail={
                "sha": parsed.sha,
                "subject": parsed.message.split("\n", 1)[0],
                "workspace": parsed.repository,
                "author_time": parsed.author_time,
                "source": parsed.source,
            },
            ts=ls.clock(),
        )
        ls.outcomes.commit()
        return {"sha": parsed.sha, "durable": ls.store.flush()}
