"""Mask secrets before anything reaches the trace store, the logs or an export.

Masking keeps the text's length (each secret character becomes `*`), so the offsets of
recorded edits stay valid and a document rebuilt from the store lines up with the
editor's, secrets aside. Detection uses detect-secrets' own detectors (regexes for known
credential formats, the keyword detector, entropy detectors with their usual limits)
plus a few shell patterns detect-secrets does not cover (`-pPASSWORD`, `Authorization:`
headers, `export NAME_TOKEN=...`). Full detection costs ~1 ms a line, so a cheap
pre-filter skips lines that cannot hold a secret.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

MASK = "*"

# A line can hold a secret only if it names one (password, token, key, auth, ...), carries
# credentials in a URL or a `-p` flag, or has a long token with a digit in it (every key
# format detect-secrets knows, and any high-entropy string, has one). Most code lines have
# none of these and skip the ~1 ms of full detection.
_CANDIDATE = re.compile(
    r"(?i)passw|passphrase|pwd|secret|token|api.?key|access.?key|private.?key|auth|credential"
    r"|bearer|cookie"
    r"|://[^\s/]*@|(?:^|\s)-p\S"
    r"|(?<![A-Za-z0-9+/=_\-.])(?=[A-Za-z0-9+/=_\-.]{16,})[A-Za-z+/=_\-.]*\d"
)

_SHELL_PATTERNS = [
    # mysql -pS3cret / mysql --password=S3cret
    re.compile(r"(?:^|\s)-p(?P<s>[^\s'\"]{4,})"),
    re.compile(r"--password[= ](?P<s>[^\s'\"]+)"),
    # Authorization: Bearer xyz / Basic xyz / token xyz
    re.compile(r"(?i)authorization:\s*(?:bearer|basic|token|bot)?\s*(?P<s>[^\s'\"]{6,})"),
    # NAME_TOKEN=value, export API_KEY="value", PASSWORD: value
    re.compile(
        r"(?i)\b[A-Z0-9_]*(?:TOKEN|SECRET|PASSWORD|PASSWD|PWD|API_?KEY|ACCESS_?KEY|AUTH|CREDENTIALS?)"
        r"[A-Z0-9_]*\s*[=:]\s*['\"]?(?P<s>[^\s'\"]{4,})"
    ),
    # scheme://user:password@host
    re.compile(r"[a-z][a-z0-9+.-]*://[^\s:/@]+:(?P<s>[^\s@/]{3,})@"),
    # private key blocks: the header line itself marks the start
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----(?P<s>[\s\S]*?)(?:-----END [A-Z ]*PRIVATE KEY-----|$)"),
]


@lru_cache(maxsize=1)
def _detectors() -> tuple[list[re.Pattern[str]], list[Any]]:
    """detect-secrets' regex denylists (full-match spans) and its value-based detectors."""
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class

    regexes: list[re.Pattern[str]] = []
    value_based: list[Any] = []
    cls: Any
    for cls in get_mapping_from_secret_type_to_class().values():
        name = cls.__name__
        if name in {"Base64HighEntropyString"}:
            value_based.append(cls(limit=4.5))
        elif name in {"HexHighEntropyString"}:
            value_based.append(cls(limit=3.0))
        elif name == "KeywordDetector":
            value_based.append(cls())
        elif hasattr(cls, "denylist"):
            try:
                regexes.extend(cls().denylist)
            except TypeError:
                continue
    return regexes, value_based


def secret_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of secrets in `text`, merged and sorted."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for line in text.splitlines(keepends=True):
        if _CANDIDATE.search(line):
            spans.extend((pos + a, pos + b) for a, b in _line_spans(line))
        pos += len(line)
    # Private key blocks span lines: look at the whole text once.
    if "PRIVATE KEY-----" in text:
        for m in _SHELL_PATTERNS[-1].finditer(text):
            spans.append((m.start("s"), m.end("s")))
    return _merge(spans)


def _line_spans(line: str) -> Iterable[tuple[int, int]]:
    regexes, value_based = _detectors()
    for rx in regexes:
        for m in rx.finditer(line):
            if m.end() > m.start():
                yield m.start(), m.end()
    for rx in _SHELL_PATTERNS[:-1]:
        for m in rx.finditer(line):
            yield m.start("s"), m.end("s")
    for detector in value_based:
        try:
            found = detector.analyze_line(filename="line.txt", line=line, line_number=0)
        except Exception:  # a detector's bug must not stop capture
            continue
        for secret in found:
            value = getattr(secret, "secret_value", None)
            if not value or len(value) < 4:
                continue
            start = line.find(value)
            while start != -1:
                yield start, start + len(value)
                start = line.find(value, start + 1)


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def mask_spans(text: str, spans: Iterable[tuple[int, int]]) -> str:
    chars = list(text)
    for a, b in spans:
        for i in range(max(a, 0), min(b, len(chars))):
            if chars[i] not in "\r\n":
                chars[i] = MASK
    return "".join(chars)


def redact(text: str) -> str:
    """`text` with every detected secret masked, same length."""
    if not text:
        return text
    spans = secret_spans(text)
    return mask_spans(text, spans) if spans else text
