"""Gold diffs: a unified diff of a file region, from before the model's first suggestion
to the settled state, with real line numbers so it applies to the file.

Every diff is parsed back with `unidiff` before it is stored; one that does not parse is
a bug in Goldiff, reported as `None` plus a log line rather than a broken training row.
"""

from __future__ import annotations

import difflib
import logging
import re

from unidiff.errors import UnidiffParseError
from unidiff.patch import PatchSet

log = logging.getLogger(__name__)

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


def unified_diff(before: str, after: str, path: str, old_line: int = 0, new_line: int = 0) -> str:
    """A unified diff of `before` → `after`, whose first lines are `old_line`/`new_line` (0-based)
    in their files. Lines without a final newline get git's `\\ No newline at end of file`.
    """
    if before == after:
        return ""
    out: list[str] = []
    for line in difflib.unified_diff(
        before.splitlines(keepends=True),
        after.splitlines(keepends=True),
        fromfile=f"a/{path}",
        tofile=f"b/{path}",
        n=3,
    ):
        match = _HUNK.match(line)
        if match:
            old_start, old_len, new_start, new_len = match.groups()
            line = f"@@ -{_shift(old_start, old_len, old_line)} +{_shift(new_start, new_len, new_line)} @@\n"
        elif line.startswith(("---", "+++")):
            line = line.rstrip() + "\n"  # difflib leaves a tab and nothing after the file names
        if not line.endswith("\n"):
            line += "\n\\ No newline at end of file\n"
        out.append(line)
    return "".join(out)


def _shift(start: str, length: str | None, offset: int) -> str:
    # Relative line numbers shift by the region's first line, empty ranges included
    # ("-0,0" means "after line 0" and becomes "after line `offset`").
    first = int(start) + offset
    return f"{first},{length}" if length is not None else f"{first}"


def validate(diff: str) -> bool:
    """Whether `diff` parses as a unified diff with at least one hunk."""
    try:
        patch = PatchSet(diff)
    except UnidiffParseError as exc:
        log.error("gold diff does not parse: %s", exc)
        return False
    return len(patch) == 1 and len(patch[0]) > 0
