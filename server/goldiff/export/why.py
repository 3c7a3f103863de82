"""Why an export has no rows, in words a user can act on.

An empty export is the usual first experience (nothing accepted yet, or accepted
suggestions whose files have not settled), and a bare "0 rows" says nothing. This looks
at the store with the export's filters, then without each of them, and names the first
reason that holds: nothing recorded, filters too narrow (and which one), no settled gold
yet, or only pairs the chosen format cannot use.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import sqlite_utils

from goldiff.export.files import ExportOptions
from goldiff.export.filters import ExportFilters
from goldiff.records import SETTLED, count_suggestions


def _describe(name: str, value: Any) -> str:
    if name in ("since", "until"):
        value = datetime.fromtimestamp(float(value), UTC).strftime("%Y-%m-%d %H:%M UTC")
    elif isinstance(value, tuple):
        value = ", ".join(value)
    return f"{name} {value}"


def explain_empty(db: sqlite_utils.Database, options: ExportOptions) -> str:
    """One or two sentences on why `options` exported nothing, and what to do about it."""
    everything = count_suggestions(db, ExportFilters())
    if everything == 0:
        return (
            "Goldiff has recorded no suggestions yet. Turn recording on for a workspace "
            '("Goldiff: Enable Capture for This Workspace"), accept a few completions with Tab, '
            "save the file, and export again once it has been left alone for a few seconds."
        )
    filters = options.filters
    matching = count_suggestions(db, filters)
    if matching == 0:
        set_filters = {k: v for k, v in vars(filters).items() if v is not None}
        blocking = [
            _describe(k, v)
            for k, v in set_filters.items()
            if count_suggestions(db, ExportFilters(**{k: v})) == 0
        ]
        named = "; ".join(_describe(k, v) for k, v in set_filters.items())
        culprit = f" Nothing at all matches {' and '.join(blocking)}." if blocking else ""
        return (
            f"None of the {everything} recorded suggestions match the filters ({named}).{culprit} "
            "Widen the filters (an earlier since, another workspace) or leave them empty."
        )
    kept = replace(filters, outcome=tuple(o for o in SETTLED if o in (filters.outcome or SETTLED)))
    settled = count_suggestions(db, kept, with_gold=True) if kept.outcome else 0
    if settled == 0:
        return (
            f"{matching} suggestions match, but none has settled gold yet: a suggestion becomes a "
            "training row once it was accepted (or rejected) and its file was saved and then left "
            "unchanged for goldiff.settleSeconds. Keep working and export again later."
        )
    hint = {
        "preference": "preference rows need kept text that differs from the suggestion (edited or rejected)",
        "kto": "kto rows need suggestions with an outcome and a text",
        "edits": "edits rows come from edit episodes (Edit with Model, coding agents), not from completions",
    }.get(options.shape, "rows already exported under the same context are dropped as duplicates")
    return (
        f"{settled} settled suggestions match, but none makes a {options.shape} row: {hint}. "
        "Try the sft format, or wait for more edits."
    )
