"""`goldiff.advanceClock {seconds}`: move a logical clock (`goldiff serve --clock logical`).

Registered only when the server runs on a logical clock (`goldiff.clock`), so a client can
tell from the server's capabilities whether it may drive time: `goldiff replay` does.
The answer is the clock's new time, once every timer due on the way has run and the store
has flushed.
"""

from __future__ import annotations

from typing import Any

from goldiff import protocol
from goldiff.server import GoldiffServer


def register(server: GoldiffServer) -> None:
    if server.logical_clock is None:
        return

    @server.command(protocol.ADVANCE_CLOCK)
    def advance_clock(ls: GoldiffServer, *args: Any) -> dict[str, float]:
        return {"now": ls.advance_clock(protocol.structure(list(args), protocol.AdvanceClockArgs).seconds)}
