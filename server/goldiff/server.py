"""`GoldiffServer`: one editor window's server, and every part it owns, built in one place.

Settings, the trace store and its recorder, the clock, outcome tracking, edit proposals
and the completion service are typed attributes, built in the order their recorder hooks
run. The LSP handlers live in `goldiff.features` and take `ls: GoldiffServer`; this module
imports none of them. Nothing here may import torch, transformers or llama_cpp (a test
enforces it): the server must start in well under a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.exceptions import FeatureRequestError, JsonRpcException
from pygls.lsp.server import LanguageServer

from goldiff import __version__
from goldiff.agent.proposals import ProposalTracker
from goldiff.agent.propose import ProposeEditService
from goldiff.capture.recorder import Recorder
from goldiff.capture.watcher import WorkspaceWatcher
from goldiff.clock import ClockMode, LogicalClock, Timers
from goldiff.errors import ConfigError, StoreError
from goldiff.home import store_path
from goldiff.outcomes.suggestions import OutcomeTracker
from goldiff.rpc import GoldiffProtocol, UserMessages
from goldiff.settings import Settings, read_settings
from goldiff.sources.completion import CompletionService
from goldiff.store import TraceStore

log = logging.getLogger(__name__)


class GoldiffServer(LanguageServer):
    """One editor window's server: settings, store, recorder, clock, outcomes, proposals, completion."""

    def __init__(self, home: Path, clock: ClockMode = "wall") -> None:
        super().__init__("goldiff", __version__, protocol_cls=GoldiffProtocol)
        self.home = home
        # The loop serving the client (set at initialize): only its thread writes to the client.
        self.event_loop: asyncio.AbstractEventLoop | None = None
        # A logical clock moves only through `advance_clock` (`goldiff.advanceClock`).
        self.logical_clock = LogicalClock() if clock == "logical" else None
        self.clock: Callable[[], float] = self.logical_clock or time.time
        # One timer heap on that clock drives both trackers' settle and checkpoint timers.
        self.timers = Timers(self.clock, real=self.logical_clock is None)
        self.settings = Settings()
        self.store = TraceStore(store_path(home), on_error=self._store_failed)
        self.recorder = recorder = Recorder(self.store, self.settings, self.clock)

        # Built in this order, which is the order they hear each edit in: the completion
        # service's recent edits, then the suggestions' fates, then the edit episodes.
        self.completion = CompletionService(self)
        self.outcomes = outcomes = OutcomeTracker(
            self.store,
            session_id=lambda: recorder.session_id,
            settle_seconds=lambda: self.settings.settle_seconds,
            clock=self.clock,
            timers=self.timers,
        )
        listeners = recorder.listeners
        listeners.open.append(outcomes.on_open)
        listeners.edit.append(outcomes.on_edit)
        listeners.save.append(outcomes.on_save)
        listeners.close.append(outcomes.on_close)
        listeners.commit.append(outcomes.commit)
        listeners.terminal.append(outcomes.terminal_command)

        self.proposals = proposals = ProposalTracker(
            self.store,
            session_id=lambda: recorder.session_id,
            settle_seconds=lambda: self.settings.settle_seconds,
            agents=lambda: self.settings.agents,
            mode=lambda: self.settings.mode,
            clock=self.clock,
            schedule=self.timers.schedule,
        )
        listeners.open.append(proposals.on_open)
        listeners.edit.append(proposals.on_edit)
        listeners.save.append(proposals.on_save)
        listeners.close.append(proposals.on_close)
        listeners.external.append(proposals.on_external)
        listeners.terminal.append(proposals.terminal_command)
        listeners.commit.append(proposals.commit)
        self.edits = ProposeEditService(self, proposals, self.completion, self.workspace_apply_edit_async)

        self.watcher: WorkspaceWatcher | None = None
        # Handling time of recent didChange notifications, for `goldiff.serverStats`.
        self.change_timings: deque[float] = deque(maxlen=100_000)
        self.messages = UserMessages()
        self.shown_messages = 0  # window/showMessage notifications actually sent
        self._settings_reported: set[str] = set()
        self._closed = False

    def advance_clock(self, seconds: float) -> float:
        """Move the logical clock forward, running each timer due on the way; the new time."""
        if self.logical_clock is None:
            raise ConfigError("the clock moves only when the server runs with `--clock logical`")
        self.timers.advance(self.logical_clock, seconds)
        self.store.flush()
        return self.logical_clock.now

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
        loop = self.event_loop
        with contextlib.suppress(RuntimeError):
            if asyncio.get_running_loop() is loop:
                loop = None  # on the loop's own thread: sent at once
        if loop is not None and loop.is_running():
            # From another thread (the store's writer): two threads writing to the client's
            # stream at once could interleave their messages' bytes.
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
                self.tell_user(f"Goldiff: {problem}.")
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
        self.proposals.close()  # settles open edit episodes, before the store closes
        self.outcomes.close()  # settles what is left, before the store closes
        self.recorder.end_session()
        self.store.close()


__all__ = ["GoldiffServer"]
