"""The server's own copy of every open document, and the edits it turns LSP changes into.

LSP positions count UTF-16 code units; Python strings count code points. Each change is
converted once here, applied to our copy, and handed on as an `EditRecord` with both the
LSP range and the code-point offset, so the store can replay it without knowing about
UTF-16. A change that does not fit our copy (a position past the end of a line or of the
document, a version that skips) is never trusted: the document is marked out of sync and
the caller resynchronises it from the next full text or from disk, recording the gap.
"""

from __future__ import annotations

import bisect
import re
import time
import uuid
from dataclasses import dataclass, field

from goldiff.store import EditRecord


class OutOfSync(Exception):
    """A change did not fit the document as we know it."""


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _line_starts(text: str) -> list[int]:
    return [0, *(m.end() for m in re.finditer("\n", text))]


@dataclass
class Document:
    id: str
    uri: str
    language: str
    version: int | None
    text: str
    workspace: str | None = None
    path: str | None = None
    captured: bool = True  # False: excluded or skipped; nothing of its text is recorded
    _starts: list[int] | None = field(default=None, repr=False)

    @classmethod
    def new(cls, uri: str, language: str, version: int | None, text: str) -> Document:
        return cls(id=uuid.uuid4().hex[:16], uri=uri, language=language, version=version, text=text)

    def offset_at(self, line: int, character: int) -> int:
        """Code-point offset of an LSP position; raises OutOfSync when it is not in the text."""
        if self._starts is None:
            self._starts = _line_starts(self.text)
        starts = self._starts
        if line < 0 or character < 0:
            raise OutOfSync(f"negative position {line}:{character}")
        if line >= len(starts):
            # The position just past the last line is valid only at character 0.
            if line == len(starts) and character == 0 and self.text.endswith("\n"):
                return len(self.text)
            raise OutOfSync(f"line {line} is past the end ({len(starts)} lines)")
        start = starts[line]
        end = starts[line + 1] - 1 if line + 1 < len(starts) else len(self.text)
        segment = self.text[start:end]
        if segment.isascii():
            if character > len(segment):
                raise OutOfSync(f"character {character} is past the end of line {line}")
            return start + character
        units = 0
        for i, ch in enumerate(segment):
            if units >= character:
                if units > character:
                    raise OutOfSync(f"character {character} splits a surrogate pair")
                return start + i
            units += 2 if ord(ch) > 0xFFFF else 1
        if units == character:
            return start + len(segment)
        raise OutOfSync(f"character {character} is past the end of line {line}")

    def position_at(self, offset: int) -> tuple[int, int]:
        """LSP position (UTF-16) of a code-point offset."""
        if self._starts is None:
            self._starts = _line_starts(self.text)
        line = bisect.bisect_right(self._starts, offset) - 1
        return line, utf16_len(self.text[self._starts[line] : offset])

    def apply(
        self,
        start: tuple[int, int],
        end: tuple[int, int],
        new_text: str,
        version: int | None,
        *,
        now: float | None = None,
    ) -> EditRecord:
        """Apply an incremental change; return the edit to record."""
        a = self.offset_at(*start)
        b = self.offset_at(*end)
        if b < a:
            raise OutOfSync(f"range end {end} is before its start {start}")
        self.text = self.text[:a] + new_text + self.text[b:]
        self._shift_line_starts(a, b, new_text)
        self.version = version
        return EditRecord(
            document_id=self.id,
            kind="change",
            version=version,
            ts=now if now is not None else time.time(),
            mono=time.monotonic(),
            offset=a,
            removed=b - a,
            inserted=new_text,
            range=(start[0], start[1], end[0], end[1]),
        )

    def _shift_line_starts(self, a: int, b: int, new_text: str) -> None:
        """Update the line index for [a, b) replaced by `new_text`, instead of rescanning.

        This runs on every keystroke: lines before the edit keep their starts, lines
        after it move by the length change, and the edit's own newlines add starts.
        """
        starts = self._starts
        if starts is None:
            return
        lo = bisect.bisect_right(starts, a)  # first start after a: may be removed or moved
        hi = bisect.bisect_right(starts, b)  # starts in (a, b] were inside the replaced text
        delta = len(new_text) - (b - a)
        added = [a + start for start in _line_starts(new_text)[1:]]
        tail = [x + delta for x in starts[hi:]] if delta else starts[hi:]
        starts[lo:] = added + tail

    def replace_all(self, text: str, version: int | None, kind: str, *, now: float) -> EditRecord:
        """Take a full new text (open, full change, external change, resync) at time `now`."""
        self.text = text
        self._starts = None
        self.version = version
        return EditRecord(
            document_id=self.id,
            kind=kind,
            version=version,
            ts=now,
            mono=time.monotonic(),
            inserted=text,
        )
