"""Replay's progress bar (rich): commits done, the commit being typed, characters per second."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from goldiff.replay import driver
from goldiff.replay.history import Commit


class RichProgress(driver.Progress):
    """A `driver.Progress` that draws on stderr; `quiet` keeps only the server's messages."""

    def __init__(self, *, quiet: bool = False, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self._bar = Progress(
            TextColumn("[bold]replay[/]"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("{task.description}"),
            console=self.console,
            disable=quiet,
        )
        self._task = self._bar.add_task("", total=None, rate="", visible=False)
        self._chars = 0
        self._started = time.monotonic()

    def __enter__(self) -> RichProgress:
        self._bar.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._bar.__exit__(*exc_info)

    def start(self, total_commits: int, already_replayed: int) -> None:
        if already_replayed:
            self._bar.console.print(
                f"{already_replayed} commits of this range are in this home already; skipping them "
                "(--restart replays them again)"
            )
        self._started = time.monotonic()
        self._bar.update(self._task, total=total_commits, visible=True)

    def commit_started(self, commit: Commit) -> None:
        self._bar.update(self._task, description=f"{commit.sha[:10]} {commit.subject[:50]}")

    def typed(self, chars: int) -> None:
        self._chars += chars
        elapsed = time.monotonic() - self._started
        if elapsed > 0:
            self._bar.update(self._task, rate=f"{self._chars / elapsed:,.0f} keys/s")

    def commit_done(self, commit: Commit) -> None:
        self._bar.advance(self._task)

    def message(self, text: str) -> None:
        self._bar.console.print(f"[yellow]server:[/] {text}", highlight=False)
