"""The server's clock: the wall clock, or a logical one that moves only when told.

Every timestamp the server records and every timer it runs (settle, survival checkpoints,
pending timeouts) reads it. On a logical clock (`goldiff serve --clock logical`, as
`goldiff replay` and `goldiff demo` run it) time stands still until `goldiff.advanceClock
{seconds}` moves it, running each timer due on the way: a replay is reproducible.
"""

from __future__ import annotations

import time
from typing import Literal

ClockMode = Literal["wall", "logical"]
CLOCK_MODES: tuple[ClockMode, ...] = ("wall", "logical")


class LogicalClock:
    """A clock that moves only when told (replay, and tests that must never sleep)."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now
