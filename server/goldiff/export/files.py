"""An export run: records read through filters, shaped into rows, split, written to files.

A split is by time, so that no context of the test rows ever appears in training. Row
ids are a hash of the suggestion or episode id and the format, and rows are written in
time order, so re-exporting the same store gives the same bytes and a later export diffs
cleanly. A file is written beside its final name and moved into place, so a reader never
sees half an export.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

from goldiff.errors import ExportError
from goldiff.export.filters import ExportFilters
from goldiff.export.formats import Redactor, RowShaper, openai_row
from goldiff.protocol import EXPORT_FORMATS as FORMATS
from goldiff.protocol import ROW_FORMATS
from goldiff.records import count_episodes, count_suggestions, iter_episodes, iter_suggestions

PROGRESS_EVERY = 1000
Progress = Callable[[int, int], None]


@dataclass
class ExportOptions:
    format: str = "sft"
    rows: str | None = None  # row shape for openai / parquet (default sft)
    filters: ExportFilters = field(default_factory=ExportFilters)
    split: bool = False
    test_fraction: float = 0.1
    split_at: float | None = None
    # Commit times the --test-fraction cut moves to when one is near (`at_commit`).
    commits: tuple[float, ...] = ()
    no_code: bool = False

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ExportError(f"unknown export format {self.format!r}; use one of: {', '.join(FORMATS)}")
        if self.rows is not None and self.rows not in ROW_FORMATS:
            raise ExportError(f"unknown row shape {self.rows!r}; use one of: {', '.join(ROW_FORMATS)}")
        if self.rows is not None and self.format not in ("openai", "parquet"):
            raise ExportError("--rows applies to the openai and parquet formats only")
        if self.format == "openai" and self.rows not in (None, "sft", "edits"):
            raise ExportError("the openai format carries sft or edits rows; use --rows sft or --rows edits")
        if self.format == "openai" and self.no_code:
            raise ExportError("a metrics-only export has no messages; use --format sft --no-code")

    @property
    def shape(self) -> str:
        """The row shape the records are turned into first."""
        if self.format in ("openai", "parquet"):
            return self.rows or "sft"
        return self.format

    @property
    def extension(self) -> str:
        return ".parquet" if self.format == "parquet" else ".jsonl"


@dataclass
class ExportResult:
    options: ExportOptions
    paths: dict[str, Path]
    counts: dict[str, int]
    duplicates: int
    leaked: int
    cutoff: float | None
    export_id: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": self.options.format,
            "rows": self.options.shape,
            "paths": {k: str(v) for k, v in self.paths.items()},
            "counts": self.counts,
            "duplicatesDropped": self.duplicates,
            "leakedDropped": self.leaked,
            "splitAt": self.cutoff,
            "exportId": self.export_id,
            "filters": self.options.filters.as_dict(),
            "noCode": self.options.no_code,
        }


def build_rows(
    db: sqlite_utils.Database, options: ExportOptions, progress: Progress | None = None
) -> tuple[list[dict[str, Any]], int]:
    """Rows of `options.shape` for the records that pass the filters; and duplicates dropped."""
    # A metrics-only export writes no text, so it needs no second redaction pass.
    redact: Callable[[str | None], str] = (lambda text: text or "") if options.no_code else Redactor()
    shaper = RowShaper(options.shape, no_code=options.no_code, db=db, redact=redact)
    rows: list[dict[str, Any]] = []
    if options.shape == "edits":
        total = count_episodes(db, options.filters)
        shaped = map(shaper.episode_rows, iter_episodes(db, options.filters))
    else:
        total = count_suggestions(db, options.filters)
        shaped = map(shaper.suggestion_rows, iter_suggestions(db, options.filters))
    if progress:
        progress(0, total)
    for done, record_rows in enumerate(shaped, 1):
        rows.extend(record_rows)
        if progress and done % PROGRESS_EVERY == 0:
            progress(done, total)
    if progress:
        progress(total, total)
    if options.format == "openai":
        rows = [openai_row(r, options.shape) for r in rows]
    return rows, shaper.duplicates


@dataclass
class Split:
    train: list[dict[str, Any]]
    test: list[dict[str, Any]]
    leaked: int  # training rows dropped because their context is in the test split
    cutoff: float | None


def at_commit(times: Sequence[float], cut: float, share: float, commits: Sequence[float]) -> float:
    """`cut` (where the newest `share` of the rows at `times`, sorted, begin), moved to the
    commit boundary nearest it, as long as the rows after it stay between half and twice
    `share`; `cut` itself when no commit is that near.

    The rows of one commit repeat its change (a name threaded through, one edit made in
    several places), so a model trained on a commit's first half scores well on its second
    half: held apart inside a commit, rows reward that, not what the next commits need
    (measured on boltons: +0.7 points on validation rows cut inside a commit, −7 points of
    accept proxy on the held-out commits).
    """

    def after(t: float) -> float:  # the share of the rows at or after t
        return (len(times) - bisect.bisect_left(times, t)) / len(times)

    bounds = [c + 1e-6 for c in commits if share / 2 <= after(c + 1e-6) <= 2 * share]
    return min(bounds, key=lambda t: abs(after(t) - share), default=cut)


def split_rows(
    rows: Sequence[dict[str, Any]],
    *,
    test_fraction: float = 0.1,
    split_at: float | None = None,
    commits: Sequence[float] = (),
) -> Split:
    """Split by time: the newest rows are the test set; their contexts never train.

    Without `split_at`, the cutoff is the time of the row at `1 - test_fraction` of the
    way through, or of the commit nearest it (`at_commit`). Every row at or after the
    cutoff is a test row; a training row is dropped (not moved) when its `context_hash`
    is also a test row's, so a model is never evaluated on a context it saw in training.
    """
    if split_at is None:
        if not 0.0 < test_fraction < 1.0:
            raise ExportError("the test fraction is a share between 0 and 1, e.g. 0.1")
        if len(rows) < 2:
            raise ExportError(
                f"a train/test split needs at least 2 rows; this export has {len(rows)}. "
                "Record more suggestions, widen the filters, or export without --split."
            )
        times = sorted(r["ts"] for r in rows)
        index = min(max(1, math.floor(len(times) * (1.0 - test_fraction))), len(times) - 1)
        split_at = at_commit(times, times[index], test_fraction, commits)
    test = [r for r in rows if r["ts"] >= split_at]
    held = {r["context_hash"] for r in test}
    train = [r for r in rows if r["ts"] < split_at and r["context_hash"] not in held]
    leaked = sum(1 for r in rows if r["ts"] < split_at) - len(train)
    return Split(train=train, test=test, leaked=leaked, cutoff=split_at)


def export(
    db: sqlite_utils.Database, options: ExportOptions, out: Path, progress: Progress | None = None
) -> ExportResult:
    """Write the export. Without a split `out` is a file; with one, a folder.

    A split writes `train` and `test` files and a `manifest.json` into the folder `out`.
    """
    rows, duplicates = build_rows(db, options, progress)
    leaked = 0
    cutoff: float | None = None
    # One schema for train and test alike, inferred from all rows (nulls need a type).
    schema = None
    if options.format == "parquet":
        pa, _ = import_pyarrow()
        schema = pa.Table.from_pylist(rows).schema if rows else pa.schema([("id", pa.string())])
    chunks = {"all": rows}
    if options.split:
        parts = split_rows(
            rows, test_fraction=options.test_fraction, split_at=options.split_at, commits=options.commits
        )
        leaked, cutoff = parts.leaked, parts.cutoff
        chunks = {"train": parts.train, "test": parts.test}
        paths = {name: out / f"{name}{options.extension}" for name in chunks}
    else:
        out = out if out.suffix else out.with_suffix(options.extension)
        paths = {"all": out}
    try:
        for name, chunk in chunks.items():
            paths[name].parent.mkdir(parents=True, exist_ok=True)
            _write(paths[name], chunk, options.format, schema)
        if options.format == "openai":
            paths.update({f"{name}_meta": meta_path(p) for name, p in list(paths.items())})
    except OSError as exc:
        raise ExportError(f"cannot write the export to {out}: {exc.strerror or exc}") from exc
    counts = {name: len(chunk) for name, chunk in chunks.items()}
    result = ExportResult(options, paths, counts, duplicates, leaked, cutoff, export_id(rows))
    if options.split:
        manifest = {**result.as_dict(), "createdAt": time.time()}
        manifest["paths"] = {k: v.name for k, v in paths.items()}
        (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return result


def export_id(rows: Iterable[dict[str, Any]]) -> str:
    """The identity of a set of rows: the same rows in the same order, the same id."""
    return hashlib.blake2b("\n".join(r["id"] for r in rows).encode(), digest_size=8).hexdigest()


def meta_path(path: Path) -> Path:
    """Where an openai export keeps each line's id and provenance: `NAME.meta.jsonl`."""
    return path.with_name(path.name.removesuffix(".jsonl") + ".meta.jsonl")


def _write(path: Path, rows: list[dict[str, Any]], fmt: str, schema: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    if fmt == "openai":
        # OpenAI's fine-tuning upload refuses any key beside `messages`, so the id and
        # provenance go to a sidecar file, line for line.
        provenance = [{k: v for k, v in r.items() if k != "messages"} for r in rows]
        _write(meta_path(path), provenance, "jsonl", None)
        rows = [{"messages": r["messages"]} for r in rows]
    if fmt == "parquet":
        pa, pq = import_pyarrow()
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), str(tmp))
    else:
        with tmp.open("w", encoding="utf-8", newline="\n") as fh:
            fh.writelines(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n" for row in rows)
    tmp.replace(path)  # a reader never sees half an export


def import_pyarrow(
    missing: str = "the parquet format needs pyarrow: pip install 'goldiff[parquet]' (or goldiff[train])",
) -> tuple[Any, Any]:
    """`(pyarrow, pyarrow.parquet)`, or an `ExportError` saying `missing` when not installed."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise ExportError(missing) from exc
    return pa, pq


def default_out(exports: Path, options: ExportOptions) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    name = f"{options.format}-{stamp}"
    return exports / name if options.split else exports / f"{name}{options.extension}"


def load_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of an export file (JSONL or Parquet), or of a split folder's test file."""
    if path.is_dir():
        for name in ("test.jsonl", "test.parquet"):
            if (path / name).exists():
                return load_rows(path / name)
        raise ExportError(f"{path} holds no test.jsonl or test.parquet; export with --split first")
    if not path.exists():
        raise ExportError(f"no export at {path}")
    if path.suffix == ".parquet":
        _, pq = import_pyarrow()
        return list(pq.read_table(str(path)).to_pylist())
    rows = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except ValueError as exc:
                    raise ExportError(f"{path}:{n} is not a JSON line ({exc}); is it an export?") from exc
    return rows
