"""Getting models: a GGUF from a URL, the Hugging Face hub, or a file on this machine.

`goldiff models pull SOURCE` (and the editor's "Download…" in the model picker) fetches
one GGUF into `home/models/pulled/NAME/` and registers it through `Registry.register`, so a
pulled model is listed, chosen and resolved like any other. SOURCE is

- `hf://OWNER/REPO/FILE.gguf` (optionally `@REVISION`): the hub's `resolve` URL layout,
  `$HF_ENDPOINT/OWNER/REPO/resolve/REVISION/FILE` as `huggingface_hub` builds it, so a
  mirror (or a loopback server in the tests) is reached by setting `HF_ENDPOINT`;
- an `http(s)://` URL of a GGUF file;
- a path (or `file://` URL) of a GGUF on this machine, copied in.

A download goes to `FILE.part` first and resumes from it with an HTTP `Range` request, so
a cut connection or a cancel loses nothing. The file is checked before it is registered:
its SHA-256 against the one given (`--sha256`) or the one the server states (the hub's
`X-Linked-Etag` carries an LFS file's SHA-256), and its first bytes against GGUF's magic.
A mismatch deletes the partial file: resuming onto bad bytes would never get better.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from goldiff.errors import ConfigError, PullCancelled, PullError
from goldiff.home import models_dir
from goldiff.sources.registry import Entry, Registry

CHUNK = 1 << 20
_SHA256 = re.compile(r"^[0-9a-f]{64}$")

Progress = Callable[[int, int | None], None]  # bytes done, bytes in all (None: unknown)


@dataclass(frozen=True)
class Pulled:
    entry: Entry
    sha256: str
    bytes: int
    verified: bool  # the SHA-256 matched a stated one (else it is only recorded)
    resumed_from: int  # bytes already there from an earlier, interrupted try
    reused: bool  # the file was there and matched: nothing was fetched

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.entry.name,
            "path": self.entry.path,
            "sha256": self.sha256,
            "bytes": self.bytes,
            "verified": self.verified,
            "resumedFrom": self.resumed_from,
            "reused": self.reused,
        }


@dataclass(frozen=True)
class Source:
    kind: str  # url | file
    location: str  # the URL to GET, or the local path
    filename: str
    repo: str | None = None  # OWNER/REPO on the hub, whose model API states the licence


def _hub() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def resolve_source(source: str) -> Source:
    """Where SOURCE is and what the file will be called; `ConfigError` if it cannot be a GGUF."""
    text = source.strip()
    if text.startswith("hf://"):
        spec, _, revision = text.removeprefix("hf://").partition("@")
        parts = [p for p in spec.split("/") if p]
        if len(parts) < 3:
            raise ConfigError(f"{source!r}: use hf://OWNER/REPO/FILE.gguf (optionally @REVISION)")
        url = f"{_hub()}/{parts[0]}/{parts[1]}/resolve/{revision or 'main'}/{'/'.join(parts[2:])}"
        found = Source("url", url, parts[-1], f"{parts[0]}/{parts[1]}")
    elif text.startswith(("http://", "https://")):
        found = Source("url", text, unquote(Path(urlparse(text).path).name))
    else:
        path = Path(unquote(urlparse(text).path) if text.startswith("file://") else text).expanduser()
        if not path.is_file():
            raise ConfigError(f"{source!r} is neither a URL nor a file on this machine")
        found = Source("file", str(path.resolve()), path.name)
    if not found.filename.lower().endswith(".gguf") or "/" in found.filename:
        raise ConfigError(f"{source!r} does not name a .gguf file; Goldiff serves GGUF models")
    return found


def _stated_sha256(response: Any) -> str | None:
    """The SHA-256 an HTTP answer states for its file (the hub's X-Linked-Etag, or an ETag).

    The hub states it on its first answer, the redirect to its CDN.
    """
    for r in [*response.history, response]:
        for key in ("x-linked-etag", "etag"):
            value = str(r.headers.get(key) or "").removeprefix("W/").strip('"').lower()
            if _SHA256.match(value):
                return value
    return None


def file_sha256(path: Path) -> Any:
    """The SHA-256 of a file so far (a hash object: a resumed download goes on with it)."""
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256")


def _copy(
    blocks: Iterable[bytes],
    out: Any,
    h: Any,
    done: int,
    total: int | None,
    progress: Progress,
    stop: Callable[[], bool],
) -> int:
    for block in blocks:
        if stop():
            raise PullCancelled("the download was cancelled; run it again to resume")
        out.write(block)
        h.update(block)
        done += len(block)
        progress(done, total)
    return done


def _download(
    url: str, part: Path, progress: Progress, stop: Callable[[], bool]
) -> tuple[Any, int, int, str | None]:
    """GET `url` into `part`, resuming it; (hash, bytes, resumed from, stated SHA-256)."""
    import httpx

    offset = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        with httpx.stream("GET", url, headers=headers, follow_redirects=True, timeout=30.0) as r:
            stated = _stated_sha256(r)
            if r.status_code == 416 and offset:  # the partial file is already whole
                return file_sha256(part), offset, offset, stated
            if r.status_code == 206 and r.headers.get("content-range", "").startswith(f"bytes {offset}-"):
                total_text = r.headers["content-range"].rpartition("/")[2]
                total = int(total_text) if total_text.isdigit() else None
                mode, h, resumed = "ab", file_sha256(part), offset
            elif r.status_code == 200:
                length = r.headers.get("content-length")
                total = int(length) if length and length.isdigit() else None
                mode, h, resumed = "wb", hashlib.sha256(), 0  # no range support: start over
            else:
                raise PullError(f"{url} answered HTTP {r.status_code}; check the address")
            progress(resumed, total)
            with part.open(mode) as out:
                # Blocks as they arrive: a connection cut mid-block keeps every byte it brought.
                done = _copy(r.iter_bytes(), out, h, resumed, total, progress, stop)
    except httpx.HTTPError as exc:
        have = part.stat().st_size if part.exists() else 0
        raise PullError(
            f"downloading {url} failed ({exc}); {have} bytes are kept and the next try resumes from them"
        ) from exc
    if total is not None and done != total:
        raise PullError(f"{url} ended after {done} of {total} bytes; run it again to resume")
    return h, done, resumed, stated


def describe(source: str) -> dict[str, Any]:
    """What a user sees before saying yes: file name, size, stated SHA-256, and the licence.

    The size and checksum come from a HEAD request (the hub states both); the licence from
    the hub's model API (`/api/models/OWNER/REPO`: `cardData.license`, else a `license:`
    tag). A server that says nothing leaves the field out; only an unreachable or refused
    file is an error.
    """
    import httpx

    found = resolve_source(source)
    info: dict[str, Any] = {"filename": found.filename, "kind": found.kind}
    if found.kind == "file":
        info["bytes"] = Path(found.location).stat().st_size
        return info
    try:
        r = httpx.head(found.location, follow_redirects=True, timeout=15.0)
    except httpx.HTTPError as exc:
        raise PullError(f"cannot reach {found.location} ({exc}); check the address and the network") from exc
    if r.status_code >= 400:
        raise PullError(f"{found.location} answered HTTP {r.status_code}; check the address")
    length = r.headers.get("content-length")
    if length and length.isdigit():
        info["bytes"] = int(length)
    stated = _stated_sha256(r)
    if stated:
        info["sha256"] = stated
    if found.repo is not None:
        try:
            meta = httpx.get(f"{_hub()}/api/models/{found.repo}", timeout=15.0).json()
        except (httpx.HTTPError, ValueError):
            meta = {}
        card = meta.get("cardData") if isinstance(meta, dict) else None
        licence = card.get("license") if isinstance(card, dict) else None
        tags = meta.get("tags") if isinstance(meta, dict) else None
        if not licence and isinstance(tags, list):
            licence = next((t[8:] for t in tags if isinstance(t, str) and t.startswith("license:")), None)
        if licence:
            info["licence"] = str(licence)
    return info


def pull(
    home: Path,
    source: str,
    *,
    name: str | None = None,
    sha256: str | None = None,
    progress: Progress | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> Pulled:
    """Fetch SOURCE into `home/models/pulled/NAME/`, check it, register it as NAME (default: file stem)."""
    expected = sha256.strip().lower() if sha256 else None
    if expected is not None and not _SHA256.match(expected):
        raise ConfigError(f"{sha256!r} is not a SHA-256 (64 hexadecimal digits)")
    found = resolve_source(source)
    name = name or Path(found.filename).stem
    if Path(name).name != name or name in (".", ".."):
        raise ConfigError(f"{name!r} is not a usable model name (no '/', not empty)")
    report: Progress = progress or (lambda done, total: None)
    stop: Callable[[], bool] = cancelled or (lambda: False)
    # One folder per registered name: two repositories' `model.gguf` never overwrite each
    # other, and pulling a name again replaces that name's file only.
    folder = models_dir(home) / "pulled" / name
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / found.filename
    part = folder / (found.filename + ".part")
    reused = False
    if expected is not None and target.is_file() and file_sha256(target).hexdigest() == expected:
        digest, size, resumed, stated, reused = expected, target.stat().st_size, 0, None, True
    else:
        if found.kind == "file":
            total = Path(found.location).stat().st_size
            with open(found.location, "rb") as src, part.open("wb") as out:
                h = hashlib.sha256()
                report(0, total)
                size = _copy(iter(lambda: src.read(CHUNK), b""), out, h, 0, total, report, stop)
            resumed, stated = 0, None
        else:
            h, size, resumed, stated = _download(found.location, part, report, stop)
        digest = h.hexdigest()
        want = expected or stated
        if want is not None and digest != want:
            part.unlink(missing_ok=True)
            raise PullError(
                f"{found.filename} has SHA-256 {digest}, not the expected {want}; the download was "
                "deleted. Check the address (and --sha256), then run it again"
            )
        with part.open("rb") as fh:
            if fh.read(4) != b"GGUF":
                part.unlink(missing_ok=True)
                raise PullError(f"{source} is not a GGUF model file (it does not start with 'GGUF')")
        os.replace(part, target)
    lineage = {"pulled_from": source, "sha256": digest, "pulled_at": time.time()}
    entry = Registry(home).register(name, target, lineage=lineage)
    verified = reused or (expected or stated) is not None
    return Pulled(entry, digest, size, verified, resumed, reused)
