"""What became of a suggestion: `goldiff.accepted` and the `goldiff/suggestion*` notifications.

The rules the outcome tracker applies are in `goldiff.outcomes`.
"""

from __future__ import annotations

import logging
from typing import Any, TypeVar

from goldiff import protocol
from goldiff.errors import PayloadError
from goldiff.server import GoldiffServer

log = logging.getLogger(__name__)
T = TypeVar("T")


def notified(params: Any, cls: type[T], method: str) -> T | None:
    """A notification's params as `cls`, or None when malformed: a notification has no
    answer to carry the error, so it goes to the log."""
    try:
        return protocol.structure(params, cls)
    except PayloadError as exc:
        log.warning("ignored %s: %s", method, exc)
        return None


def register(server: GoldiffServer) -> None:
    @server.command(protocol.ACCEPTED)
    def accepted(ls: GoldiffServer, *args: Any) -> None:
        ls.outcomes.accepted(protocol.accepted_id(args))

    @server.feature(protocol.SUGGESTION_SHOWN)
    def shown(ls: GoldiffServer, params: Any) -> None:
        if p := notified(params, protocol.SuggestionShown, protocol.SUGGESTION_SHOWN):
            ls.outcomes.shown(p.id)

    @server.feature(protocol.SUGGESTION_PARTIALLY_ACCEPTED)
    def partially_accepted(ls: GoldiffServer, params: Any) -> None:
        if p := notified(
            params, protocol.SuggestionPartiallyAccepted, protocol.SUGGESTION_PARTIALLY_ACCEPTED
        ):
            ls.outcomes.partially_accepted(p.id, p.accepted_length)

    @server.feature(protocol.SUGGESTION_REJECTED)
    def rejected(ls: GoldiffServer, params: Any) -> None:
        if p := notified(params, protocol.SuggestionRejected, protocol.SUGGESTION_REJECTED):
            ls.outcomes.rejected(p.id, p.reason)
