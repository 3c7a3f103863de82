"""What the server's services see of the server that owns them (`GoldiffServer` is one).

The completion and edit services ask for this protocol, not the server class, so nothing
below `goldiff.server` imports it and the import graph has no cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from lsprotocol.types import MessageType

if TYPE_CHECKING:
    from goldiff.capture.recorder import Recorder
    from goldiff.outcomes.suggestions import OutcomeTracker
    from goldiff.settings import Settings
    from goldiff.store import TraceStore


class Host(Protocol):
    home: Path
    settings: Settings  # replaced whole when the editor's settings change
    store: TraceStore
    recorder: Recorder
    outcomes: OutcomeTracker
    clock: Callable[[], float]

    def tell_user(self, message: str, kind: MessageType = MessageType.Warning) -> None: ...
