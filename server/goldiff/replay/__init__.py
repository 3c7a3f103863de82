"""Replay a git history through the real Goldiff server, as a simulated developer.

A team with no traces yet starts from its history: `goldiff replay REPO` opens each
commit's changed files at their parent state, types the change hunk by hunk over real
LSP, asks for inline completions where editors do, accepts, partially accepts or types
over them according to what the developer really wrote, saves, and marks the commit
(`goldiff.commit`). `history` reads git, `developer` decides how to type, `driver` talks
LSP to a server on a logical clock (`goldiff serve --clock logical`).
"""

from __future__ import annotations

from goldiff.replay.driver import ReplayOptions, ReplayResult, replay, replay_async

__all__ = ["ReplayOptions", "ReplayResult", "replay", "replay_async"]
