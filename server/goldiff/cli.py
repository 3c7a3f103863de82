"""The `goldiff` command line: each command a few lines over a library function.

User mistakes become `click.ClickException`s with a sentence that says what to do; a
traceback means a bug in Goldiff.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from goldiff import __version__
from goldiff.errors import GoldiffError
from goldiff.home import resolve_home, store_path

F = TypeVar("F", bound=Callable[..., Any])


def home_option(fn: F) -> F:
    return click.option(
        "--home",
        envvar="GOLDIFF_HOME",
        type=click.Path(file_okay=False, path_type=Path),
        help="Data folder (traces.db, models/, exports/). Default: $GOLDIFF_HOME or the user data dir.",
    )(fn)


def friendly(fn: F) -> F:
    """Turn Goldiff's own errors into a one-line message instead of a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except GoldiffError as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper  # type: ignore[return-value]


@click.group()
@click.version_option(__version__, prog_name="goldiff")
def main() -> None:
    """Goldiff: learn from what developers keep."""


@main.command()
@home_option
@click.option("--tcp", metavar="HOST:PORT", help="Listen on TCP instead of stdio (for debugging).")
@click.option(
    "--log-file", type=click.Path(dir_okay=False, path_type=Path), help="Write the server log here."
)
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
def serve(home: Path | None, tcp: str | None, log_file: Path | None, verbose: bool) -> None:
    """Run the language server (stdio by default)."""
    from goldiff.lsp import serve as run

    handler: logging.Handler = (
        logging.FileHandler(log_file) if log_file else logging.StreamHandler(sys.stderr)
    )  # never stdout: it is the LSP channel
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        handlers=[handler],
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    address = None
    if tcp:
        host, _, port = tcp.rpartition(":")
        if not host or not port.isdigit():
            raise click.BadParameter("use HOST:PORT, e.g. 127.0.0.1:2087", param_hint="--tcp")
        address = (host, int(port))
    run(str(home) if home else None, address)


def _open_reader(home: Path | None) -> Any:
    from goldiff.store import open_database

    path = store_path(resolve_home(home))
    if not path.exists():
        raise click.ClickException(
            f"no trace store at {path} yet. Open a workspace with Goldiff capture enabled, "
            "or run `goldiff demo`."
        )
    db, moved = open_database(path)
    if moved is not None:
        click.echo(f"The trace store was unreadable and was moved to {moved}.", err=True)
    return db, path


@main.command()
@home_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@friendly
def stats(home: Path | None, as_json: bool) -> None:
    """Counts of what Goldiff recorded: sessions, files, edits, suggestions by outcome."""
    from goldiff import audit

    db, path = _open_reader(home)
    data = audit.stats(db, path)
    if as_json:
        click.echo(audit.as_json(data))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Goldiff store {path}")
    table.add_column("what")
    table.add_column("count", justify="right")
    for key in (
        "sessions",
        "documents",
        "edits",
        "keystroke_versions",
        "snapshots",
        "terminal_commands",
        "suggestions",
    ):
        table.add_row(key.replace("_", " "), str(data[key]))
    for outcome, n in sorted(data["suggestions_by_outcome"].items()):
        table.add_row(f"  {outcome}", str(n))
    table.add_row("store size", f"{data['store_bytes'] / 1024:.1f} KiB")
    Console().print(table)
    for entry in data["by_source"]:
        rate = entry["acceptance_rate"]
        click.echo(
            f"{entry['source']} {entry['model']}: {entry['suggestions']} suggestions, "
            f"acceptance {'n/a' if rate is None else f'{rate:.0%}'}"
        )
    from goldiff.outcomes.stats import print_outcomes

    print_outcomes(data["outcomes"], Console())


@main.command()
@home_option
@click.argument("uri")
@click.option("--version", "version", type=int, help="Rebuild this document version.")
@friendly
def show(home: Path | None, uri: str, version: int | None) -> None:
    """Print a document's text rebuilt from the store: exactly what Goldiff kept."""
    from goldiff import audit
    from goldiff.capture.paths import path_to_uri

    if "://" not in uri:
        uri = path_to_uri(Path(uri))
    db, _ = _open_reader(home)
    rebuilt = audit.rebuild(db, uri, version)
    if not rebuilt.verified:
        click.echo("warning: the rebuilt text does not match a recorded hash", err=True)
    click.echo(rebuilt.text, nl=False)


@main.command()
@home_option
@click.option("--workspace", help="Only this workspace's data (a folder path or file:// URI).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@friendly
def forget(home: Path | None, workspace: str | None, yes: bool) -> None:
    """Delete recorded data (everything, or one workspace's)."""
    from goldiff import audit
    from goldiff.capture.paths import path_to_uri

    if workspace and "://" not in workspace:
        workspace = path_to_uri(Path(workspace))
    what = f"everything recorded for {workspace}" if workspace else "everything Goldiff recorded"
    if not yes:
        click.confirm(f"Delete {what}?", abort=True)
    db, _ = _open_reader(home)
    deleted = audit.forget(db, workspace)
    click.echo(json.dumps(deleted, sort_keys=True))


@main.command()
@home_option
def doctor(home: Path | None) -> None:
    """Check the store, versions, models and frontier settings; say what to fix."""
    from goldiff.doctor import run_checks

    ok = run_checks(resolve_home(home), echo=click.echo)
    if not ok:
        raise SystemExit(1)


@main.command()
@home_option
@click.argument("repo", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--range", "rev_range", metavar="A..B", help="Commits to replay (git range). Default: all of HEAD."
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the simulated developer.")
@click.option(
    "--include", multiple=True, metavar="GLOB", help="Only files matching (repeatable), e.g. '*.py'."
)
@click.option("--max-commits", type=click.IntRange(min=1), help="Stop after this many commits.")
@click.option("--mode", type=click.Choice(["local", "frontier", "shadow"]), help="Completion source mode.")
@click.option("--model", help="Local model (registry name or GGUF path) that makes the suggestions.")
@click.option("--restart", is_flag=True, help="Replay commits again even if this home already holds them.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@friendly
def replay(
    home: Path | None,
    repo: Path,
    rev_range: str | None,
    seed: int,
    include: tuple[str, ...],
    max_commits: int | None,
    mode: str | None,
    model: str | None,
    restart: bool,
    as_json: bool,
) -> None:
    """Replay REPO's git history through the Goldiff server as a simulated developer.

    Stop with Ctrl-C at any time; the same command resumes after the last replayed commit.
    """
    from goldiff.replay import ReplayOptions
    from goldiff.replay import replay as run
    from goldiff.replay.progress import RichProgress

    settings: dict[str, Any] = {"mode": mode} if mode else {}
    if model:
        settings["local"] = {"model": model}
    options = ReplayOptions(
        rev_range=rev_range,
        seed=seed,
        include=include,
        max_commits=max_commits,
        settings=settings,
        resume=not restart,
    )
    with RichProgress(quiet=as_json) as progress:
        result = run(repo, resolve_home(home), options, progress)
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2, sort_keys=True))
    else:
        click.echo(
            f"replayed {result.commits} commits ({result.files} files, {result.keystrokes} keystrokes, "
            f"{result.chars_per_second:,.0f} chars/s); suggestions: {result.suggestions} shown, "
            f"{result.accepted} accepted, {result.partial} partly accepted, {result.rejected} typed over"
        )
    if result.interrupted:
        click.echo("Stopped before the end: run the same command again to resume.", err=True)
        raise SystemExit(130)
