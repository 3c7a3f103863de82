"""Which files Goldiff may record: their paths and URIs, size and encoding limits."""

from __future__ import annotations

import subprocess
from pathlib import Path
from urllib.parse import unquote, urlparse

MAX_BYTES = 1_000_000  # larger files are skipped with a recorded reason


def uri_to_path(uri: str) -> Path | None:
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        return None
    return Path(unquote(parsed.path))


def git_output(root: Path, *args: str, timeout: float) -> bytes | None:
    """What `git args` prints in `root`; None if git is missing, too slow or fails."""
    try:
        out = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def path_to_uri(path: Path) -> str:
    return path.resolve().as_uri()


def relative_to_workspace(path: Path, workspaces: list[Path]) -> tuple[Path | None, str]:
    """The workspace folder holding `path` (if any) and the path relative to it."""
    for ws in sorted(workspaces, key=lambda p: len(str(p)), reverse=True):
        if path.is_relative_to(ws):
            return ws, path.relative_to(ws).as_posix()
    return None, path.name


def skip_reason(text: str | None, size: int | None = None) -> str | None:
    """Why a text must not be recorded, or None."""
    if text is None:
        return "not UTF-8 text"
    n = size if size is not None else len(text.encode("utf-8", "surrogatepass"))
    if n > MAX_BYTES:
        return f"larger than {MAX_BYTES} bytes"
    if "\x00" in text:
        return "binary content"
    return None


def read_text(path: Path) -> tuple[str | None, str | None]:
    """A file's text, or None and the reason it is not recorded."""
    try:
        if path.stat().st_size > MAX_BYTES:
            return None, f"larger than {MAX_BYTES} bytes"
        data = path.read_bytes()
    except OSError as exc:
        return None, f"unreadable: {exc.strerror}"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None, "not UTF-8 text"
    reason = skip_reason(text, len(data))
    return (None, reason) if reason else (text, None)
