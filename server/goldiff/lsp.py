"""`goldiff serve`: build a `GoldiffServer` (`goldiff.server`), register its LSP features
(`goldiff.features`) and serve it on stdio or TCP until the client exits.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from goldiff.clock import ClockMode
from goldiff.features import register_all
from goldiff.home import resolve_home
from goldiff.rpc import FramedReader
from goldiff.server import GoldiffServer


def build_server(home: Path, clock: ClockMode = "wall") -> GoldiffServer:
    """A server for `home` with every feature registered; `clock="logical"` for replay."""
    return register_all(GoldiffServer(home, clock))


def serve(home: str | None = None, tcp: tuple[str, int] | None = None, clock: ClockMode = "wall") -> None:
    """Run the server on stdio (or TCP, for debugging) until the client exits."""
    server = build_server(resolve_home(home), clock)

    def on_sigterm(signum: int, frame: Any) -> None:
        # SIGTERM from an editor closing: write everything down, then go at once. A normal
        # exit would wait forever on the thread blocked reading the client's stdin.
        server.close_store()
        logging.shutdown()
        os._exit(0)

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        if tcp is not None:
            server.start_tcp(*tcp)
        else:
            server.start_io(stdin=FramedReader(sys.stdin.buffer))  # type: ignore[arg-type]
    finally:
        server.close_store()


__all__ = ["GoldiffServer", "build_server", "serve"]
