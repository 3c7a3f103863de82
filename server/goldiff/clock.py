"""The server's clock: the wall clock, or a logical one that moves only when told.

Every timestamp the server records and every timer it runs (settle, survival checkpoints,
pending timeouts) reads it. On a logical clock (`goldiff serve --clock logical`, as
`goldiff replay` and `goldiff demo` run it) time stands still until `goldiff.advanceClock
{seconds}` moves it, running each timer due on the way: a replay is reproducible.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from collections.abc import Callable
from typing import Literal

log = logging.getLogger(__name__)

ClockMode = Literal["wall", "logical"]
CLOCK_MODES: tuple[ClockMode, ...] = ("wall", "logical")


class LogicalClock:
    """A clock that moves only when told (replay, and tests that must never sleep)."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now


class Timers:
    """Callbacks due at a time by `clock`: the settle, checkpoint and timeout timers.

    One heap for the whole server, so one clock drives every tracker. On the wall clock
    (`real=True`) the earliest is armed on the running asyncio loop; on a logical clock
    they run only from `advance`, each at its own due time (or from `run_due`, by hand).
    """

    def __init__(self, clock: Callable[[], float] = time.time, *, real: bool = True) -> None:
        self.clock = clock
        self.real = real
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._handle: asyncio.TimerHandle | None = None
        self._armed_at: float | None = None
        self._closed = False

    def schedule(self, due: float, fn: Callable[[], None]) -> None:
        """Run `fn` once the clock reads `due`."""
        heapq.heappush(self._heap, (due, next(self._seq), fn))
        self._arm()

    def _arm(self) -> None:
        if not self.real or not self._heap or self._closed:
            return
        due = self._heap[0][0]
        if self._armed_at is not None and self._armed_at <= due:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (a script, a unit test): `run_due` is called by hand
        if self._handle is not None:
            self._handle.cancel()
        self._handle = loop.call_later(max(0.0, due - self.clock()), self._fire)
        self._armed_at = due

    def _fire(self) -> None:
        self._handle = None
        self._armed_at = None
        self.run_due()
        self._arm()

    def run_due(self) -> None:
        """Run every timer that is due by the clock."""
        now = self.clock()
        while self._heap and self._heap[0][0] <= now:
            _due, _n, fn = heapq.heappop(self._heap)
            try:
                fn()
            except Exception:  # one bad timer must not stop the others
                log.exception("timer failed")

    def advance(self, clock: LogicalClock, seconds: float) -> None:
        """Move a logical clock forward, running each timer at its own due time."""
        target = clock.now + seconds
        while self._heap and self._heap[0][0] <= target:
            clock.now = max(clock.now, self._heap[0][0])
            self.run_due()
        clock.now = target
        self.run_due()

    def close(self) -> None:
        self._closed = True
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
