"""`goldiff.exportTraces {format, path, filters}`: the store as training rows (`goldiff.export`)."""

from __future__ import annotations

from typing import Any

from goldiff import protocol
from goldiff.export import export_for_server
from goldiff.server import GoldiffServer


def register(server: GoldiffServer) -> None:
    @server.command(protocol.EXPORT_TRACES)
    async def export_traces(ls: GoldiffServer, *args: Any) -> dict[str, Any]:
        return await export_for_server(ls, args)
