"""Replay a git history through the real Goldiff server, as a simulated developer.

A team with no traces yet starts from its history: `goldiff replay REPO` opens each
commit's changed files at their parent state, types the change hunk by hunk over real
LSP, asks for inline completions where editors do, accepts, partially accepts or types
over them according to what the developer really wrote, saves, and marks the commit.
`history` reads git, `developer` decides how to type, `driver` talks LSP, and `hooks` is
the server's side (the `goldiff.commit` command). This package's `__init__` imports
nothing heavy: the server imports `hooks` at start.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ReplayOptions", "ReplayResult", "replay", "replay_async"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from goldiff.replay import driver

        return getattr(driver, name)
    raise AttributeError(name)
