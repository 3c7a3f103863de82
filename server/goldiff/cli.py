"""The `goldiff` command line: each command a few lines over a library function.

User mistakes become `click.ClickException`s with a sentence that says what to do; a
traceback means a bug in Goldiff.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

import click

from goldiff import __version__
from goldiff.clock import CLOCK_MODES, ClockMode
from goldiff.errors import GoldiffError
from goldiff.home import resolve_home, store_path
from goldiff.protocol import EXPORT_FORMATS, ROW_FORMATS

F = TypeVar("F", bound=Callable[..., Any])


home_option = click.option(
    "--home",
    envvar="GOLDIFF_HOME",
    type=click.Path(file_okay=False, path_type=Path),
    help="Data folder (traces.db, models/, exports/). Default: $GOLDIFF_HOME or the user data dir.",
)


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
@click.option(
    "--clock",
    type=click.Choice(CLOCK_MODES),
    default="wall",
    show_default=True,
    help="logical: time moves only through goldiff.advanceClock (replay, demo).",
)
def serve(home: Path | None, tcp: str | None, log_file: Path | None, verbose: bool, clock: ClockMode) -> None:
    """Run the language server (stdio by default)."""
    if "pandas" not in sys.modules:
        # sqlite-utils imports pandas when it is installed (the train extra brings it):
        # ~1 s and ~80 MB at every editor start, for a feature the server never uses.
        sys.modules["pandas"] = None  # type: ignore[assignment]
    from goldiff.lsp import serve as run

    if "pandas" in sys.modules and sys.modules["pandas"] is None:
        # sqlite-utils has made its choice; a Parquet export (pyarrow) may still want pandas.
        del sys.modules["pandas"]

    handler: logging.Handler = (
        logging.FileHandler(log_file) if log_file else logging.StreamHandler(sys.stderr)
    )  # never stdout: it is the LSP channel
    from goldiff.capture.redaction import RedactingFilter

    # Every line the log gets passes the redactor, whichever logger wrote it.
    handler.addFilter(RedactingFilter())
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        handlers=[handler],
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # pygls logs whole messages (initializationOptions, document texts) at INFO/DEBUG:
    # they may hold an API key or a secret, so only its warnings reach the log.
    logging.getLogger("pygls").setLevel(logging.WARNING)
    address = None
    if tcp:
        host, _, port = tcp.rpartition(":")
        if not host or not port.isdigit():
            raise click.BadParameter("use HOST:PORT, e.g. 127.0.0.1:2087", param_hint="--tcp")
        address = (host, int(port))
    run(str(home) if home else None, address, clock)


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

    audit.print_stats(data, path, Console(), click.echo)


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


def _when(value: str | None, option: str) -> float | None:
    """An instant given as ISO 8601 (`2026-12-01`, `2026-12-01T14:30`, local time unless a
    zone is given) or epoch seconds; read as `goldiff export` reads its times."""
    from goldiff.errors import ExportError
    from goldiff.export import parse_time

    try:
        return None if value is None else parse_time(value, option)
    except ExportError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


@main.command()
@home_option
@click.option("--workspace", help="Only this workspace's data (a folder path or file:// URI).")
@click.option("--document", help="Only this document's data (a file path or URI).")
@click.option("--since", help="Only data recorded from this time on (2026-12-01T14:30 or epoch seconds).")
@click.option("--until", help="Only data recorded before this time.")
@click.option("--all", "everything", is_flag=True, help="Everything Goldiff recorded.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@friendly
def forget(
    home: Path | None,
    workspace: str | None,
    document: str | None,
    since: str | None,
    until: str | None,
    everything: bool,
    yes: bool,
) -> None:
    """Delete recorded data: a workspace's, a document's, a time range's, or --all.

    The deleted text is overwritten in the store's files, not only unlisted.
    """
    from goldiff.capture.paths import path_to_uri
    from goldiff.home import states_dir
    from goldiff.sources import states
    from goldiff.store import forget as forget_recorded

    scopes = [bool(workspace), bool(document), since is not None or until is not None, everything]
    if sum(scopes) != 1:
        raise click.UsageError(
            "say what to forget: --workspace DIR, --document FILE, --since/--until TIME, or --all"
        )
    if workspace and "://" not in workspace:
        workspace = path_to_uri(Path(workspace))
    if document and "://" not in document:
        document = path_to_uri(Path(document))
    start, end = _when(since, "--since"), _when(until, "--until")
    if workspace:
        what = f"everything recorded for the workspace {workspace}"
    elif document:
        what = f"everything recorded for {document}"
    elif everything:
        what = "everything Goldiff recorded"
    else:
        what = f"everything recorded between {since or 'the start'} and {until or 'now'}"
    if not yes:
        click.confirm(f"Delete {what}?", abort=True)
    db, _ = _open_reader(home)
    deleted = forget_recorded(db, workspace, document=document, since=start, until=end)
    # The engine's saved file states hold code too; they are a cache, so all of them go.
    states.forget(states_dir(resolve_home(home)))
    click.echo(json.dumps(deleted, sort_keys=True))


@main.command()
@home_option
def doctor(home: Path | None) -> None:
    """Check the store, versions, models and frontier settings; say what to fix."""
    from goldiff.doctor import run_checks

    if not run_checks(resolve_home(home), echo=click.echo):
        raise SystemExit(1)


@main.group()
def models() -> None:
    """Local models and adapters: list them, choose the default."""


@models.command("list")
@home_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@friendly
def models_list(home: Path | None, as_json: bool) -> None:
    """The registered models and adapters; the default is marked with *."""
    from goldiff.sources.registry import Registry

    registry = Registry(resolve_home(home))
    entries = registry.list()
    default = registry.default()
    if as_json:
        rows = [{**e.__dict__, "default": e.name == default, "exists": e.exists()} for e in entries]
        click.echo(json.dumps(rows, indent=2, sort_keys=True))
        return
    if not entries:
        click.echo("No local models yet. Register one with `goldiff models use PATH.gguf`.")
        return
    for e in entries:
        mark = "*" if e.name == default else " "
        missing = "" if e.exists() else "  (file missing)"
        base = f"  on {e.base}" if e.base else ""
        click.echo(f"{mark} {e.name}  [{e.kind}]{base}  {e.path}{missing}")


@models.command("use")
@home_option
@click.argument("name_or_path")
@friendly
def models_use(home: Path | None, name_or_path: str) -> None:
    """Make NAME (or a GGUF file, registered under its file name) the default local model."""
    from goldiff.sources.registry import Registry

    entry = Registry(resolve_home(home)).use(name_or_path)
    click.echo(f"The default local model is now {entry.name} ({entry.path}).")


@models.command("pull")
@home_option
@click.argument("source")
@click.option("--name", help="Registry name (default: the file name without .gguf).")
@click.option("--sha256", help="The file's expected SHA-256 (the hub states it; other servers may not).")
@click.option("--use", "make_default", is_flag=True, help="Make it the default local model too.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@friendly
def models_pull(
    home: Path | None, source: str, name: str | None, sha256: str | None, make_default: bool, as_json: bool
) -> None:
    """Fetch a GGUF model and register it: hf://OWNER/REPO/FILE.gguf, an http(s) URL or a file.

    The download is checked (SHA-256, GGUF header) before it is registered; an interrupted
    one resumes when the same command runs again. HF_ENDPOINT points hf:// at a mirror.
    """
    from goldiff.sources.pull import describe, pull
    from goldiff.sources.registry import Registry

    root = resolve_home(home)
    if not as_json:
        info = describe(source)
        size = f"{info['bytes'] / (1 << 20):.1f} MiB" if "bytes" in info else "size unknown"
        licence = f", licence {info['licence']}" if "licence" in info else ""
        click.echo(f"{info['filename']}: {size}{licence}", err=True)
    with _progress_bar("downloading") as progress:
        pulled = pull(root, source, name=name, sha256=sha256, progress=lambda d, t: progress(d, t or 0))
    if make_default:
        Registry(root).use(pulled.entry.name)
    if as_json:
        click.echo(json.dumps({**pulled.as_dict(), "default": make_default}, indent=2, sort_keys=True))
        return
    check = (
        "SHA-256 verified" if pulled.verified else "no SHA-256 was stated to check against (pass --sha256)"
    )
    click.echo(f"Registered {pulled.entry.name} ({pulled.entry.path}, {pulled.bytes} bytes; {check}).")
    click.echo(
        "It is now the default local model."
        if make_default
        else f"Use it: goldiff models use {pulled.entry.name}"
    )


@models.command("gate")
@home_option
@click.option("--model", "model", help="The model the gate is for (default: the default model).")
@click.option("--source", default="local", show_default=True, help="Learn from this source's suggestions.")
@click.option("--json", "as_json", is_flag=True, help="Print the gate's summary as JSON.")
@friendly
def models_gate(home: Path | None, model: str | None, source: str, as_json: bool) -> None:
    """Train the show/hide gate on your recorded outcomes; version it beside the model."""
    from goldiff.gate import train_gate
    from goldiff.home import models_dir
    from goldiff.sources.profile import load_profile
    from goldiff.sources.registry import Registry

    root = resolve_home(home)
    registry = Registry(root)
    resolved = registry.resolve(model)
    name = resolved.name
    db, _ = _open_reader(home)
    version = len(registry.gates(name)["versions"]) + 1
    out = models_dir(root) / "gates" / f"{name}.gate-v{version}.json"
    try:
        gate = train_gate(db, out, source=source, start=load_profile(resolved.model_path).min_token_prob)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    registry.set_gate(name, out, gate.info)
    plot = None
    with contextlib.suppress(ImportError):  # matplotlib is in the train extra: the curve stays in the JSON
        from goldiff.evaluate import plot_gate_curve

        plot = plot_gate_curve(gate.info["curve"], out.with_suffix(".png"))
    summary = {
        "model": name,
        "version": version,
        "path": str(out),
        "plot": str(plot or ""),
        "threshold": gate.threshold,
        "learned_stop": gate.stop,
        **gate.info,
    }
    if as_json:
        click.echo(json.dumps(summary, indent=2, sort_keys=True))
    else:
        stop = f", suggestions stop below p = {gate.stop:g}" if gate.stop is not None else ""
        click.echo(
            f"Gate v{version} for {name}: trained on {gate.info['rows']} suggestions "
            f"({gate.info['kept']} kept), threshold {gate.threshold:.2f}{stop}; the server uses it "
            "from its next request."
        )


@main.command("export")
@home_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(EXPORT_FORMATS),
    default="sft",
    show_default=True,
    help="Row format: TRL prompt/completion, preference pairs, KTO labels, edit episodes, "
    "OpenAI chat fine-tuning, or Parquet.",
)
@click.option("--rows", type=click.Choice(ROW_FORMATS), help="Row shape for openai/parquet.")
@click.option(
    "--out",
    help="File (or folder with --split). With --format parquet a folder or fsspec URL "
    "(s3://, memory://, file://...) takes a hive-partitioned dataset. Default: HOME/exports/.",
)
@click.option(
    "--since", help="Only records at or after this time (ISO date, local unless zoned, or epoch seconds)."
)
@click.option("--until", help="Only records before this time.")
@click.option("--workspace", help="Only this workspace (folder path or file:// URI).")
@click.option("--language", help="Only this language id (python, typescript, ...).")
@click.option("--source", help="Only suggestions from this source (frontier, local).")
@click.option("--model", help="Only suggestions from this model.")
@click.option("--outcome", multiple=True, help="accepted, partial, rejected or pending (repeatable).")
@click.option("--min-survival", type=float, help="Only suggestions with at least this share surviving (0-1).")
@click.option(
    "--tests-passed/--tests-failed", default=None, help="Only episodes whose last test run passed/failed."
)
@click.option("--split", is_flag=True, help="Write train/test files split by time, without context leaks.")
@click.option("--test-fraction", type=float, default=0.1, show_default=True, help="Newest share held out.")
@click.option("--split-at", help="Hold out everything from this time on (instead of --test-fraction).")
@click.option("--no-code", is_flag=True, help="Export metrics only: no code, hashed paths.")
@click.option(
    "--partitioned",
    is_flag=True,
    help="Parquet only: write a hive-partitioned dataset (workspace=…/date=…/part-….parquet) "
    "into --out, to pool with other developers' (implied by a URL or an existing folder).",
)
@click.option("--hash-provenance", is_flag=True, help="Store the developer's store id hashed, not as is.")
@friendly
def export_cmd(home: Path | None, fmt: str, rows: str | None, out: str | None, **kw: Any) -> None:
    """Turn recorded gold into a training dataset (prints a JSON summary)."""
    from goldiff import export as ex
    from goldiff.home import exports_dir

    names = ("since", "until", "workspace", "language", "source", "model", "min_survival", "tests_passed")
    filters = ex.ExportFilters.build(outcome=kw["outcome"] or None, **{k: kw[k] for k in names})
    split_at = ex.parse_time(kw["split_at"], "--split-at") if kw["split_at"] else None
    options = ex.ExportOptions(
        format=fmt,
        rows=rows,
        filters=filters,
        split=kw["split"] or split_at is not None,
        test_fraction=kw["test_fraction"],
        split_at=split_at,
        no_code=kw["no_code"],
    )
    db, store = _open_reader(home)
    if fmt == "parquet" and out and _is_dataset_target(out, kw["partitioned"], options.split):
        from goldiff import pool

        with _progress_bar("exporting") as progress:
            dataset = pool.export_dataset(
                db,
                options,
                out,
                store=pool.store_id(store),
                hash_provenance=kw["hash_provenance"],
                progress=progress,
            )
        click.echo(json.dumps(dataset.as_dict(), indent=2))
        return
    if kw["partitioned"]:
        raise click.BadParameter("a partitioned dataset needs --format parquet and --out", param_hint="--out")
    target = Path(out) if out else ex.default_out(exports_dir(resolve_home(home)), options)
    with _progress_bar("exporting") as progress:
        result = ex.export(db, options, target, progress)
    answer = ex.with_explanation(db, options, result)
    click.echo(json.dumps(answer, indent=2))
    if "why" in answer:
        click.echo(answer["why"], err=True)


def _is_dataset_target(out: str, partitioned: bool, split: bool) -> bool:
    """A pooled dataset goes to a URL, an existing folder, or wherever --partitioned says."""
    return partitioned or (not split and ("://" in out or Path(out).expanduser().is_dir()))


@main.command("pool")
@click.argument("sources", nargs=-1, required=True)
@click.option("--out", required=True, help="The pooled dataset: a folder or an fsspec URL.")
@click.option("--hash-provenance", is_flag=True, help="Replace store ids by their hashes.")
@friendly
def pool_cmd(sources: tuple[str, ...], out: str, hash_provenance: bool) -> None:
    """Merge developers' exports (datasets, folders, URLs or files) into one, without duplicates."""
    from goldiff import pool

    result = pool.pool(list(sources), out, hash_provenance=hash_provenance)
    click.echo(json.dumps(result.as_dict(), indent=2))


@contextlib.contextmanager
def _progress_bar(label: str) -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar on stderr for long work; quiet when stderr is not a terminal."""
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True, disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task(label, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


@main.command("eval")
@home_option
@click.option(
    "--data",
    type=click.Path(exists=True, path_type=Path),
    help="Held-out rows: a split export folder or an sft JSONL/Parquet file. "
    "Default: split the store's sft rows now.",
)
@click.option("--base", help="The base model: a registered name or a GGUF path.")
@click.option("--distilled", help="The distilled model: a registered name or a GGUF path.")
@click.option(
    "--adapter", type=click.Path(path_type=Path), help="A LoRA GGUF on --base: the distilled model."
)
@click.option("--model", "extra", multiple=True, metavar="NAME=MODEL", help="Another model (repeatable).")
@click.option("--no-frontier", is_flag=True, help="Leave out the frontier's recorded suggestions.")
@click.option("--limit", type=int, help="Evaluate only the newest N held-out rows.")
@click.option("--max-tokens", type=int, help="Tokens per completion (default: the server's, as users get).")
@click.option("--threads", type=int, default=2, show_default=True, help="llama.cpp threads.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Report folder.")
@friendly
def eval_cmd(
    home: Path | None,
    data: Path | None,
    base: str | None,
    distilled: str | None,
    adapter: Path | None,
    extra: tuple[str, ...],
    no_frontier: bool,
    limit: int | None,
    max_tokens: int | None,
    threads: int,
    out: Path | None,
) -> None:
    """Compare base, distilled and frontier on held-out gold; write JSON and a report."""
    import time

    from goldiff import evaluate as ev
    from goldiff import export as ex
    from goldiff.gate import load_gate
    from goldiff.home import exports_dir
    from goldiff.sources.registry import Registry
    from goldiff.sources.repack import faults_path

    root = resolve_home(home)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    out = out or exports_dir(root) / f"eval-{stamp}"
    if adapter and not base:
        raise click.BadParameter("an adapter needs its base model: add --base", param_hint="--adapter")
    specs: list[tuple[str, str, str, Path | None]] = []
    if base:
        specs.append(("base", "base", base, None))
    if distilled or adapter:
        specs.append(("distilled", "distilled", distilled or base or "", adapter))
    for item in extra:
        name, sep, model = item.partition("=")
        if not sep or not name or not model:
            raise click.BadParameter("use NAME=MODEL (a registered name or GGUF path)", param_hint="--model")
        specs.append((name, "other", model, None))
    models = []
    gates: dict[str, Path | None] = {}
    for name, role, model, lora in specs:
        resolved = Registry(root).resolve(model)  # a registered model's files, or the path itself
        gates[model] = resolved.gate
        models.append(
            ev.gguf_model(
                name,
                role,
                resolved.model_path,
                adapter=lora or resolved.adapter_path,
                max_tokens=max_tokens,
                n_threads=threads,
                # What the server serves this model with: its serving profile (read beside
                # the GGUF by the engine) and its registered gate.
                gate=resolved.gate,
                # The server's repack fault records: evaluation runs the kernels users get.
                faults=faults_path(root),
            )
        )
    if data is None:
        db, _ = _open_reader(home)
        ex.export(db, ex.ExportOptions(format="sft", split=True), out / "data")
        data = out / "data"
    rows = ev.eval_rows(ex.load_rows(data))
    if limit is not None:
        rows = rows[-limit:]
    gate = None
    with contextlib.suppress(OSError, ValueError):  # an unreadable gate: the report goes without its curve
        gate = load_gate(gates.get(distilled or base or ""))
    # The report shows the gate's trade-off beside the models (table and plot).
    curve = {"gate_curve": list(gate.info["curve"])} if gate is not None and gate.info.get("curve") else {}
    with _progress_bar("evaluating") as progress:
        report, files = ev.run_eval(
            rows, models, out, frontier=not no_frontier, progress=progress, extra=curve
        )
    click.echo(report["switch"]["verdict"])
    click.echo(json.dumps({k: str(v) for k, v in files.items()}, indent=2))


@main.command()
@home_option
@click.option("--name", help="Registry name of the result (default: distilled-DATE-TIME).")
@click.option(
    "--base", type=click.Path(dir_okay=False, path_type=Path), help="Base GGUF (default: the shipped model)."
)
@click.option(
    "--data", help="Train on this pooled dataset (folder, fsspec URL or export file) instead of the store."
)
@click.option("--recipe", default="default", show_default=True, help="Training recipe (models/recipes/).")
@click.option("--steps", type=int, default=40, show_default=True, help="Fine-tuning steps.")
@click.option(
    "--batch-size", type=int, default=8, show_default=True, help="Rows per step, over all processes."
)
@click.option("--seq-len", type=int, default=256, show_default=True, help="Tokens per row.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=int, default=2, show_default=True, help="Torch threads per process.")
@click.option(
    "--preference-steps",
    type=int,
    default=0,
    show_default=True,
    help="DPO steps on suggestions typed over (0: none).",
)
@click.option(
    "--quantize",
    "quantize_to",
    # None: the pipeline's type (Q8_0), the one a short fine-tune of the shipped model
    # passes the parity check in (its Q4_K_M does not, and the run would end in an error).
    # An empty value means the same, rather than failing only after the fine-tune.
    callback=lambda _ctx, _param, value: value or None,
    help="GGUF type of the result (default: Q8_0).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@friendly
def distill(
    home: Path | None, name: str | None, base: Path | None, data: str | None, as_json: bool, **given: Any
) -> None:
    """Fine-tune the base model on your gold; register the GGUF for `goldiff models use`.

    Runs unchanged under `accelerate launch --num_processes N -m goldiff distill --data ...`
    (or `torchrun`): --batch-size is shared out, so the result does not depend on N.
    """
    from goldiff.distill.pipeline import FinetuneOptions, distill_from_dataset, distill_from_store, processes

    # The other options are FinetuneOptions' fields; --quantize left out keeps its default.
    options = FinetuneOptions(**{k: v for k, v in given.items() if v is not None})
    main_process = processes()[0] == 0
    say = (lambda _msg: None) if as_json or not main_process else click.echo
    root = resolve_home(home)
    if data:
        result = distill_from_dataset(root, data, name=name, base=base, options=options, say=say)
    else:
        result = distill_from_store(root, name=name, base=base, options=options, say=say)
    if as_json and main_process:
        click.echo(json.dumps(result, default=str))


@main.command()
@home_option
@click.option("--recipe", default="default", show_default=True, help="A recipe in models/recipes/.")
@click.option("--dest", type=click.Path(file_okay=False, path_type=Path), help="Where to write the GGUF.")
@click.option("--quantize", "quantize_to", default="Q6_K", show_default=True)
@click.option(
    "--time-budget", "time_budget_s", type=click.FloatRange(min=1), help="Fit training to this many seconds."
)
@click.option("--max-steps", type=click.IntRange(min=1), help="Training steps (at most).")
@click.option("--batch-size", type=click.IntRange(min=1), help="Windows per step and device.")
@friendly
def bootstrap(home: Path | None, recipe: str, dest: Path | None, quantize_to: str, **given: Any) -> None:
    """Rebuild the default model from scratch: corpus, tokenizer, training, GGUF (resumable)."""
    from goldiff.distill.bootstrap import bootstrap as run

    # The training options override the recipe's TrainConfig only where they are given.
    overrides = {k: v for k, v in given.items() if v is not None}
    result = run(resolve_home(home), recipe, dest=dest, quantize_to=quantize_to, log=click.echo, **overrides)
    click.echo(f"wrote {result.gguf_path}")


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
@click.option(
    "--paste-over",
    type=click.IntRange(min=1),
    metavar="CHARS",
    help="Type at most this much of each hunk and paste the rest (long new files).",
)
@click.option("--mode", type=click.Choice(["local", "frontier", "shadow"]), help="Completion source mode.")
@click.option("--model", help="Local model (registry name or GGUF path) that makes the suggestions.")
@click.option("--restart", is_flag=True, help="Replay commits again even if this home already holds them.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@friendly
def replay(
    home: Path | None,
    repo: Path,
    mode: str | None,
    model: str | None,
    restart: bool,
    as_json: bool,
    **given: Any,
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
    # The other options are ReplayOptions' fields.
    options = ReplayOptions(settings=settings, resume=not restart, **given)
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


@main.command()
@click.option(
    "--repo",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A git repository. Default: Goldiff's own.",
)
@click.option(
    "--commits", type=click.IntRange(min=2), help="Recent commits to use (default 8; 4 with --tiny)."
)
@click.option(
    "--held-out", type=click.IntRange(min=1), help="The last commits, kept for evaluation (default 2)."
)
@click.option("--steps", type=click.IntRange(min=1), help="Fine-tuning steps on the gold (default 40).")
@click.option(
    "--base-model", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="GGUF to start from."
)
@click.option(
    "--recipe", help="Fine-tuning recipe (models/recipes/): `lora` for adapters on a larger --base-model."
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the simulated developer.")
@click.option(
    "--preference-steps",
    type=click.IntRange(min=0),
    help="DPO steps after SFT (default 0: none; pairs need --suggest-with-base).",
)
@click.option(
    "--suggest-with-base",
    is_flag=True,
    help="The base model makes the replay's suggestions (gold only where it suggested something).",
)
@click.option(
    "--tiny", is_flag=True, help="Test size: a tiny base model trained here, a few commits and steps."
)
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the demo's data here (default: a temporary folder, deleted after).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("goldiff-demo"),
    show_default=True,
    help="Where the report goes.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@friendly
def demo(tiny: bool, home: Path | None, out: Path, as_json: bool, **given: Any) -> None:
    """Replay a real history, distill the base model on its gold, evaluate on later commits."""
    from rich.console import Console

    from goldiff.demo import DemoConfig, run_demo, summary_lines
    from goldiff.replay.progress import RichProgress

    # The other options are DemoConfig's fields; one left out keeps the config's default.
    changes = {k: v for k, v in given.items() if v is not None}
    config = DemoConfig.for_tests(**changes) if tiny else DemoConfig(**changes)
    console = Console(stderr=True)
    with RichProgress(console=console) as progress:
        result = run_demo(
            config, home, out, say=lambda text: console.print(text, highlight=False), progress=progress
        )
    if as_json:
        click.echo(json.dumps(asdict(result), indent=2, sort_keys=True, default=str))
    else:
        for line in summary_lines(result):
            click.echo(line)
