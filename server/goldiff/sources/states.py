"""Evaluated file states on disk, so a restarted engine does not start every file cold.

The local engine keeps the KV cache of recently used files in memory (`local.py`); when its
process dies and restarts, that is gone, and the first completion in every file would
evaluate its whole prompt again. `StateCache` keeps a copy of those states in a small
folder under the Goldiff home (`cache/states/`): one file per model and file key, written
in the background (write, then rename), read back by the restarted engine the first time
it meets the file. The folder is bounded (`MAX_FILES`, `MAX_BYTES`; the least recently used
go first) and every file names the model it was made with (path, size, modification time,
adapter, context size, llama.cpp version): a state of another model is never loaded.

Only states of captured documents are written (`CompletionRequest.captured`), and none whose
text holds a secret, as the trace store keeps neither (`capture/redaction.py`). Files are
readable by the user only. This module does not import llama_cpp.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import struct
import threading
import time
from pathlib import Path

from goldiff.home import write_whole

log = logging.getLogger(__name__)

MAX_FILES = 32
MAX_BYTES = 256 * 1024 * 1024
MAGIC = b"goldiff-state-1\n"
SUFFIX = ".state"
_HEADER = struct.Struct("<I")


def forget(folder: Path) -> int:
    """Delete every saved state (`goldiff forget`: they hold the code they were made from)."""
    removed = 0
    with contextlib.suppress(FileNotFoundError):
        for path in folder.iterdir():
            if path.suffix == SUFFIX or path.name.startswith(".state."):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed += 1
    return removed


def model_identity(*parts: object) -> str:
    """One string for everything a saved state (or a repack fault record) depends on."""
    return hashlib.blake2b("\0".join(map(str, parts)).encode(), digest_size=16).hexdigest()


class StateCache:
    """Saved KV states of one model, one file per file key, in a bounded folder."""

    def __init__(
        self, folder: Path, model: str, *, max_files: int = MAX_FILES, max_bytes: int = MAX_BYTES
    ) -> None:
        self.folder = folder
        self.model = model
        self.max_files = max_files
        self.max_bytes = max_bytes
        self.written = 0  # states written since start (tests, benchmarks)
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._pending: dict[str, tuple[list[int], bytes]] = {}  # states still to write
        self._changed = threading.Condition()  # guards `_pending` and `_closed`
        self._closed = False
        self._writer = threading.Thread(target=self._write_loop, name="goldiff-state-writer", daemon=True)
        self._writer.start()

    def path(self, key: str) -> Path:
        return self.folder / (model_identity(self.model, key) + SUFFIX)

    def load(self, key: str) -> tuple[list[int], bytes] | None:
        """The saved (token ids, state bytes) for `key`, if one exists for this model."""
        with self._changed:
            pending = self._pending.get(key)
        if pending is not None:
            return pending
        path = self.path(key)
        try:
            with path.open("rb") as fh:
                if fh.read(len(MAGIC)) != MAGIC:
                    return None
                (size,) = _HEADER.unpack(fh.read(_HEADER.size))
                header = json.loads(fh.read(size))
                if header.get("model") != self.model or header.get("key") != key:
                    return None  # another model's, or a name collision: not ours to load
                blob = fh.read()
            tokens = [int(t) for t in header["tokens"]]
        except (OSError, ValueError, KeyError, TypeError, struct.error):
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # recently used: evicted last
        return tokens, blob

    def save(self, key: str, tokens: list[int], blob: bytes) -> None:
        """Write this state in the background; a newer one for the same key replaces it."""
        with self._changed:
            self._pending[key] = (list(tokens), blob)
            self._changed.notify_all()

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every state handed to `save` is on disk (tests, shutdown)."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._pending, timeout)

    def close(self) -> None:
        """Write what is pending, then stop the writer."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        self._writer.join(30)

    def _write_loop(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._pending or self._closed)
                if not self._pending:
                    return
                key, state = next(iter(self._pending.items()))
            try:
                self._write(key, *state)
            except OSError as exc:
                log.warning("could not keep the engine state of %s: %s", key, exc)
            with self._changed:
                if self._pending.get(key) is state:
                    del self._pending[key]
                else:  # a newer state came meanwhile: it waits behind the other files' states
                    self._pending[key] = self._pending.pop(key)
                self._changed.notify_all()

    def _write(self, key: str, tokens: list[int], blob: bytes) -> None:
        header = json.dumps({"model": self.model, "key": key, "tokens": tokens}).encode()
        write_whole(self.path(key), ".state.", MAGIC + _HEADER.pack(len(header)) + header, blob)
        self.written += 1
        self._evict()

    def _evict(self) -> None:
        """Keep the folder within its bounds: the least recently used states go first."""
        files: list[tuple[float, int, Path]] = []
        now = time.time()
        for path in self.folder.iterdir():
            with contextlib.suppress(OSError):
                st = path.stat()
                if path.suffix == SUFFIX:
                    files.append((st.st_mtime, st.st_size, path))
                elif path.name.startswith(".state.") and now - st.st_mtime > 600:
                    path.unlink()  # left by an engine killed while writing
        files.sort()
        total = sum(size for _, size, _ in files)
        while files and (len(files) > self.max_files or total > self.max_bytes):
            _, size, path = files.pop(0)
            with contextlib.suppress(OSError):
                path.unlink()
            total -= size
