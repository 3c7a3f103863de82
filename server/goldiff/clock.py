"""The server's clock: the wall clock, or a logical one that moves only when told.

Every timestamp the server records and every timer it runs (settle, survival checkpoints,
pending timeouts) reads this clock. `goldiff serve --clock logical` starts the server on a
logical clock: time stands still until a client sends `goldiff.advanceClock {seconds}`,
which moves it forward and runs each timer due on the way at its own time. `goldiff replay`
and `goldiff demo` use it so the simulated developer's time, not the machine's, decides
what settles when, and a replay is reproducible.
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


__all__ = ["CLOCK_MODES", "ClockMode", "LogicalClock"]
