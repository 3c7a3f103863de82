"""initialize, initialized, workspace/didChangeConfiguration and shutdown."""

from __future__ import annotations

import asyncio
from typing import Any

from lsprotocol import types

from goldiff.server import GoldiffServer


def register(server: GoldiffServer) -> None:
    @server.feature(types.INITIALIZE)
    def initialize(ls: GoldiffServer, params: types.InitializeParams) -> None:
        ls.event_loop = asyncio.get_running_loop()
        if params.initialization_options is not None:
            ls.apply_settings(params.initialization_options)
        folders = [f.uri for f in params.workspace_folders or []]
        if not folders and params.root_uri:
            folders = [params.root_uri]
        client = None
        if params.client_info:
            client = f"{params.client_info.name} {params.client_info.version or ''}".strip()
        ls.recorder.start_session(client=client, workspaces=folders, mode=ls.settings.mode)
        if ls.store.moved_aside is not None:
            ls.tell_user(
                f"Goldiff's trace store was unreadable and was moved to {ls.store.moved_aside}; "
                "a new store was started."
            )

    @server.feature(types.INITIALIZED)
    def initialized(ls: GoldiffServer, params: types.InitializedParams) -> None:
        ls.start_watcher()
        ls.completion.prewarm()  # load the local model now, not on the first keystroke

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    def did_change_configuration(ls: GoldiffServer, params: types.DidChangeConfigurationParams) -> None:
        if params.settings is not None:
            ls.apply_settings(params.settings)

    @server.feature(types.SHUTDOWN)
    def shutdown(ls: GoldiffServer, *args: Any) -> None:
        ls.close_store()
