"""The language server's features: one LSP feature per module, as pygls' examples are.

Each module's `register(server)` adds its handlers; a handler takes `ls: GoldiffServer`
and is a few lines over a part the server owns or a library function. No feature depends
on another's registration: the server builds every part before any registers.
"""

from __future__ import annotations

from goldiff.features import (
    commands,
    completion,
    documents,
    export,
    lifecycle,
    models,
    outcomes,
    proposals,
    recorded,
    replay,
)
from goldiff.server import GoldiffServer

FEATURES = (lifecycle, documents, completion, outcomes, proposals, commands, models, export, replay, recorded)


def register_all(server: GoldiffServer) -> GoldiffServer:
    for feature in FEATURES:
        feature.register(server)
    return server
