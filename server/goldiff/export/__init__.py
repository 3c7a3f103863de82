"""Turn recorded suggestions and episodes into training rows: sft, preference, kto, edits.

The store holds, for every suggestion, the context it was made in, the model's text, its
outcome and, once settled, the gold; for every episode the region before the first
suggestion, the region after settle and their gold diff. An export reads them as typed
records (`goldiff.records`), keeps those that pass its filters (`filters`), shapes them
into rows of one format with the prompts the sources serve with (`formats`), splits them
by time and writes them (`files`); `command` reads the editor's options
(`goldiff.features.export` runs the editor's `goldiff.exportTraces`).
"""

from __future__ import annotations

from goldiff.export.command import options_from_wire, with_explanation
from goldiff.export.files import ExportOptions, ExportResult, at_commit, default_out, export, load_rows
from goldiff.export.filters import ExportFilters, parse_time

__all__ = [
    "ExportFilters",
    "ExportOptions",
    "ExportResult",
    "at_commit",
    "default_out",
    "export",
    "load_rows",
    "options_from_wire",
    "parse_time",
    "with_explanation",
]
