"""What the server's services see of the server that owns them.

The completion and edit services need the settings of the moment, the documents, the
store, the clock and a way to tell the user something; `GoldiffServer` has all of that
and builds them. They ask for this protocol instead of the server class, so nothing below
`goldiff.server` imports it: the import graph has no cycle (a test keeps it so).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from lsprotocol.types import MessageType

if TYPE_CHECKING:
    from goldiff.capture.recorder import Recorder
    from goldiff.outcomes.tracker import OutcomeTracker
    from goldiff.settings import Settings
    from goldiff.store import TraceStore


class Host(Protocol):
    @property
    def home(self) -> Path: ...

    @property
    def settings(self) -> Settings: ...

    @property
    def store(self) -> TraceStore: ...

    @property
    def recorder(self) -> Recorder: ...

    @property
    def outcomes(self) -> OutcomeTracker: ...

    @property
    def clock(self) -> Callable[[], float]: ...

    def tell_user(self, message: str, kind: MessageType = MessageType.Warning) -> None: ...
