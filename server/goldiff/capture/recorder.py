"""The recorder: turns what the editor reports into records for the trace store.

It owns the open documents, decides what may be recorded (opt-in, exclude globs, size),
detects changes that do not fit (and resynchronises, recording the gap), and records
terminal commands. It never blocks: the store's writer does the I/O.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pathspec

from goldiff import __version__
from goldiff.capture.documents import Document, OutOfSync
from goldiff.capture.paths import read_text, relative_to_workspace, skip_reason, uri_to_path
from goldiff.protocol import TerminalCommand, language_of
from goldiff.settings import Settings
from goldiff.store import EditRecord, TraceStore

log = logging.getLogger(__name__)

OUTPUT_EXCERPT_CHARS = 8_000  # terminal output kept per command: head and tail


@dataclass
class Listeners:
    """Who hears what the recorder recorded (outcome tracking hooks in here), in order."""

    # After a captured document is opened, with its text as opened.
    open: list[Callable[[Document], None]] = field(default_factory=list)
    # After every recorded change, in the editor or on disk to a file not open there.
    edit: list[Callable[[Document, EditRecord], None]] = field(default_factory=list)
    # After a captured document is saved.
    save: list[Callable[[Document], None]] = field(default_factory=list)
    # After a captured document is closed.
    close: list[Callable[[Document], None]] = field(default_factory=list)
    # When a captured open document changed on disk under the editor: (doc, disk_text).
    external: list[Callable[[Document, str], None]] = field(default_factory=list)
    # When a commit is seen (a settle boundary).
    commit: list[Callable[[], None]] = field(default_factory=list)
    # After every recorded terminal command.
    terminal: list[Callable[[TerminalCommand], None]] = field(default_factory=list)


class Recorder:
    def __init__(self, store: TraceStore, settings: Settings, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.session_id = uuid.uuid4().hex[:16]
        self.workspaces: list[Path] = []
        self.documents: dict[str, Document] = {}
        self._excludes = pathspec.PathSpec.from_lines("gitwildmatch", settings.excludes())
        self.external: dict[str, Document] = {}  # files changed on disk, not open in the editor
        self.listeners = Listeners()

    # ------------------------------------------------------------------ session

    def start_session(self, *, client: str | None, workspaces: list[str], mode: str) -> None:
        self.workspaces = [p for p in (uri_to_path(u) for u in workspaces) if p is not None]
        self.store.record_session(
            {
                "id": self.session_id,
                "started_at": self.clock(),
                "pid": os.getpid(),
                "client": client,
                "workspace": workspaces[0] if workspaces else None,
                "server_version": __version__,
                "mode": mode,
            }
        )

    def end_session(self) -> None:
        self.store.end_session(self.session_id)

    def update_settings(self, settings: Settings) -> None:
        was_enabled = self.settings.capture.enabled
        self.settings = settings
        self._excludes = pathspec.PathSpec.from_lines("gitwildmatch", settings.excludes())
        self.store.record_event(
            "config", session_id=self.session_id, detail={"settings": settings.redacted()}
        )
        if settings.capture.enabled and not was_enabled:
            # Documents opened before the opt-in start being recorded from their text now.
            for doc in self.documents.values():
                if not doc.captured and self._allowed(doc.uri, doc.text)[0]:
                    doc.captured = True
                    self._record_document(doc, None)
                    self.store.record_edit(doc.replace_all(doc.text, doc.version, "open", now=self.clock()))

    # ------------------------------------------------------------------ documents

    def _allowed(self, uri: str, text: str | None) -> tuple[bool, str | None]:
        if not self.settings.capture.enabled:
            return False, None
        path = uri_to_path(uri)
        if path is not None:
            ws, rel = relative_to_workspace(path, self.workspaces)
            if self.workspaces and ws is None:
                # The editor opens its own files too (settings.json, logs): only what is
                # inside the opted-in workspace is the developer's work.
                return False, "outside the workspace folders"
            if self._excludes.match_file(rel) or self._excludes.match_file(path.name):
                return False, "excluded by capture.exclude"
        reason = skip_reason(text)
        return (reason is None), reason

    def _record_document(self, doc: Document, skipped: str | None) -> None:
        self.store.record_document(
            {
                "id": doc.id,
                "session_id": self.session_id,
                "uri": doc.uri,
                "workspace": doc.workspace,
                "path": doc.path,
                "language": doc.language,
                "opened_at": self.clock(),
                "skipped": skipped,
            }
        )

    def open(self, uri: str, language: str, version: int | None, text: str) -> Document:
        doc = Document.new(uri, language, version, text)
        path = uri_to_path(uri)
        if path is not None:
            ws, rel = relative_to_workspace(path, self.workspaces)
            doc.workspace = ws.as_uri() if ws else None
            doc.path = rel
        self.documents[uri] = doc
        allowed, reason = self._allowed(uri, text)
        doc.captured = allowed
        if allowed:
            self._record_document(doc, None)
            self.store.record_edit(doc.replace_all(text, version, "open", now=self.clock()))
            for listener in self.listeners.open:
                listener(doc)
        elif reason is not None:
            self._record_document(doc, reason)
            self.store.record_event(
                "skip", session_id=self.session_id, document_id=doc.id, detail={"reason": reason}
            )
        return doc

    def change(self, uri: str, version: int | None, changes: list[Any]) -> None:
        """Apply LSP content changes (each with `.range` or a full `.text`)."""
        doc = self.documents.get(uri)
        if doc is None:
            self._gap(None, uri, "change for a document that was never opened")
            text = self._disk_text(uri)
            if text is None:
                return
            doc = self.open(uri, "", None, text)
        if doc.version is not None and version is not None and version != doc.version + 1:
            self._gap(doc, uri, f"version jumped from {doc.version} to {version}")
        for change in changes:
            rng = getattr(change, "range", None)
            if rng is None:
                edit = doc.replace_all(change.text, version, "full", now=self.clock())
            else:
                try:
                    edit = doc.apply(
                        (rng.start.line, rng.start.character),
                        (rng.end.line, rng.end.character),
                        change.text,
                        version,
                        now=self.clock(),
                    )
                except OutOfSync as exc:
                    self._resync(doc, str(exc), version)
                    return
            if doc.captured:
                self.store.record_edit(edit)
                for listener in self.listeners.edit:
                    listener(doc, edit)

    def save(self, uri: str, text: str | None) -> None:
        doc = self.documents.get(uri)
        if doc is None:
            return
        if text is not None and text != doc.text:
            self._gap(doc, uri, "saved text differs from the edits received")
            edit = doc.replace_all(text, doc.version, "resync", now=self.clock())
            if doc.captured:
                self.store.record_edit(edit)
        if doc.captured:
            self.store.record_event("save", session_id=self.session_id, document_id=doc.id)
            for listener in self.listeners.save:
                listener(doc)

    def close(self, uri: str) -> None:
        doc = self.documents.pop(uri, None)
        if doc is not None and doc.captured:
            self.store.record_event("close", session_id=self.session_id, document_id=doc.id)
            for listener in self.listeners.close:
                listener(doc)

    def _resync(self, doc: Document, why: str, version: int | None) -> None:
        """Our copy no longer matches the editor's: take the file from disk, record the gap."""
        self._gap(doc, doc.uri, why)
        text = self._disk_text(doc.uri)
        if text is not None:
            edit = doc.replace_all(text, version, "resync", now=self.clock())
            if doc.captured:
                self.store.record_edit(edit)
        else:
            # Nothing to resync from: stop trusting increments until a full text arrives.
            doc.version = None
        log.warning("resynchronised %s: %s", doc.uri, why)

    def _gap(self, doc: Document | None, uri: str, why: str) -> None:
        self.store.record_event(
            "gap",
            session_id=self.session_id,
            document_id=doc.id if doc else None,
            detail={"uri": uri, "reason": why},
        )

    @staticmethod
    def _disk_text(uri: str) -> str | None:
        path = uri_to_path(uri)
        return read_text(path)[0] if path is not None else None

    # ------------------------------------------------------------------ outside the editor

    def external_change(self, root: Path, path: Path) -> None:
        """A file changed on disk by another program (formatter, checkout, agent)."""
        if not self.settings.capture.enabled:
            return
        uri = path.resolve().as_uri()
        rel = path.resolve().relative_to(root.resolve()).as_posix()
        if self._excludes.match_file(rel) or self._excludes.match_file(path.name):
            return
        text, reason = read_text(path)
        open_doc = self.documents.get(uri)
        if open_doc is not None:
            if text is not None and text != open_doc.text and open_doc.captured:
                # The editor reports its own reload; note that the disk moved under it.
                self.store.record_event(
                    "external",
                    session_id=self.session_id,
                    document_id=open_doc.id,
                    detail={"uri": uri, "bytes": len(text)},
                )
            if text is not None and open_doc.captured:
                # Also when the editor's reload came first: listeners tell the two apart.
                for external_listener in self.listeners.external:
                    external_listener(open_doc, text)
            return
        doc = self.external.get(uri)
        if text is None:
            if doc is None and reason:
                self.store.record_event(
                    "skip", session_id=self.session_id, detail={"uri": uri, "reason": reason}
                )
            return
        if doc is None:
            doc = Document.new(uri, language_of(path.name), None, "")
            doc.workspace, doc.path = root.resolve().as_uri(), rel
            self.external[uri] = doc
            self._record_document(doc, None)
        elif doc.text == text:
            return
        edit = doc.replace_all(text, None, "external", now=self.clock())
        self.store.record_edit(edit)
        for listener in self.listeners.edit:
            listener(doc, edit)

    def commit(self, root: Path, sha: str) -> None:
        if not self.settings.capture.enabled:
            return
        workspace = root.resolve().as_uri()
        self.store.record_event(
            "commit", session_id=self.session_id, detail={"workspace": workspace, "sha": sha}
        )
        for listener in self.listeners.commit:
            listener()

    # ------------------------------------------------------------------ terminal

    def terminal_command(self, cmd: TerminalCommand) -> None:
        if not self.settings.capture.enabled:
            return
        output = cmd.output
        truncated = False
        if output and len(output) > OUTPUT_EXCERPT_CHARS:
            half = OUTPUT_EXCERPT_CHARS // 2
            output = output[:half] + "\n[… output truncated …]\n" + output[-half:]
            truncated = True
        workspace = relative_to_workspace(Path(cmd.cwd), self.workspaces)[0] if cmd.cwd else None
        workspace = workspace or next(iter(self.workspaces), None)
        self.store.record_terminal_command(
            {
                "session_id": self.session_id,
                "workspace": workspace.as_uri() if workspace else None,
                "command_line": cmd.command_line,
                "cwd": cmd.cwd,
                "exit_code": cmd.exit_code,
                "started_at": cmd.started_at / 1000 if cmd.started_at else None,
                "ended_at": cmd.ended_at / 1000 if cmd.ended_at else None,
                "output": output,
                "output_truncated": int(truncated),
            }
        )
        for listener in self.listeners.terminal:
            listener(cmd)
