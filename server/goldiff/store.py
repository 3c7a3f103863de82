"""The trace store: one SQLite file (WAL) that holds everything Goldiff recorded.

Recording must never slow typing down, so `record_*` methods only put a record on a
queue; one writer thread per process takes records off in batches (up to
`BATCH_MAX_ROWS` rows or `BATCH_MAX_SECONDS` of waiting, whichever comes first) and writes
each batch in one transaction. A process killed with SIGKILL therefore loses at most the
batch it had not yet committed: the records of the last `BATCH_MAX_SECONDS` (50 ms).
`flush()` waits for everything queued so far; `close()` flushes and stops the writer.

The writer keeps its own copy of every document's recorded (redacted) text. Each edit is
applied to it, the lines the edit touched are scanned for secrets before the batch is
written, and the hash of the recorded text after the edit is stored with it, so any
version can be rebuilt from the store and checked. Typing runs (one character appended
per version) are coalesced into one row to keep the store small; full texts are stored
once per content (snapshots, content-addressed) on open, on full changes, on external
changes and after every `SNAPSHOT_EVERY` rows, so a rebuild never replays much.

Two processes (two editor windows) may write the same store: each has its own writer and
SQLite's locking, with a generous busy timeout, serialises their transactions.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

import sqlite_utils

from goldiff.capture.redaction import MASK, key_block_open, mask_spans, redact, redact_json, secret_spans
from goldiff.errors import ForgetError, NotRecordedError, StoreCorruptError, StoreError, StoreWriteError
from goldiff.migrations import migrate
from goldiff.protocol import clean_text

log = logging.getLogger(__name__)

BATCH_MAX_ROWS = 512
BATCH_MAX_SECONDS = 0.05
SNAPSHOT_EVERY = 256
BUSY_TIMEOUT_MS = 30_000
RETRY_LIMIT_ROWS = 200_000  # rows kept in memory while the disk refuses writes


# Redaction by construction: the writer masks secrets in every text value it writes, except
# in the columns named here, which hold identifiers, hashes and paths the server builds.
# Even short enums a client sends (kind, reason, model) are redacted: it costs little. A
# new table or column is therefore redacted without anyone asking.
SAFE_COLUMNS = frozenset(
    {"id", "session_id", "document_id", "suggestion_id", "episode_id", "shadow_of"}
    | {"hash", "content_hash", "snapshot"}
    # Paths and URIs are looked up as written (`goldiff show URI`, forget by workspace).
    | {"uri", "workspace", "path", "cwd"}
)
# Columns that hold JSON: their strings are redacted one by one (with their keys), so the
# column stays valid JSON.
JSON_COLUMNS = frozenset({"detail", "context", "range", "survival"})


def redact_value(column: str, value: Any) -> Any:
    """What the store writes for `value` in `column`: cleaned, with its secrets masked."""
    if not isinstance(value, str):
        return value
    value = clean_text(value)
    if column in SAFE_COLUMNS:
        return value
    if column in JSON_COLUMNS:
        return redact_json(value)
    return redact(value)


def content_hash(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def snapshot(db: sqlite_utils.Database, h: str) -> str:
    """The full text stored under hash `h`."""
    row = db.execute("SELECT text FROM snapshots WHERE hash = ?", [h]).fetchone()
    if row is None:
        raise NotRecordedError(f"snapshot {h} is missing from the store")
    return str(row[0])


# The rows the recorder writes, typed so that a misspelt column fails `mypy`, not a batch.
class SessionRow(TypedDict, total=False):
    id: str
    started_at: float
    pid: int
    client: str | None
    workspace: str | None
    server_version: str
    mode: str


class DocumentRow(TypedDict, total=False):
    id: str
    session_id: str
    uri: str
    workspace: str | None
    path: str | None
    language: str
    opened_at: float
    skipped: str | None


class TerminalCommandRow(TypedDict, total=False):
    id: int
    session_id: str | None
    workspace: str | None
    command_line: str
    cwd: str | None
    exit_code: int | None
    started_at: float | None
    ended_at: float | None
    output: str | None
    output_truncated: int


class SuggestionRow(TypedDict, total=False):
    id: str
    session_id: str | None
    document_id: str | None
    version: int | None
    ts: float
    source: str
    model: str | None
    mode: str
    shadow_of: str | None
    line: int
    character: int
    offset: int
    prefix: str
    suffix: str
    context: str  # JSON
    text: str
    latency_ms: float | None
    prompt_tokens: int | None
    completion_tokens: int | None
    shown: int
    outcome: str
    reason: str | None
    accepted_length: int | None
    gold: str | None
    settled_at: float | None
    survival: str | None  # JSON
    episode_id: str | None
    reverted: int
    resolved_at: float | None


class EpisodeRow(TypedDict, total=False):
    id: str
    session_id: str | None
    document_id: str | None
    kind: str
    source: str | None
    started_at: float
    ended_at: float | None
    start_offset: int | None
    end_offset: int | None
    before: str | None
    after: str | None
    gold_diff: str | None
    tests_passed: int | None
    detail: str | None  # JSON


class ProposalRow(TypedDict, total=False):
    id: str
    episode_id: str
    session_id: str | None
    document_id: str | None
    turn: int
    ts: float
    kind: str
    source: str | None
    model: str | None
    mode: str
    shadow_of: str | None
    instruction: str | None
    range: str | None  # JSON
    start_offset: int | None
    end_offset: int | None
    before: str | None
    context: str | None  # JSON
    text: str | None
    outcome: str | None  # None: a shadow proposal, never shown
    latency_ms: float | None
    kept_share: float | None
    settled_at: float | None
    detail: str | None  # JSON


@dataclass
class EditRecord:
    """One change to a document, as the language server saw it."""

    document_id: str
    kind: str  # open | change | full | external | resync
    version: int | None
    ts: float
    mono: float
    offset: int = 0  # code points into the text before
    removed: int = 0
    inserted: str = ""
    range: tuple[int, int, int, int] | None = None  # LSP start line/char, end line/char


@dataclass
class _Doc:
    """The writer's copy of one document's recorded text."""

    text: str = ""  # as stored: secrets masked
    # The same text unmasked, kept only in memory: a secret typed across two rows is found
    # whole here, where the stored text already shows its first part as asterisks.
    raw: str = ""
    seq: int = 0
    since_snapshot: int = 0
    open_row: dict[str, Any] | None = None  # the last row, still growing by typing


@dataclass
class _Batch:
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    snapshots: dict[str, str] = field(default_factory=dict)
    updates: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    count: int = 0

    def add(self, table: str, row: dict[str, Any]) -> None:
        self.rows.setdefault(table, []).append(row)
        self.count += 1


_STOP = object()


def _connect(path: Path) -> sqlite_utils.Database:
    # isolation_level=None: transactions are ours (BEGIN IMMEDIATE ... COMMIT), never implicit.
    conn = sqlite3.connect(
        str(path), timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False, isolation_level=None
    )
    db = sqlite_utils.Database(conn)
    db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA foreign_keys=OFF")  # rows arrive batched; order is ours to keep
    db.execute("PRAGMA secure_delete=ON")  # forgotten data is overwritten, not left in pages
    return db


def open_database(path: Path) -> tuple[sqlite_utils.Database, Path | None]:
    """Open (and migrate) the store; a corrupt file is moved aside and a new one started.

    Returns the database and, when a corrupt file was moved aside, where it went.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    moved: Path | None = None
    if path.is_dir():
        raise StoreError(f"{path} is a folder, not a trace store: move it away or choose another --home")
    if path.exists() and (problem := _check_file(path)):
        moved = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
        for suffix in ("", "-wal", "-shm"):
            src = Path(str(path) + suffix)
            if src.exists():
                src.rename(Path(str(moved) + suffix))
        log.error("trace store %s was unreadable (%s); moved to %s", path, problem, moved)
    new = not path.exists()
    try:
        db = _connect(path)
        if new:
            os.chmod(path, 0o600)  # traces are the user's own: readable by them alone
        with _immediate(db):
            migrate(db)
    except sqlite3.DatabaseError as exc:
        raise StoreCorruptError(f"cannot open the trace store {path}: {exc}") from exc
    return db, moved


def _check_file(path: Path) -> str | None:
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as conn:
            rows = conn.execute("PRAGMA quick_check").fetchall()
    except sqlite3.DatabaseError as exc:
        return str(exc)
    return None if rows == [("ok",)] else "; ".join(str(r[0]) for r in rows[:3])


SCAN_MARGIN = 256  # characters scanned for secrets either side of an edit, on its lines
SCAN_TOKEN_MAX = 4096  # no secret is longer: the window never widens further to find a space
KEY_BLOCK_REACH = 16_384  # how far above an edit a private key's header is looked for


def _scan_window(text: str, start: int, end: int) -> tuple[int, int]:
    """The lines an edit touched, cut to a margin around it on very long lines.

    The cut is moved out to the nearest whitespace so a secret is never split in two, but
    at most `SCAN_TOKEN_MAX` further: a minified line with no spaces must not make every
    keystroke rescan the whole line.
    """
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    line_end = len(text) if line_end == -1 else line_end
    if start - line_start > SCAN_MARGIN:
        cut = start - SCAN_MARGIN
        floor = max(line_start, cut - SCAN_TOKEN_MAX)
        space = max(text.rfind(" ", floor, cut), text.rfind("\t", floor, cut))
        line_start = space + 1 if space != -1 else floor
    # A private key typed or pasted a line at a time: its body lines are only a secret
    # beside their header, so scan from the header.
    block = key_block_open(text[max(0, line_start - KEY_BLOCK_REACH) : line_start])
    if block != -1:
        line_start = max(0, line_start - KEY_BLOCK_REACH) + block
    if line_end - end > SCAN_MARGIN:
        cut = end + SCAN_MARGIN
        ceiling = min(line_end, cut + SCAN_TOKEN_MAX)
        spaces = [i for i in (text.find(" ", cut, ceiling), text.find("\t", cut, ceiling)) if i != -1]
        line_end = min(spaces) if spaces else ceiling
    return line_start, line_end


def _insert_many(db: sqlite_utils.Database, table: str, rows: list[dict[str, Any]], *, upsert: bool) -> None:
    """INSERT (or upsert by id) rows grouped by their column sets, inside the caller's transaction."""
    groups: dict[tuple[str, ...], list[list[Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row), []).append(list(row.values()))
    for cols, values in groups.items():
        names = ", ".join(f"[{c}]" for c in cols)
        marks = ", ".join("?" for _ in cols)
        sql = f"INSERT INTO [{table}] ({names}) VALUES ({marks})"
        if upsert:
            sets = ", ".join(f"[{c}] = excluded.[{c}]" for c in cols if c != "id")
            sql += f" ON CONFLICT(id) DO UPDATE SET {sets}" if sets else " ON CONFLICT(id) DO NOTHING"
        db.conn.executemany(sql, values)


@contextlib.contextmanager
def _immediate(db: sqlite_utils.Database) -> Iterator[None]:
    """A write transaction taken up front, so two processes never deadlock upgrading."""
    conn = db.conn
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if conn.in_transaction:  # SQLite already rolled back after e.g. SQLITE_FULL
            conn.execute("ROLLBACK")
        raise
    else:
        conn.execute("COMMIT")


class TraceStore:
    """Goldiff's recorded data: `record_*` queue writes, `iter_*`/queries read."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        on_error: Callable[[StoreError], None] | None = None,
    ) -> None:
        self.path = Path(path)
        self.db, self.moved_aside = open_database(self.path)
        self._on_error = on_error
        self._error_reported = False
        self._queue: queue.Queue[Any] = queue.Queue()
        self._urgent = threading.Event()
        self._docs: dict[str, _Doc] = {}
        self._pending_retry: _Batch | None = None
        self._closed = False
        self._writer = threading.Thread(target=self._run, name="goldiff-store-writer", daemon=True)
        self._writer.start()

    # ------------------------------------------------------------------ recording

    def record_session(self, row: SessionRow) -> None:
        self._queue.put(("upsert", "sessions", row))

    def end_session(self, session_id: str) -> None:
        self._queue.put(("update", "sessions", session_id, {"ended_at": time.time()}))

    def record_document(self, row: DocumentRow) -> None:
        self._queue.put(("upsert", "documents", row))

    def record_edit(self, edit: EditRecord) -> None:
        self._queue.put(edit)

    def record_terminal_command(self, row: TerminalCommandRow) -> None:
        self._queue.put(("insert", "terminal_commands", row))

    def record_event(
        self,
        kind: str,
        *,
        session_id: str | None,
        document_id: str | None = None,
        detail: dict[str, Any] | None = None,
        ts: float | None = None,
    ) -> None:
        self._event("events", kind, detail, ts, session_id=session_id, document_id=document_id)

    def record_suggestion(self, row: SuggestionRow) -> None:
        self._queue.put(("upsert", "suggestions", row))

    def update_suggestion(self, suggestion_id: str, values: SuggestionRow) -> None:
        self._queue.put(("update", "suggestions", suggestion_id, values))

    def record_suggestion_event(
        self,
        suggestion_id: str,
        kind: str,
        detail: dict[str, Any] | None = None,
        ts: float | None = None,
    ) -> None:
        self._event("suggestion_events", kind, detail, ts, suggestion_id=suggestion_id)

    def _event(
        self, table: str, kind: str, detail: dict[str, Any] | None, ts: float | None, **link: Any
    ) -> None:
        row = {"ts": ts if ts is not None else time.time(), "kind": kind, "detail": json.dumps(detail or {})}
        self._queue.put(("insert", table, {**link, **row}))

    def record_episode(self, row: EpisodeRow) -> None:
        self._queue.put(("upsert", "episodes", row))

    def update_episode(self, episode_id: str, values: EpisodeRow) -> None:
        self._queue.put(("update", "episodes", episode_id, values))

    def record_proposal(self, row: ProposalRow) -> None:
        self._queue.put(("insert", "proposals", row))

    def update_proposal(self, proposal_id: str, values: ProposalRow) -> None:
        self._queue.put(("update", "proposals", proposal_id, values))

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything recorded so far is written; False if it could not be."""
        done = threading.Event()
        self._queue.put(done)
        self._urgent.set()
        return done.wait(timeout) and self._pending_retry is None

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._urgent.set()
        self._writer.join(timeout=30)
        with contextlib.suppress(sqlite3.Error):
            self.db.conn.close()

    # ------------------------------------------------------------------ the writer

    def _run(self) -> None:
        while True:
            try:
                # With a batch waiting to be retried, wake up to retry it even if idle.
                first = self._queue.get(timeout=1.0 if self._pending_retry else None)
            except queue.Empty:
                first = None
            # Sleep out the batch window instead of waking for every record: a writer that
            # woke per keystroke would fight the event loop for the GIL all the time.
            # `flush()` and `close()` cut the wait short.
            if not isinstance(first, threading.Event) and first is not _STOP:
                self._urgent.wait(BATCH_MAX_SECONDS)
            self._urgent.clear()
            retrying = self._pending_retry is not None
            batch = self._pending_retry or _Batch()
            self._pending_retry = None
            # While the disk refuses writes, keep taking records (and flush requests) into
            # the waiting batch rather than retrying once per record.
            limit = RETRY_LIMIT_ROWS if retrying else BATCH_MAX_ROWS
            waiters: list[threading.Event] = []
            stop = False
            item: Any = first
            while True:
                if item is _STOP:
                    stop = True
                elif isinstance(item, threading.Event):
                    waiters.append(item)
                elif item is not None:
                    self._apply(batch, item)
                if stop or batch.count >= limit:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            self._write(batch)
            for w in waiters:
                w.set()
            if stop:
                return

    def _apply(self, batch: _Batch, item: Any) -> None:
        if isinstance(item, EditRecord):
            self._apply_edit(batch, item)
            return
        op, table, *rest = item
        # Redaction runs here, on the writer thread, to keep it off the editor's path; every
        # row for every table passes through this one place.
        values = {k: redact_value(k, v) for k, v in (rest[1] if op == "update" else rest[0]).items()}
        if op in ("insert", "upsert"):
            batch.add(table, {"__op": op, **values})
        elif op == "update":
            pk = clean_text(rest[0]) if isinstance(rest[0], str) else rest[0]
            batch.updates.append((table, pk, values))
            batch.count += 1

    def _apply_edit(self, batch: _Batch, e: EditRecord) -> None:
        doc = self._docs.setdefault(e.document_id, _Doc())
        e.inserted = clean_text(e.inserted)
        if e.kind in ("open", "full", "external", "resync"):
            self._close_row(batch, e.document_id, doc)
            text = redact(e.inserted)
            doc.text = text
            doc.raw = e.inserted
            doc.since_snapshot = 0
            h = content_hash(text)
            batch.snapshots[h] = text
            doc.seq += 1
            batch.add("edits", self._edit_row(e, doc.seq, inserted=None, snapshot=h, h=h))
            return
        before = doc.text
        start = min(max(e.offset, 0), len(before))
        end = min(start + max(e.removed, 0), len(before))
        last = doc.open_row
        if (
            last is not None
            and e.kind == "change"
            and e.removed == 0
            and len(e.inserted) == 1
            and last["removed"] == 0
            and last["version"] is not None
            and e.version == last["version"] + 1
            and last["offset"] + len(last["inserted"]) == start
            and len(last["inserted"]) == last["version"] - last["version_first"] + 1
        ):
            # A typing run: one character appended per version. One row holds it all;
            # its secrets scan and hash wait until the run ends.
            last["inserted"] += e.inserted
            last["version"] = e.version
            last["ts"] = e.ts
            last["mono"] = e.mono
            doc.text = before[:start] + e.inserted + before[end:]
            doc.raw = doc.raw[:start] + e.inserted + doc.raw[end:]
            return
        self._close_row(batch, e.document_id, doc)
        # Closing the last row may have masked a secret in the text (same length, so the
        # offsets hold): build on the masked text, never the copy taken before.
        before = doc.text
        doc.text = before[:start] + e.inserted + before[end:]
        doc.raw = doc.raw[:start] + e.inserted + doc.raw[end:]
        doc.seq += 1
        row = self._edit_row(e, doc.seq, inserted=e.inserted, snapshot=None, h=None)
        row["offset"], row["removed"] = start, end - start
        batch.add("edits", row)
        doc.open_row = row

    def _close_row(self, batch: _Batch, document_id: str, doc: _Doc) -> None:
        """Finish a document's open row: mask secrets on the lines it touched, hash the text."""
        row = doc.open_row
        if row is None:
            return
        doc.open_row = None
        text = doc.text  # the text right after this row: nothing later is applied yet
        start = row["offset"]
        inserted = row["inserted"]
        # Masking keeps lengths and newlines, so the raw and stored texts share offsets.
        line_start, line_end = _scan_window(doc.raw, start, start + len(inserted))
        spans = secret_spans(doc.raw[line_start:line_end])
        scrub: list[tuple[int, int]] = []
        if spans:
            abs_spans = [(line_start + a, line_start + b) for a, b in spans]
            end = start + len(inserted)
            # Characters typed earlier (already in rows) may be part of the secret too;
            # the ones an earlier row already masked need no second pass. The earlier rows
            # are replayed to the text before this row, so the parts of a span on either
            # side of this row's insert are given in that text's offsets.
            shift = len(inserted) - row["removed"]
            for a, b in abs_spans:
                for lo, hi, moved in ((a, min(b, start), 0), (max(a, end), b, shift)):
                    if lo < hi and any(c not in f"{MASK}\r\n" for c in text[lo:hi]):
                        scrub.append((lo - moved, hi - moved))
            text = mask_spans(text, abs_spans)
            row["inserted"] = text[start:end]
            doc.text = text
        h = content_hash(text)
        row["content_hash"] = h
        doc.since_snapshot += 1
        if doc.since_snapshot >= SNAPSHOT_EVERY or scrub:
            row["snapshot"] = h
            batch.snapshots[h] = text
            doc.since_snapshot = 0
        if scrub:
            batch.updates.append(("__scrub__", document_id, {"seq": row["seq"], "spans": scrub}))

    @staticmethod
    def _edit_row(
        e: EditRecord, seq: int, *, inserted: str | None, snapshot: str | None, h: str | None
    ) -> dict[str, Any]:
        r = e.range or (None, None, None, None)
        return {
            "__op": "insert",
            "document_id": e.document_id,
            "seq": seq,
            "kind": e.kind,
            "version": e.version,
            "version_first": e.version,
            "ts": e.ts,
            "mono": e.mono,
            "start_line": r[0],
            "start_character": r[1],
            "end_line": r[2],
            "end_character": r[3],
            "offset": e.offset if inserted is not None else None,
            "removed": e.removed if inserted is not None else None,
            "inserted": inserted,
            "snapshot": snapshot,
            "content_hash": h,
        }

    def _write(self, batch: _Batch) -> None:
        for document_id, doc in self._docs.items():
            self._close_row(batch, document_id, doc)
        if batch.count == 0 and not batch.snapshots:
            return
        try:
            with _immediate(self.db):
                self._write_records(batch, lambda _table, _row, write, *args, **kw: write(*args, **kw))
        except sqlite3.DatabaseError as exc:
            self._write_failed(batch, exc)
            return
        except Exception:
            # Not the disk: some record cannot be written (an integer beyond 64 bits, a bug).
            # Retrying would fail forever, and dropping the batch would lose every other
            # record in it: write it again record by record, leaving out only the bad ones.
            log.exception("a batch of %d records failed; writing it record by record", batch.count)
            self._write_salvaging(batch)
            return
        self._error_reported = False

    def _write_records(self, batch: _Batch, attempt: Callable[..., None], one_by_one: bool = False) -> None:
        """Every write of `batch`, rows grouped or `one_by_one`, each as `attempt(table, row, write, ...)`."""
        for h, text in batch.snapshots.items():
            attempt("snapshots", {}, self._put_snapshot, h, text)
        for table, rows in batch.rows.items():
            for op in ("insert", "upsert"):
                same = [{k: v for k, v in r.items() if k != "__op"} for r in rows if r["__op"] == op]
                for group in [[row] for row in same] if one_by_one else [same]:
                    first = group[0] if group else {}
                    attempt(table, first, _insert_many, self.db, table, group, upsert=op == "upsert")
        for table, pk, values in batch.updates:
            if table == "__scrub__":
                attempt("edits", {"document_id": pk}, self._scrub, pk, values["seq"], values["spans"])
            else:
                attempt(table, {}, self._update, table, pk, values)

    def _write_salvaging(self, batch: _Batch) -> None:
        """Write `batch` with each record in its own savepoint; quarantine the ones that fail.

        A quarantined record is left out, logged, marked by a `gap` event in the store (so
        an audit sees that something is missing) and reported to the user.
        """
        conn = self.db.conn
        gaps: list[dict[str, Any]] = []

        def attempt(
            table: str, where: dict[str, Any], write: Callable[..., Any], *args: Any, **kw: Any
        ) -> None:
            conn.execute("SAVEPOINT goldiff_record")
            try:
                write(*args, **kw)
            except sqlite3.OperationalError:
                raise  # the disk, not the record: the whole batch waits and is retried
            except Exception as exc:
                conn.execute("ROLLBACK TO goldiff_record")
                reason = "an integer beyond 64 bits" if isinstance(exc, OverflowError) else str(exc)[:200]
                log.error("left a %s record out of the trace store: %s", table, exc)
                link = {k: where.get(k) for k in ("session_id", "document_id")}
                gap = json.dumps({"table": table, "reason": reason})
                gaps.append({**link, "ts": time.time(), "kind": "gap", "detail": gap})
            conn.execute("RELEASE goldiff_record")

        try:
            with _immediate(self.db):
                self._write_records(batch, attempt, one_by_one=True)
                _insert_many(self.db, "events", gaps, upsert=False)
        except sqlite3.DatabaseError as exc:
            self._write_failed(batch, exc)
            return
        for gap in gaps:
            detail = json.loads(gap["detail"])
            err = StoreWriteError(
                f"Goldiff could not record a {detail['table']} record ({detail['reason']}); it was "
                "left out, the rest was recorded, and the gap is marked in the trace store."
            )
            if self._on_error:
                with contextlib.suppress(Exception):
                    self._on_error(err)

    def _update(self, table: str, pk: str, values: dict[str, Any]) -> None:
        if not values:
            return
        cols = ", ".join(f"[{k}] = ?" for k in values)
        self.db.execute(f"UPDATE [{table}] SET {cols} WHERE id = ?", [*values.values(), pk])

    def _scrub(self, document_id: str, upto_seq: int, spans: list[tuple[int, int]]) -> int:
        """Mask a newly found secret in the rows that typed it, before this one.

        Replays the document from its last snapshot before `upto_seq`, tracking which row
        inserted each character, and masks the characters that now form the secret. The
        rows' hashes are recomputed from the masked texts, so `goldiff show` still verifies
        every step. Part of the secret may be in that snapshot itself (a row that masked an
        earlier secret takes one): the snapshot is rewritten, and the rows before it that
        typed those characters are scrubbed the same way. Returns the rows masked.
        """
        rows = self.db.execute(
            "SELECT id, seq, snapshot, offset, removed, inserted, content_hash FROM edits "
            "WHERE document_id = ? AND seq < ? AND seq >= COALESCE("
            "(SELECT MAX(seq) FROM edits WHERE document_id = ? AND seq < ? AND snapshot IS NOT NULL), 0) "
            "ORDER BY seq",
            [document_id, upto_seq, document_id, upto_seq],
        ).fetchall()
        if not rows or rows[0][2] is None:
            return 0  # no snapshot to replay from (a document always starts with one)
        # The first row's snapshot is the text after it: start from it. Per character of the
        # text: the row that inserted it (the snapshot's own are row 0) and its index there.
        base = snapshot(self.db, rows[0][2])
        texts: dict[int, list[str]] = {0: list(base)}
        origin: list[tuple[int, int]] = [(0, i) for i in range(len(base))]
        for row_id, _seq, _snap, offset, removed, inserted, _h in rows[1:]:
            texts[row_id] = list(inserted or "")
            origin[offset : offset + removed] = [(row_id, i) for i in range(len(inserted or ""))]
        touched: set[int] = set()
        for a, b in spans:
            for row_id, i in origin[a : min(b, len(origin))]:
                if texts[row_id][i] not in f"{MASK}\r\n":
                    texts[row_id][i] = MASK
                    touched.add(row_id)
        if not touched:
            return 0
        text = "".join(texts[0])
        masked = len(touched - {0})
        if 0 in touched:
            masked += 1 + self._scrub_snapshot(document_id, rows[0], base, text)
        for row_id, _seq, _snap, offset, removed, _inserted, old_hash in rows[1:]:
            new = "".join(texts[row_id])
            text = text[:offset] + new + text[offset + removed :]
            h = content_hash(text) if old_hash is not None else None
            if row_id in touched or h != old_hash:
                self.db.execute(
                    "UPDATE edits SET inserted = ?, content_hash = ? WHERE id = ?", [new, h, row_id]
                )
        log.info("masked a secret in %d earlier edit rows", masked)
        return masked

    def _put_snapshot(self, h: str, text: str) -> None:
        size = len(text.encode("utf-8", "surrogatepass"))
        sql = "INSERT OR IGNORE INTO snapshots(hash, text, bytes) VALUES (?, ?, ?)"
        self.db.execute(sql, [h, text, size])

    def _scrub_snapshot(self, document_id: str, row: tuple[Any, ...], old_text: str, text: str) -> int:
        """Store `row`'s snapshot as the masked `text`; scrub the rows before it that typed the masks."""
        row_id, seq, old, offset, removed, inserted, _ = row
        h = content_hash(text)
        self._put_snapshot(h, text)
        mine = (offset, offset + len(inserted)) if inserted is not None else (0, 0)
        new_inserted = text[mine[0] : mine[1]] if inserted is not None else None
        self.db.execute(
            "UPDATE edits SET snapshot = ?, content_hash = ?, inserted = ? WHERE id = ?",
            [h, h, new_inserted, row_id],
        )
        # `secure_delete` overwrites the unmasked text unless another row still shares it.
        self.db.execute(
            "DELETE FROM snapshots WHERE hash = ? AND NOT EXISTS (SELECT 1 FROM edits WHERE snapshot = ?)",
            [old, old],
        )
        if inserted is None:
            return 0  # a whole-text row: nothing before it built this text
        # The masks outside this row's own insert were typed by earlier rows: scrub those, in
        # the offsets of the text before this row.
        earlier = [
            i if i < mine[0] else i - len(inserted) + removed
            for i, (was, now) in enumerate(zip(old_text, text, strict=True))
            if was != now and not mine[0] <= i < mine[1]
        ]
        return self._scrub(document_id, seq, [(i, i + 1) for i in earlier])

    def _write_failed(self, batch: _Batch, exc: Exception) -> None:
        msg = str(exc)
        if "full" in msg:
            reason = "the disk is full"
        elif "readonly" in msg or "read-only" in msg:
            reason = "the trace store is on a read-only file system"
        elif "locked" in msg or "busy" in msg:
            reason = "the trace store stayed locked by another process"
        else:
            reason = msg
        err = StoreWriteError(
            f"Goldiff cannot write its trace store ({reason}); recording is paused and will "
            f"resume when writing works again. Store: {self.path}"
        )
        log.error("%s", err)
        if not self._error_reported:
            self._error_reported = True
            if self._on_error:
                with contextlib.suppress(Exception):
                    self._on_error(err)
        if batch.count <= RETRY_LIMIT_ROWS:
            self._pending_retry = batch
            time.sleep(0.2)
        else:
            log.error("dropping %d unwritten rows: more than %d waiting", batch.count, RETRY_LIMIT_ROWS)

    # ------------------------------------------------------------------ reading

    def reader(self) -> sqlite_utils.Database:
        """A separate connection for queries, so reads never wait on the writer's batch."""
        return _connect(self.path)

    def queue_depth(self) -> int:
        return self._queue.qsize()


# ---------------------------------------------------------------------- maintenance

# Columns by which a row belongs to a document, a suggestion or an episode (with the set of
# those in scope that forget gathers), and the column that says when it was recorded.
# `forget` derives what to delete from these and the schema alone, so a table added later is
# forgotten with the rest (or forget refuses to run).
LINKS = {"document_id": "documents", "suggestion_id": "suggestions", "episode_id": "episodes"}
TIME_COLUMNS = ("ts", "started_at", "opened_at")


def forget(
    db: sqlite_utils.Database,
    workspace: str | None = None,
    *,
    document: str | None = None,
    since: float | None = None,
    until: float | None = None,
) -> dict[str, int]:
    """Delete recorded data; returns rows deleted per table.

    One scope at a time: a workspace (URI), a document (URI), a time range (epoch seconds,
    either end open), or, with none of them, everything. A document touched in a time range
    is forgotten whole: its later states hold what was typed in the range. Deleted pages are
    overwritten (`secure_delete`), the database is rebuilt and its WAL truncated, so the
    text is gone from the files, not only from the tables.
    """
    scopes = [workspace is not None, document is not None, since is not None or until is not None]
    if sum(scopes) > 1:
        raise ValueError("forget takes one scope: a workspace, a document or a time range")
    db.execute("PRAGMA secure_delete=ON")
    columns = {t: {c.name for c in db[t].columns} for t in db.table_names() if not t.startswith("_")}
    with _immediate(db):
        if any(scopes):
            deleted = _forget_scoped(db.conn, columns, workspace, document, since, until)
        else:
            deleted = {table: db.conn.execute(f"DELETE FROM [{table}]").rowcount for table in columns}
    # Rebuild the file without the freed pages, then empty the WAL that held the old ones.
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.execute("VACUUM")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return {k: v for k, v in deleted.items() if v}


def _forget_scoped(
    conn: sqlite3.Connection,
    columns: dict[str, set[str]],
    workspace: str | None,
    document: str | None,
    since: float | None,
    until: float | None,
) -> dict[str, int]:
    timed = workspace is None and document is None
    lo = since if since is not None else float("-inf")
    hi = until if until is not None else float("inf")
    in_range = "({col} >= ? AND {col} < ?)"
    for name in LINKS.values():
        conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS forget_{name} (id TEXT PRIMARY KEY)")
        conn.execute(f"DELETE FROM forget_{name}")

    def add(into: str, select: str, params: list[Any] | None = None) -> None:
        conn.execute(f"INSERT OR IGNORE INTO forget_{into} {select}", params or [])

    def add_in_range(into: str, select: str, col: str) -> None:
        add(into, f"{select} WHERE {in_range.format(col=col)}", [lo, hi])

    # The documents in scope, then what hangs off them; and the strings by which events name
    # the workspace or document in their detail (gaps, skips, commits).
    needles: list[str] = []
    if workspace is not None:
        docs_under = "SELECT id FROM documents WHERE workspace = ? OR substr(uri, 1, ?) = ?"
        add("documents", docs_under, [workspace, len(workspace) + 1, workspace + "/"])
        needles = [workspace + "/", workspace + '"']
    elif document is not None:
        add("documents", "SELECT id FROM documents WHERE uri = ?", [document])
        needles = [document + '"']
    else:
        add_in_range("documents", "SELECT DISTINCT document_id FROM edits", "ts")
        add_in_range("documents", "SELECT id FROM documents", "opened_at")
    of_docs = "document_id IN (SELECT id FROM forget_documents)"
    add("suggestions", f"SELECT id FROM suggestions WHERE {of_docs}")
    for table in ("episodes", "proposals", "suggestions"):
        col = "id" if table == "episodes" else "episode_id"
        add("episodes", f"SELECT {col} FROM [{table}] WHERE {col} IS NOT NULL AND {of_docs}")
    if timed:
        add_in_range("suggestions", "SELECT id FROM suggestions", "ts")
        add_in_range("episodes", "SELECT id FROM episodes", "started_at")
    deleted: dict[str, int] = {}
    for table, cols in columns.items():
        if table in ("snapshots", "sessions"):
            continue
        where: list[str] = []
        params: list[Any] = []
        own = table in LINKS.values()
        if own:
            where.append(f"id IN (SELECT id FROM forget_{table})")
        where += [f"{link} IN (SELECT id FROM forget_{name})" for link, name in LINKS.items() if link in cols]
        if workspace is not None and "workspace" in cols:
            where.append("workspace = ?")
            params.append(workspace)
        links = [c for c in LINKS if c in cols]
        if workspace is not None and "session_id" in cols and links:
            # Rows of the workspace's sessions that belong to no document (its settings).
            unlinked = " AND ".join(f"{c} IS NULL" for c in links)
            where.append(f"({unlinked} AND session_id IN (SELECT id FROM sessions WHERE workspace = ?))")
            params.append(workspace)
        time_col = next((c for c in TIME_COLUMNS if c in cols), None)
        if timed and time_col:
            where.append(in_range.format(col=time_col))
            params += [lo, hi]
        if "detail" in cols:
            where += ["instr(detail, ?) > 0"] * len(needles)
            params += needles
        reachable = cols & {*LINKS, *TIME_COLUMNS, "workspace", "detail"} or own
        if not where and reachable:
            continue  # nothing of this scope can be in it (a document has no terminal commands)
        if not where:
            raise ForgetError(
                f"the table {table} has no column that links it to a workspace, document or time; "
                "`goldiff forget --all` still deletes everything"
            )
        deleted[table] = conn.execute(f"DELETE FROM [{table}] WHERE " + " OR ".join(where), params).rowcount
    # Full texts no edit refers to any more.
    deleted["snapshots"] = conn.execute(
        "DELETE FROM snapshots WHERE hash NOT IN (SELECT snapshot FROM edits WHERE snapshot IS NOT NULL)"
    ).rowcount
    # Sessions: gone once nothing refers to them; otherwise they stop naming the workspace.
    refs = " UNION ".join(f"SELECT session_id FROM [{t}]" for t in columns if "session_id" in columns[t])
    session_scope = "workspace = ?" if workspace is not None else None
    session_params: list[Any] = [workspace] if workspace is not None else []
    if timed:
        session_scope, session_params = in_range.format(col="started_at"), [lo, hi]
    if session_scope:
        deleted["sessions"] = conn.execute(
            f"DELETE FROM sessions WHERE {session_scope} AND id NOT IN ({refs})", session_params
        ).rowcount
        if workspace is not None:
            conn.execute("UPDATE sessions SET workspace = NULL WHERE workspace = ?", [workspace])
    return deleted


def integrity(db: sqlite_utils.Database) -> str:
    """SQLite's full integrity check of an open store: "ok", or what is wrong."""
    return str(db.execute("PRAGMA integrity_check").fetchone()[0])


def inspect_file(path: Path) -> tuple[str, int]:
    """`goldiff doctor`'s look at a store file: its integrity check and schema version.

    Read-only, so a doctor run never migrates, repairs or locks the user's store. Raises
    `sqlite3.DatabaseError` when the file is not a database at all.
    """
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        db = sqlite_utils.Database(conn)
        return integrity(db), db["_migrations"].count
