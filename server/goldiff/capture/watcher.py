"""Changes made outside the editor: formatters, `git checkout`, a coding agent's writes.

A watchdog observer watches each workspace folder. A file that changes on disk and is not
open in the editor is recorded as an `external` edit holding its new full text (stored
once per content); an open document only gets an `external` event, since the editor
reports the reload itself. `.gitignore` and the exclude globs are respected. A commit
(HEAD or a ref moving under `.git/`) is recorded as a `commit` event, which later stages
use as a settle boundary. Watchdog calls come on its own thread; everything is handed to
the server's event loop, debounced per path, so the recorder stays single-threaded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pathspec
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from goldiff.capture.paths import git_output

log = logging.getLogger(__name__)

DEBOUNCE_SECONDS = 0.15


def head_commit(root: Path) -> str | None:
    out = git_output(root, "rev-parse", "HEAD", timeout=5)
    return out.decode().strip() or None if out is not None else None


def _gitignore(root: Path) -> pathspec.PathSpec[Any]:
    try:
        lines = (root / ".gitignore").read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:  # none, or unreadable: nothing is ignored
        lines = []
    return pathspec.PathSpec.from_lines("gitwildmatch", lines)


class WorkspaceWatcher(FileSystemEventHandler):
    """Watches workspace folders; calls back on the event loop with settled changes."""

    def __init__(
        self,
        roots: list[Path],
        loop: asyncio.AbstractEventLoop,
        on_file_changed: Callable[[Path, Path], None],
        on_commit: Callable[[Path, str], None],
    ) -> None:
        self.roots = [r.resolve() for r in roots]
        self.loop = loop
        self.on_file_changed = on_file_changed
        self.on_commit = on_commit
        self._ignores = {root: _gitignore(root) for root in self.roots}
        self._heads = {root: head_commit(root) for root in self.roots}
        self._pending: dict[Path, asyncio.TimerHandle] = {}
        self._observer = Observer()

    def start(self) -> None:
        for root in self.roots:
            if root.is_dir():
                self._observer.schedule(self, str(root), recursive=True)
        self._observer.daemon = True
        self._observer.start()

    def stop(self) -> None:
        self._observer.stop()
        self._observer.join(timeout=5)

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory or event.event_type not in ("created", "modified", "moved", "closed"):
            return
        raw = event.dest_path if event.event_type == "moved" and event.dest_path else event.src_path
        path = Path(raw if isinstance(raw, str) else raw.decode())
        root = next((root for root in self.roots if path.is_relative_to(root)), None)
        if root is None:
            return
        rel = path.relative_to(root).as_posix()
        if rel.startswith(".git/"):
            if rel == ".git/HEAD" or rel.startswith(".git/refs/") or rel == ".git/packed-refs":
                self.loop.call_soon_threadsafe(self._debounce, root / ".git", root, True)
            return
        if self._ignores[root].match_file(rel):
            return
        self.loop.call_soon_threadsafe(self._debounce, path, root, False)

    def _debounce(self, path: Path, root: Path, is_git: bool) -> None:
        # Editors and tools write in bursts; wait for the burst to end.
        handle = self._pending.pop(path, None)
        if handle is not None:
            handle.cancel()
        self._pending[path] = self.loop.call_later(DEBOUNCE_SECONDS, self._fire, path, root, is_git)

    def _fire(self, path: Path, root: Path, is_git: bool) -> None:
        self._pending.pop(path, None)
        if is_git:
            head = head_commit(root)
            if head and head != self._heads.get(root):
                self._heads[root] = head
                self.on_commit(root, head)
            return
        if path.is_file():
            self.on_file_changed(root, path)
