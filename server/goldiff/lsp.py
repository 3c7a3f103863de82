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
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.exceptions import (
    FeatureRequestError,
    JsonRpcException,
    JsonRpcInvalidParams,
    JsonRpcInvalidRequest,
    JsonRpcMethodNotFound,
)
from pygls.lsp.server import LanguageServer
from pygls.protocol.json_rpc import JsonRPCNotification, JsonRPCRequestMessage
from pygls.protocol.language_server import LanguageServerProtocol, lsp_method

from goldiff import __version__, audit, protocol
from goldiff.capture.documents import OutOfSync
from goldiff.capture.paths import uri_to_path
from goldiff.capture.recorder import Recorder
from goldiff.capture.watcher import WorkspaceWatcher
from goldiff.errors import ConfigError, GoldiffError, StoreError
from goldiff.export import register as register_export
from goldiff.home import resolve_home, store_path
from goldiff.protocol import PayloadError, structure
from goldiff.replay import hooks as replay_hooks
from goldiff.rpc import FramedReader, UserMessages, invalid_params
from goldiff.settings import Settings, read_settings
from goldiff.store import TraceStore

if TYPE_CHECKING:
    from goldiff.outcomes import OutcomeTracker

log = logging.getLogger(__name__)


def _is_request_id(value: Any) -> bool:
    return isinstance(value, int | str) and not isinstance(value, bool)


def _payload_problem(exc: BaseException) -> bool:
    """The request's own arguments were wrong: malformed, unusable or out of the document."""
    invalid = (PayloadError, ConfigError, OutOfSync)
    return isinstance(exc, invalid) or isinstance(exc.__cause__, PayloadError)


class GoldiffProtocol(LanguageServerProtocol):
    """Goldiff keeps its own copy of every document (`capture.documents`). pygls' workspace
    copy would repeat that work on every keystroke, so these built-ins only route to the
    handlers below; nothing in Goldiff reads `ls.workspace` documents.

    Every request gets an answer: pygls validates a message inside `json.loads` and, when
    validation fails, logs and drops it, leaving the client waiting forever. Here a message
    is parsed as plain JSON, then validated in `handle_message`, where a failure can be
    answered: `-32601` for an unknown method, `-32602` naming the field for invalid
    params (Goldiff's own payloads included), `-32603` for anything else.
    """

    def structure_message(self, data: dict[str, Any]) -> Any:
        # json.loads calls this for every object in a message, nested ones included.
        return data

    def handle_message(self, message: Any) -> None:
        if not isinstance(message, dict) or message.get("jsonrpc") != self.VERSION:
            log.warning("ignored a message that is not JSON-RPC 2.0: %.200r", message)
            if isinstance(message, dict) and _is_request_id(message.get("id")) and "method" in message:
                self._answer_error(message["id"], JsonRpcInvalidRequest("not a JSON-RPC 2.0 request"))
            return
        method = message.get("method")
        if method is None:  # the client's answer to one of our requests
            try:
                super().handle_message(super().structure_message(message))
            except JsonRpcException:
                log.warning("ignored a malformed response: %.200r", message)
            return
        request = "id" in message
        if request and not _is_request_id(message["id"]):
            log.warning("ignored a request whose id is neither a number nor a string: %.200r", message)
            return
        if not isinstance(method, str):
            if request:
                self._answer_error(message["id"], JsonRpcInvalidRequest("method must be a string"))
            return
        known = method == types.CANCEL_REQUEST or method in self.fm.builtin_features
        if not known and method not in self.fm.features:
            if request:
                self._answer_error(message["id"], JsonRpcMethodNotFound.of(method))
            else:
                log.debug("ignored notification for unknown method %r", method)
            return
        if request and self._shutdown and method != types.EXIT:
            self._answer_error(message["id"], JsonRpcInvalidRequest("the server is shutting down"))
            return
        fallback = JsonRPCRequestMessage if request else JsonRPCNotification
        try:
            structured = self._converter.structure(message, self.get_message_type(method) or fallback)
        except Exception as exc:
            text = invalid_params(method, exc)
            log.warning("%s", text)
            if request:
                self._answer_error(message["id"], JsonRpcInvalidParams(text))
            return
        super().handle_message(structured)

    def _answer_error(self, msg_id: Any, error: JsonRpcException) -> None:
        self._send_response(msg_id, None, error.to_response_error())

    def _send_handler_result(self, future: Any, *, msg_id: Any) -> None:
        # A command whose arguments did not parse is the client's mistake: -32602, not -32603.
        if not future.cancelled() and (exc := future.exception()) is not None and _payload_problem(exc):
            self._request_futures.pop(msg_id, None)
            log.warning("invalid params for request %s: %s", msg_id, exc)
            self._answer_error(msg_id, JsonRpcInvalidParams(str(exc)))
            return
        super()._send_handler_result(future, msg_id=msg_id)

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

    # Futures started while a generator step runs (see `_run_generator`); None outside one.
    _started: list[Any] | None = None

    def _execute_handler(
        self, msg_id: Any, handler: Any, callback: Any, args: Any = None, kwargs: Any = None
    ) -> None:
        super()._execute_handler(msg_id, handler, callback, args=args, kwargs=kwargs)
        future = self._request_futures.get(msg_id)
        if future is None:
            return
        if self._started is not None:
            self._started.append(future)
        # pygls forgets a request's future when it answers, but never a notification's: every
        # keystroke (didChange is a generator handler here) would stay in the table for good.
        future.add_done_callback(partial(self._forget_future, msg_id))

    def _forget_future(self, msg_id: Any, _done: Any) -> None:
        self._request_futures.pop(msg_id, None)

    def _run_generator(self, future: Any, *, gen: Any, result_future: Any) -> None:
        """Make `$/cancelRequest` reach a running `workspace/executeCommand` handler.

        pygls runs a command as a task of its own, under an internal id, behind the
        request's future; cancelling the request only cancels that outer future, and the
        task (an export, a distillation) would run on unseen. Each task this step starts
        is cancelled with the request, so a command's `asyncio.CancelledError` handler
        runs and can stop its work. Only the tasks this step started are looked at, so a
        keystroke costs the same however long the server has run.
        """
        outer, self._started = self._started, []
        try:
            super()._run_generator(future, gen=gen, result_future=result_future)
            started = self._started
        finally:
            self._started = outer
        for inner in started:
            if inner is not result_future:
                result_future.add_done_callback(
                    lambda f, inner=inner: inner.cancel() if f.cancelled() else None
                )

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
        self.messages = UserMessages()
        self.shown_messages = 0  # window/showMessage notifications actually sent
        self._settings_reported: set[str] = set()

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

    def report_server_error(self, error: Exception, source: Any) -> None:
        """pygls' hook for errors outside a request's answer: logged, rarely shown."""
        if source is FeatureRequestError or source is JsonRpcException:
            # The request's error answer carries it; an unparseable message is the client's.
            log.warning("client error (%s): %s", source.__name__, error)
            return
        log.error("server error (%s): %s", getattr(source, "__name__", source), error)
        self.tell_user(
            f"Goldiff hit an internal error ({str(error)[:200]}); details are in its log.",
            types.MessageType.Error,
        )

    def tell_user(self, message: str, kind: types.MessageType = types.MessageType.Warning) -> None:
        """Show `message` unless it was shown recently or too many were (see `UserMessages`)."""
        if not self.messages.allow(message):
            return
        self.shown_messages += 1
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
        settings, problems = read_settings(raw, self.settings)
        for problem in problems:
            log.warning("%s", problem)
            if problem not in self._settings_reported:  # once, however often the client resends it
                if len(self._settings_reported) >= 256:
                    self._settings_reported.clear()  # a client inventing values forever: stay bounded
                self._settings_reported.add(problem)
                self.tell_user(f"Goldiff: {problem}.", types.MessageType.Warning)
        if not problems:
            self._settings_reported.clear()  # fixed: a later mistake is news again
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


FORGET_USAGE = 'goldiff.forget needs an explicit scope: [{"workspace": PATH_OR_URI}] or [{"all": true}]'


def forget_scope(args: tuple[Any, ...]) -> str | None:
    """The workspace `goldiff.forget` deletes, or None for everything.

    Deleting is not undoable, so only an explicit scope is obeyed: a missing argument,
    a typo in a key or an empty workspace is refused, never read as "everything".
    """
    plain = protocol.as_plain(list(args))
    arg = plain[0] if len(plain) == 1 else None
    if not isinstance(arg, dict):
        raise PayloadError(FORGET_USAGE)
    if unknown := sorted(str(k) for k in arg if k not in ("workspace", "all")):
        raise PayloadError(f"{FORGET_USAGE}; unknown key {', '.join(map(repr, unknown))}")
    if arg == {"all": True}:
        return None
    workspace = arg.get("workspace")
    if set(arg) == {"workspace"} and isinstance(workspace, str) and workspace.strip():
        return workspace
    raise PayloadError(FORGET_USAGE)


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
        since = audit.start_of_today()
        db = ls.store.reader()
        try:
            today = audit.acceptance_since(db, since)
            by_source = audit.acceptance_by_source(db, since)
            shadow = audit.shadow_stats(db, since)
        finally:
            db.conn.close()
        completion = getattr(ls, "completion", None)
        answering = completion.answering() if completion is not None else {}
        return {
            "mode": ls.settings.mode,
            # The model that answers what the user sees (the frontier's in shadow mode).
            "model": answering.get("model"),
            "answering": answering,
            "capture": ls.settings.capture.enabled,
            "home": str(ls.home),
            "acceptanceToday": today,
            "acceptanceBySource": by_source,
            "shadowToday": shadow,
        }

    @server.command("goldiff.models")
    def models(ls: GoldiffServer, *args: Any) -> dict[str, Any]:
        """The model registry, for the editor's model picker (as `goldiff models list --json`)."""
        from goldiff.sources.registry import Registry

        registry = Registry(ls.home)
        rows = [{**e.__dict__, "exists": e.exists()} for e in registry.list()]
        return {"default": registry.default(), "models": rows}

    @server.command(protocol.PULL_MODEL)
    async def pull_model(ls: GoldiffServer, *args: Any) -> dict[str, Any]:
        """Fetch a GGUF into the registry (the model picker's "Download…")."""
        from goldiff.downloads import pull_for_server

        return await pull_for_server(ls, args)

    @server.command(protocol.COMPARE)
    async def compare(ls: GoldiffServer, *args: Any) -> dict[str, Any]:
        """The current model beside another on recent held-out gold (`goldiff eval`)."""
        from goldiff.compare import compare_for_server

        return await compare_for_server(ls, args)

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
            # Handlers still running (or never forgotten): stays small however long it runs.
            "pendingHandlers": len(ls.protocol._request_futures),
            "messagesShown": ls.shown_messages,
            "messagesSuppressed": ls.messages.suppressed,
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
        workspace = forget_scope(args)
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
            server.start_io(stdin=FramedReader(sys.stdin.buffer))  # type: ignore[arg-type]
    finally:
        server.close_store()


__all__ = ["GoldiffError", "GoldiffServer", "build_server", "serve"]
