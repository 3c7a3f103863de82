"""The Goldiff language server: LSP handlers that route to the recorder and friends.

Handlers stay a few lines: they parse, call a method, and turn a `GoldiffError` into a
JSON-RPC error or a message the user sees. Nothing here may import torch, transformers
or llama_cpp (a test enforces it): the server must start in well under a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import resource
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.protocol.language_server import LanguageServerProtocol, lsp_method

from goldiff import __version__, audit, protocol
from goldiff.capture.paths import uri_to_path
from goldiff.capture.recorder import Recorder
from goldiff.capture.watcher import WorkspaceWatcher
from goldiff.errors import ConfigError, GoldiffError, StoreError
from goldiff.export import register as register_export
from goldiff.home import resolve_home, store_path
from goldiff.protocol import PayloadError, structure
from goldiff.replay import hooks as replay_hooks
from goldiff.settings import Settings, parse_settings
from goldiff.store import TraceStore

if TYPE_CHECKING:
    from goldiff.outcomes import OutcomeTracker

log = logging.getLogger(__name__)


class GoldiffProtocol(LanguageServerProtocol):
    """Goldiff keeps its own copy of every document (`capture.documents`). pygls' workspace
    copy would repeat that work on every keystroke, so these built-ins only route to the
    handlers below; nothing in Goldiff reads `ls.workspace` documents.
    """

    def _route(self, method: str, params: Any) -> Generator[Any, Any, None]:
        if (user_handler := self.fm.features.get(method)) is not None:
            yield user_handler, (params,), None

    @lsp_method(types.TEXT_DOCUMENT_DID_OPEN)
    def lsp_text_document__did_open(
        self, params: types.DidOpenTextDocumentParams
    ) -> Generator[Any, Any, None]:
        yield from self._route(types.TEXT_DOCUMENT_DID_OPEN, params)

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(
        self, params: types.DidChangeTextDocumentParams
    ) -> Generator[Any, Any, None]:
        yield from self._route(types.TEXT_DOCUMENT_DID_CHANGE, params)

    @lsp_method(types.TEXT_DOCUMENT_DID_CLOSE)
    def lsp_text_document__did_close(
        self, params: types.DidCloseTextDocumentParams
    ) -> Generator[Any, Any, None]:
        yield from self._route(types.TEXT_DOCUMENT_DID_CLOSE, params)


class GoldiffServer(LanguageServer):
    """One editor window's server: settings, the store and the recorder."""

    def __init__(self, home: Path, clock: Callable[[], float] = time.time) -> None:
        super().__init__("goldiff", __version__, protocol_cls=GoldiffProtocol)
        self.home = home
        self.clock = clock
        self.settings = Settings()
        self.store = TraceStore(store_path(home), on_error=self._store_failed)
        self.recorder = Recorder(self.store, self.settings, clock)
        self.outcomes: OutcomeTracker | None = None  # set by goldiff.outcomes.register
        self._closed = False
        self.watcher: WorkspaceWatcher | None = None
        # Handling time of recent didChange notifications, for `goldiff.serverStats`.
        self.change_timings: deque[float] = deque(maxlen=100_000)

    def start_watcher(self) -> None:
        """Watch the workspace for changes other programs make (once capture is on)."""
        if self.watcher is not None or not self.settings.capture.enabled or not self.recorder.workspaces:
            return
        loop = asyncio.get_running_loop()
        self.watcher = WorkspaceWatcher(
            self.recorder.workspaces, loop, self.recorder.external_change, self.recorder.commit
        )
        self.watcher.start()

    # Errors from the writer thread reach the user once, through the event loop.
    def _store_failed(self, err: StoreError) -> None:
        self.tell_user(str(err), types.MessageType.Error)

    def tell_user(self, message: str, kind: types.MessageType = types.MessageType.Warning) -> None:
        params = types.ShowMessageParams(type=kind, message=message)
        loop = getattr(self, "loop", None)
        if (
            loop is not None
            and loop.is_running()
            and threading.current_thread() is not threading.main_thread()
        ):
            loop.call_soon_threadsafe(self.window_show_message, params)
        else:
            with contextlib.suppress(Exception):
                self.window_show_message(params)

    def apply_settings(self, raw: Any) -> None:
        try:
            settings = parse_settings(raw, self.settings)
        except ConfigError as exc:
            self.tell_user(str(exc), types.MessageType.Error)
            return
        self.settings = settings
        self.recorder.update_settings(settings)
        with contextlib.suppress(RuntimeError):  # no running loop before initialize
            self.start_watcher()
        log.info("settings: %s", settings.redacted())

    def close_store(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.watcher is not None:
            self.watcher.stop()
        if (proposals := getattr(self, "proposals", None)) is not None:
            proposals.close()  # settles open edit episodes, before the store closes
        if self.outcomes is not None:
            self.outcomes.close()  # settles what is left, before the store closes
        self.recorder.end_session()
        self.store.close()


def _command_args(args: tuple[Any, ...], cls: type[protocol.T]) -> protocol.T:
    try:
        return structure(list(args), cls)
    except PayloadError as exc:
        raise ValueError(str(exc)) from exc


def build_server(home: Path, clock: Callable[[], float] = time.time) -> GoldiffServer:
    server = GoldiffServer(home, clock)

    @server.feature(types.INITIALIZE)
    def initialize(ls: GoldiffServer, params: types.InitializeParams) -> None:
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
                "a new store was started.",
                types.MessageType.Warning,
            )

    @server.feature(types.INITIALIZED)
    def initialized(ls: GoldiffServer, params: types.InitializedParams) -> None:
        ls.start_watcher()
        if (completion := getattr(ls, "completion", None)) is not None:
            completion.prewarm()  # load the local model now, not on the first keystroke

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    def did_change_configuration(ls: GoldiffServer, params: types.DidChangeConfigurationParams) -> None:
        if params.settings is not None:
            ls.apply_settings(params.settings)

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: GoldiffServer, params: types.DidOpenTextDocumentParams) -> None:
        doc = params.text_document
        ls.recorder.open(doc.uri, doc.language_id, doc.version, doc.text)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: GoldiffServer, params: types.DidChangeTextDocumentParams) -> None:
        started = time.perf_counter()
        doc = params.text_document
        ls.recorder.change(doc.uri, doc.version, list(params.content_changes))
        ls.change_timings.append(time.perf_counter() - started)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE, types.SaveOptions(include_text=True))
    def did_save(ls: GoldiffServer, params: types.DidSaveTextDocumentParams) -> None:
        ls.recorder.save(params.text_document.uri, params.text)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: GoldiffServer, params: types.DidCloseTextDocumentParams) -> None:
        ls.recorder.close(params.text_document.uri)

    @server.feature(protocol.TERMINAL_COMMAND)
    def terminal_command(ls: GoldiffServer, params: Any) -> None:
        try:
            ls.recorder.terminal_command(structure(params, protocol.TerminalCommand))
        except PayloadError as exc:
            log.warning("ignored %s: %s", protocol.TERMINAL_COMMAND, exc)

    @server.feature(types.SHUTDOWN)
    def shutdown(ls: GoldiffServer, *args: Any) -> None:
        ls.close_store()

    @server.command("goldiff.setMode")
    def set_mode(ls: GoldiffServer, *args: Any) -> dict[str, str]:
        mode = _command_args(args, protocol.SetModeArgs).mode
        ls.apply_settings({"mode": mode})
        return {"mode": ls.settings.mode}

    @server.command("goldiff.stats")
    def stats(ls: GoldiffServer, *args: Any) -> dict[str, Any]:
        ls.store.flush()
        db = ls.store.reader()
        try:
            return audit.stats(db, ls.store.path)
        finally:
            db.conn.close()

    @server.command("goldiff.status")
    def status(ls: GoldiffServer, *args: Any) -> dict[str, Any]:
        db = ls.store.reader()
        try:
            today = audit.acceptance_since(db, audit.start_of_today())
        finally:
            db.conn.close()
        return {
            "mode": ls.settings.mode,
            "model": ls.settings.local.model,
            "capture": ls.settings.capture.enabled,
            "home": str(ls.home),
            "acceptanceToday": today,
        }

    @server.command("goldiff.serverStats")
    def server_stats(ls: GoldiffServer, *args: Any) -> dict[str, Any]:
        """How the server itself is doing: handling times, queue depth, memory."""
        timings = sorted(ls.change_timings)

        def pct(p: float) -> float | None:
            return timings[min(len(timings) - 1, int(p * len(timings)))] * 1000 if timings else None

        return {
            "didChangeCount": len(timings),
            "didChangeP50Ms": pct(0.50),
            "didChangeP99Ms": pct(0.99),
            "queueDepth": ls.store.queue_depth(),
            "peakRssKb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            "engine": c.engine_status() if (c := getattr(ls, "completion", None)) is not None else None,
        }

    @server.command("goldiff.distill")
    async def distill(ls: GoldiffServer, *args: Any) -> dict[str, Any]:
        """Distill in a child process: training must not weigh on (or crash) the server."""
        options = protocol.as_plain(args[0]) if args and args[0] else {}
        command = [sys.executable, "-m", "goldiff", "distill", "--json", "--home", str(ls.home)]
        for key, flag in (("name", "--name"), ("steps", "--steps"), ("base", "--base")):
            if options.get(key) is not None:
                command += [flag, str(options[key])]
        ls.store.flush()
        proc = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        try:
            out, err = await proc.communicate()
        except asyncio.CancelledError:
            proc.terminate()  # training checkpoints on SIGTERM; the next run resumes
            raise
        if proc.returncode != 0:
            message = (err.decode(errors="replace").strip().splitlines() or ["distillation failed"])[-1]
            raise GoldiffError(message.removeprefix("Error: "))
        result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
        return result

    @server.command("goldiff.forget")
    def forget(ls: GoldiffServer, *args: Any) -> dict[str, int]:
        workspace = _command_args(args, protocol.ForgetArgs).workspace if args else None
        if workspace and "://" not in workspace:
            workspace = Path(workspace).resolve().as_uri()
        elif workspace:
            path = uri_to_path(workspace)  # one spelling of the URI, as documents record it
            workspace = path.resolve().as_uri() if path else workspace
        ls.store.flush()
        db = ls.store.reader()
        try:
            return audit.forget(db, workspace)
        finally:
            db.conn.close()

    from goldiff.sources.completion import register as register_completion

    register_completion(server)
    from goldiff import outcomes

    outcomes.register(server)
    from goldiff.agent import register as register_agent

    register_agent(server)
    replay_hooks.register(server)
    register_export(server)
    return server


def serve(home: str | None = None, tcp: tuple[str, int] | None = None) -> None:
    """Run the server on stdio (or TCP, for debugging) until the client exits."""
    server = build_server(resolve_home(home))

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
            server.start_io()
    finally:
        server.close_store()


__all__ = ["GoldiffError", "GoldiffServer", "build_server", "serve"]
