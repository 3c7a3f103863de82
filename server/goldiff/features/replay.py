"""What `goldiff replay` drives: commit boundaries and the logical clock.

`goldiff.commit` records the commit (an `events` row), settles every pending suggestion
and flushes the store before it answers: replay resumes from the store on that promise.
`goldiff.advanceClock {seconds}` exists only on a logical clock (`goldiff.clock`), so a
client can tell from the server's capabilities whether it may drive time.
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

    if server.logical_clock is not None:

        @server.command(protocol.ADVANCE_CLOCK)
        def advance_clock(ls: GoldiffServer, *args: Any) -> dict[str, float]:
            seconds = protocol.structure(list(args), protocol.AdvanceClockArgs).seconds
            return {"now": ls.advance_clock(seconds)}
