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
from goldiff.export.files import (
    ExportOptions,
    ExportResult,
    build_rows,
    default_out,
    export,
    load_rows,
    split_rows,
)
from goldiff.export.filters import ExportFilters, parse_time
from goldiff.export.formats import FORMATS, ROW_FORMATS, openai_row

__all__ = [
    "FORMATS",
    "ROW_FORMATS",
    "ExportFilters",
    "ExportOptions",
    "ExportResult",
    "build_rows",
    "default_out",
    "export",
    "load_rows",
    "openai_row",
    "options_from_wire",
    "parse_time",
    "split_rows",
    "with_explanation",
]
