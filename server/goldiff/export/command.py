"""An export asked for by the editor or the command line: its options from the wire, and
an answer that says why it holds no rows (`goldiff.features.export` runs it for the editor)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import sqlite_utils

from goldiff.errors import ExportError
from goldiff.export.files import ExportOptions, ExportResult
from goldiff.export.filters import ExportFilters, parse_time

# Keys of `goldiff.exportTraces`' `filters` object that are export options, not filters.
_OPTION_KEYS = {"split", "testFraction", "splitAt", "noCode", "rows"}


def options_from_wire(fmt: str, raw: Mapping[str, Any] | None) -> ExportOptions:
    """`ExportOptions` from the `goldiff.exportTraces` arguments (camelCase filters)."""
    raw = dict(raw or {})
    opts = {k: raw.pop(k) for k in list(raw) if k in _OPTION_KEYS}
    split_at = parse_time(opts["splitAt"], "splitAt") if opts.get("splitAt") is not None else None
    try:
        fraction = float(opts.get("testFraction", 0.1))
    except (TypeError, ValueError) as exc:
        raise ExportError("testFraction is a share between 0 and 1, e.g. 0.1") from exc
    return ExportOptions(
        format=fmt,
        rows=opts.get("rows"),
        filters=ExportFilters.from_mapping(raw),
        split=bool(opts.get("split")) or split_at is not None,
        test_fraction=fraction,
        split_at=split_at,
        no_code=bool(opts.get("noCode")),
    )


def with_explanation(
    db: sqlite_utils.Database, options: ExportOptions, result: ExportResult
) -> dict[str, Any]:
    """The export's answer; with `why` (what to do) when it wrote no rows. Closes `db`."""
    answer = result.as_dict()
    with contextlib.closing(db):
        if not any(result.counts.values()):
            from goldiff.export.why import explain_empty

            answer["why"] = explain_empty(db, options)
    return answer
