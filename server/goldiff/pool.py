"""Pooled traces: many developers' exports as one hive-partitioned Parquet dataset.

A team pools what its developers keep by writing every developer's export into one
dataset, laid out as Hive does (`workspace=…/date=…/part-….parquet`), in a folder on a
shared drive or at any fsspec URL (`s3://`, `gs://`, `memory://`, `file://`, ...). HF
`datasets`, DuckDB, Polars and Spark all read that layout unchanged. Each file holds whole
rows: the export's columns plus `date` (the row's UTC day, a date), `store` (the developer's store
id, or its hash with `hash_provenance`) and `exported_at`. The partition values in the
folder names are the same values the files hold, percent-encoded, so a reader that takes
a column from the path and one that takes it from the file agree.

`pool` merges many such datasets (or plain export files) into one and drops duplicates by
the stable row id: the same suggestion exported twice (two overlapping exports of one
store, or one dataset pooled twice) keeps the copy exported last, which has the most
settled outcome. Part file names are a hash of their rows, so pooling the same inputs
again writes the same files, and a pool into an existing dataset replaces its parts.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from goldiff.errors import ExportError
from goldiff.export.files import build_rows, export_id, import_pyarrow

STORE_ID_FILE = "store-id"  # beside traces.db: the developer's store identity
DEFAULT_PARTITION = "__HIVE_DEFAULT_PARTITION__"  # Hive's (and Spark's) name for a null value

# Column types fixed here rather than inferred: a column that is null in one developer's
# export (no test runs yet) must have the same type as in another's, or a reader that
# checks every file's schema (HF datasets does) refuses the dataset.
_STRING = (
    "id workspace path language source model outcome context_hash prompt completion"
    " prefix suffix suggestion chosen rejected before after gold_diff kind reason store".split()
)
_FLOAT = ("ts", "latency_ms", "exported_at")
_BOOL = ("tests_passed", "label", "shadow", "exact")
_INT = (
    "prefix_chars suffix_chars suggestion_chars gold_chars accepted_length"
    " before_chars after_chars lines_added lines_removed".split()
)


def _pyarrow() -> tuple[Any, Any]:
    return import_pyarrow(
        "pooled datasets need pyarrow and fsspec: pip install 'goldiff[parquet]' (or goldiff[train])"
    )


# ---------------------------------------------------------------------------- places


def filesystem(target: str | Path) -> tuple[Any, str]:
    """(fsspec filesystem, path inside it) for a folder path or any fsspec URL."""
    try:
        from fsspec.core import url_to_fs
    except ImportError as exc:
        raise ExportError("pooled datasets need fsspec: pip install 'goldiff[parquet]'") from exc
    text = str(target)
    if "://" not in text:
        text = str(Path(text).expanduser().resolve())
    try:
        fs, root = url_to_fs(text)
    except (ImportError, ValueError) as exc:
        raise ExportError(f"cannot open {target}: {exc} (install the fsspec backend for it)") from exc
    return fs, str(root).rstrip("/")


def store_id(store_path: Path) -> str:
    """The developer's store id: a random id kept beside the store, made on first use."""
    path = store_path.with_name(STORE_ID_FILE)
    value = path.read_text(encoding="utf-8").strip() if path.exists() else ""
    if not value:
        value = uuid.uuid4().hex
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(value + "\n", encoding="utf-8")
    return value


def hashed(value: str | None) -> str | None:
    """A value a team can group by but not read back (the export's `--no-code` hashing)."""
    if value is None or value.startswith("h:"):
        return value
    return "h:" + hashlib.blake2b(value.encode("utf-8"), digest_size=8).hexdigest()


def partition_value(value: Any) -> str:
    """A partition value as a folder name: percent-encoded, as pyarrow and Spark write it."""
    if value is None or value == "":
        return DEFAULT_PARTITION
    return quote(str(value), safe="")


def row_date(ts: Any) -> datetime.date:
    """The row's UTC day."""
    return datetime.datetime.fromtimestamp(float(ts or 0.0), datetime.UTC).date()


# ---------------------------------------------------------------------------- writing


@dataclass
class DatasetResult:
    """What a dataset write did: where, how many rows and files, and duplicates dropped."""

    target: str
    rows: int
    files: list[str]
    partitions: int
    duplicates: int = 0
    sources: int = 0
    export_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.target,
            "rows": self.rows,
            "files": len(self.files),
            "partitions": self.partitions,
            "duplicatesDropped": self.duplicates,
            "sources": self.sources,
            "exportId": self.export_id,
            **self.extra,
        }


def schema_for(rows: Sequence[dict[str, Any]]) -> Any:
    """One Arrow schema for all rows: known columns fixed, the rest inferred, in row order."""
    pa, _ = _pyarrow()
    kinds = ((_STRING, pa.string()), (_FLOAT, pa.float64()), (_BOOL, pa.bool_()), (_INT, pa.int64()))
    types = {name: kind for names, kind in kinds for name in names}
    # A date, not text: DuckDB and Spark type the `date=` folder as a date, and the file agrees.
    types["date"] = pa.date32()
    types["survival"] = pa.list_(pa.struct([("after_seconds", pa.float64()), ("share", pa.float64())]))
    names = dict.fromkeys(key for row in rows for key in row)  # in order of first appearance
    unknown = [n for n in names if n not in types]
    if unknown:
        inferred = pa.Table.from_pylist([{k: r.get(k) for k in unknown} for r in rows]).schema
        types.update(zip(unknown, inferred.types, strict=True))
    # A column nobody filled yet is a string: strings merge with anything later.
    return pa.schema([pa.field(n, pa.string() if pa.types.is_null(types[n]) else types[n]) for n in names])


def write_dataset(
    rows: Sequence[dict[str, Any]], target: str | Path, *, part: str = "part", replace: bool = False
) -> DatasetResult:
    """Write rows as `workspace=…/date=…/PART-HASH.parquet` under `target`.

    Rows must already carry `date`. A part file's name ends in a hash of its rows' ids, so
    a rewrite of the same rows lands on the same file. With `replace`, parts already under
    `target` that this write did not produce are removed afterwards (a pool rewriting its
    output); otherwise they stay (many developers exporting into one folder).
    """
    pa, pq = _pyarrow()
    fs, root = filesystem(target)
    before = set(_part_files(fs, root)) if replace else set()
    schema = schema_for(rows)
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        key = (partition_value(row.get("workspace")), partition_value(row.get("date")))
        groups.setdefault(key, []).append(row)
    written: list[str] = []
    try:
        for (workspace, date), chunk in sorted(groups.items()):
            folder = f"{root}/workspace={workspace}/date={date}"
            digest = export_id(chunk)
            path = f"{folder}/{part}-{digest}.parquet"
            fs.makedirs(folder, exist_ok=True)
            # Readers glob `*.parquet`: the temporary name keeps a half-written file out of sight.
            tmp = f"{path}.tmp"
            with fs.open(tmp, "wb") as fh:
                pq.write_table(pa.Table.from_pylist(chunk, schema=schema), fh)
            fs.mv(tmp, path)
            written.append(path)
        for stale in sorted(before - set(written)):
            fs.rm(stale)
    except OSError as exc:
        raise ExportError(f"cannot write the dataset to {target}: {exc.strerror or exc}") from exc
    return DatasetResult(target=str(target), rows=len(rows), files=written, partitions=len(groups))


def _part_files(fs: Any, root: str) -> list[str]:
    if not fs.exists(root):
        return []
    return sorted(str(p) for p in fs.glob(f"{root}/**/*.parquet"))


def export_dataset(
    db: Any,
    options: Any,
    target: str | Path,
    *,
    store: str,
    hash_provenance: bool = False,
    progress: Any = None,
) -> DatasetResult:
    """`goldiff export --format parquet --partitioned`: this store's rows into a dataset."""
    if options.split:
        raise ExportError(
            "a pooled dataset is not split: export it whole, and split or hold out when training "
            "(`goldiff distill --data` holds out rows itself)"
        )
    rows, duplicates = build_rows(db, options, progress)
    # The dataset's own columns: `date`, `store`, `exported_at`.
    owner = hashed(store) if hash_provenance else store
    now = time.time()
    rows = [{**r, "date": row_date(r.get("ts")), "store": owner, "exported_at": now} for r in rows]
    # One developer's parts are named after their store, so developers writing into one
    # shared folder never overwrite each other's files.
    name = (owner or "")[2:] if hash_provenance else store
    result = write_dataset(rows, target, part=f"part-{name[:12]}")
    result.duplicates = duplicates
    result.export_id = export_id(rows)
    result.extra = {"format": "parquet", "rows_shape": options.shape, "noCode": options.no_code}
    return result


# ---------------------------------------------------------------------------- reading


def read_rows(source: str | Path) -> list[dict[str, Any]]:
    """Every row of a dataset (folder or URL), or of one export file (Parquet or JSONL)."""
    _, pq = _pyarrow()
    fs, root = filesystem(source)
    if not fs.exists(root):
        raise ExportError(f"no dataset or export at {source}")
    if fs.isdir(root):
        files = _part_files(fs, root)
        if not files:
            raise ExportError(
                f"{source} holds no .parquet files; write one with `goldiff export --format parquet`"
            )
    else:
        files = [root]
    rows: list[dict[str, Any]] = []
    for path in files:
        if path.endswith(".jsonl"):
            with fs.open(path, "rt", encoding="utf-8") as fh:
                rows.extend(json.loads(line) for line in fh if line.strip())
        else:
            with fs.open(path, "rb") as fh:
                rows.extend(pq.read_table(fh).to_pylist())
    return rows


def pool(
    sources: Sequence[str | Path], target: str | Path, *, hash_provenance: bool = False
) -> DatasetResult:
    """Merge datasets and export files into one dataset at `target`, without duplicates.

    Rows from plain export files (no `store` column) get the file's name as their store,
    so their provenance is still known. `target`'s own rows, if any, are pooled too.
    """
    if not sources:
        raise ExportError("name at least one dataset or export to pool")
    fs, root = filesystem(target)
    inputs = [*sources]
    if _part_files(fs, root):
        inputs.append(target)
    best: dict[str, dict[str, Any]] = {}
    total = 0
    for source in inputs:
        fallback = Path(str(source).rstrip("/")).name
        for row in read_rows(source):
            total += 1
            if "id" not in row:
                raise ExportError(f"{source} has rows without an `id`: is it a goldiff export?")
            row["store"] = row.get("store") or fallback
            if hash_provenance:
                row["store"] = hashed(row["store"])
            row.setdefault("date", row_date(row.get("ts")))
            row.setdefault("exported_at", None)
            kept = best.get(row["id"])
            # The copy exported last wins: its outcome and survival are the newest.
            if kept is None or (row["exported_at"] or 0.0) > (kept["exported_at"] or 0.0):
                best[row["id"]] = row
    rows = sorted(best.values(), key=lambda r: (float(r.get("ts") or 0.0), r["id"]))
    result = write_dataset(rows, target, part="part", replace=True)
    result.duplicates = total - len(rows)
    result.sources = len(sources)
    result.export_id = export_id(rows)
    result.extra = {"stores": len({r["store"] for r in rows})}
    return result
