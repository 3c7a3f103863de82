"""The engine's saved-state folder: what is handed to `save` reaches the disk."""

from __future__ import annotations

import threading
from pathlib import Path

from goldiff.sources.states import StateCache


def test_a_state_saved_while_the_same_file_is_being_written_is_written_too(tmp_path: Path) -> None:
    cache = StateCache(tmp_path / "states", "model")
    writing, release = threading.Event(), threading.Event()
    write = cache._write

    def slow_write(key: str, tokens: list[int], blob: bytes) -> None:
        writing.set()
        release.wait(10)
        write(key, tokens, blob)

    cache._write = slow_write  # type: ignore[method-assign]
    cache.save("/a.py", [1], b"old")
    assert writing.wait(10)
    cache.save("/a.py", [1, 2], b"new")  # arrives while the old state is on its way to disk
    release.set()
    assert cache.flush(10)
    cache.close()
    assert StateCache(tmp_path / "states", "model").load("/a.py") == ([1, 2], b"new")


def test_a_file_saved_again_and_again_does_not_keep_another_files_state_waiting(tmp_path: Path) -> None:
    cache = StateCache(tmp_path / "states", "model")
    writing, release = threading.Event(), threading.Event()
    order: list[str] = []
    write = cache._write

    def busy_write(key: str, tokens: list[int], blob: bytes) -> None:
        order.append(key)
        writing.set()
        release.wait(10)
        if key == "/a.py" and len(order) < 4:
            cache.save(key, [*tokens, 1], blob)  # the developer is still typing in a.py
        write(key, tokens, blob)

    cache._write = busy_write  # type: ignore[method-assign]
    cache.save("/a.py", [1], b"a")
    assert writing.wait(10)
    cache.save("/b.py", [2], b"b")  # switched files while a.py's state is on its way to disk
    release.set()
    assert cache.flush(10)
    cache.close()
    assert order[:2] == ["/a.py", "/b.py"]
    assert StateCache(tmp_path / "states", "model").load("/b.py") == ([2], b"b")
