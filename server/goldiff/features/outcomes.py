"""What became of a suggestion: `goldiff.accepted` and the `goldiff/suggestion*` notifications.

The rules the outcome tracker applies are in `goldiff.outcomes`.
"""

from __future__ import annotations

import logging
from typing import Any

from goldiff import protocol
from goldiff.errors import PayloadError
from goldiff.server import GoldiffServer

log = logging.getLogger(__name__)


def register(server: GoldiffServer) -> None:
    @server.command(protocol.ACCEPTED)
    def accepted(ls: GoldiffServer, *args: Any) -> None:
        ls.outcomes.accepted(protocol.accepted_id(args))

    @server.feature(protocol.SUGGESTION_SHOWN)
    def shown(ls: GoldiffServer, params: Any) -> None:
        try:
            ls.outcomes.shown(protocol.structure(params, protocol.SuggestionShown).id)
        except PayloadError as exc:
            log.warning("ignored %s: %s", protocol.SUGGESTION_SHOWN, exc)

    @server.feature(protocol.SUGGESTION_PARTIALLY_ACCEPTED)
    def partially_accepted(ls: GoldiffServer, params: Any) -> None:
        try:
            p = protocol.structure(params, protocol.SuggestionPartiallyAccepted)
        except PayloadError as exc:
            log.warning("ignored %s: %s", protocol.SUGGESTION_PARTIALLY_ACCEPTED, exc)
            return
        ls.outcomes.partially_accepted(p.id, p.accepted_length)

    @server.feature(protocol.SUGGESTION_REJECTED)
    def rejected(ls: GoldiffServer, params: Any) -> None:
        try:
            p = protocol.structure(params, protocol.SuggestionRejected)
        except PayloadError as exc:
            log.warning("ignored %s: %s", protocol.SUGGESTION_REJECTED, exc)
            return
        ls.outcomes.rejected(p.id, p.reason)
