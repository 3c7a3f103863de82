"""Inline completion in the language server: the mode, the sources, the cache, the record.

`textDocument/inlineCompletion` takes the server's copy of the document, picks the source
the mode asks for (`frontier` and `shadow` show the frontier's suggestion, `local` the
local model's), and runs it in a worker thread. A request that arrives in a burst (within
`BURST_SECONDS` of the previous one on the same document) first waits `DEBOUNCE_SECONDS`
and gives way to any newer one; the first request after a pause runs at once, so a
debounce never adds latency to a lone request. `$/cancelRequest` cancels the task, which
sets the source's cancel event: the local model stops within one token.

Every answer is recorded as a suggestion row with the exact context it was made from, and
its item carries the `goldiff.accepted` command with the suggestion id. In shadow mode the
local model then answers the same request in the background, never shown, recorded with
`shadow_of`. An LRU cache keeps shown suggestions so that typing their first characters
gets the rest back under the same id instead of a new model call.

A local model that is missing or corrupt is reported once with `window/showMessage`; the
server keeps recording (capture-only) and answers no completions until it is fixed. The
local model runs in its own process (`worker.py`): if that process dies or hangs, the
request it was answering gets no items, the user is told once, and the engine restarts
in the background while capture goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import re
import threading
import time
import uuid
from collections import OrderedDict, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from goldiff.capture.documents import Document, OutOfSync
from goldiff.errors import ConfigError, EngineError, GoldiffError, ModelLoadError
from goldiff.home import states_dir
from goldiff.protocol import ACCEPTED
from goldiff.sources.base import (
    SUFFIX_CHARS,
    Completion,
    CompletionRequest,
    CompletionSource,
    RecentEdit,
    Snippet,
    prefix_excerpt,
)
from goldiff.sources.deterministic import DeterministicSource, is_test_spec
from goldiff.sources.registry import Registry
from goldiff.sources.repack import faults_path
from goldiff.sources.worker import WorkerSource  # llama.cpp runs in its own process
from goldiff.store import EditRecord, SuggestionRow

if TYPE_CHECKING:
    from goldiff.host import Host

log = logging.getLogger(__name__)

DEBOUNCE_SECONDS = 0.06
BURST_SECONDS = 0.15
MAX_TOKENS = 64
LOCAL_MAX_SECONDS = 2.0
FRONTIER_MAX_SECONDS = 8.0
# Overrides both budgets (seconds): for slow machines, and tests on a busy one.
TIMEOUT_ENV = "GOLDIFF_COMPLETION_TIMEOUT"
SHADOW_NICE = 10


def _budget(default: float) -> float:
    value = os.environ.get(TIMEOUT_ENV, "")
    try:
        return float(value) if value else default
    except ValueError:
        return default


CACHE_SIZE = 64
RECENT_EDITS = 16
SNIPPET_LINES = 12
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")


def _lower_priority() -> None:
    """Hidden shadow work runs niced, so the shown path wins when the cores are busy.

    Linux gives each thread its own nice value; llama.cpp's worker threads for this thread
    are created from it and inherit it. Elsewhere this quietly does nothing.
    """
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), SHADOW_NICE)


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def suffix_excerpt(after: str, limit: int = SUFFIX_CHARS) -> str:
    if len(after) <= limit:
        return after
    cut = after.rfind("\n", 0, limit)
    return after[: cut + 1] if cut > 0 else after[:limit]


def make_request(
    before: str,
    after: str,
    *,
    kind: str = "local",
    language: str = "",
    path: str | None = None,
    recent_edits: list[RecentEdit] | None = None,
) -> CompletionRequest:
    """The request a completion at this cursor sends its source: the server's, and eval's."""
    return CompletionRequest(
        prefix=prefix_excerpt(before),
        suffix=suffix_excerpt(after),
        language=language,
        path=path,
        recent_edits=recent_edits or [],
        max_tokens=MAX_TOKENS,
        max_seconds=_budget(FRONTIER_MAX_SECONDS if kind == "frontier" else LOCAL_MAX_SECONDS),
    )


@dataclass
class _Cached:
    id: str
    uri: str
    key: tuple[str, ...]
    prefix_len: int
    prefix_digest: bytes
    suffix_digest: bytes
    text: str


class SuggestionCache:
    """Shown suggestions, so that typing into one returns its remainder with the same id."""

    def __init__(self) -> None:
        self._entries: OrderedDict[str, _Cached] = OrderedDict()

    def add(self, sid: str, uri: str, key: tuple[str, ...], before: str, after: str, text: str) -> None:
        self._entries[sid] = _Cached(sid, uri, key, len(before), _digest(before), _digest(after), text)
        while len(self._entries) > CACHE_SIZE:
            self._entries.popitem(last=False)

    def lookup(self, uri: str, key: tuple[str, ...], before: str, after: str) -> tuple[str, str] | None:
        """(suggestion id, the text still to insert) if the cursor is inside a suggestion."""
        for entry in reversed(self._entries.values()):
            if entry.uri != uri or entry.key != key or len(before) < entry.prefix_len:
                continue
            typed = before[entry.prefix_len :]
            if len(typed) >= len(entry.text) or not entry.text.startswith(typed):
                continue
            if (
                _digest(before[: entry.prefix_len]) != entry.prefix_digest
                or _digest(after) != entry.suffix_digest
            ):
                continue
            self._entries.move_to_end(entry.id)
            return entry.id, entry.text[len(typed) :]
        return None


def related_snippets(doc: Document, before: str, others: list[Document], limit: int = 2) -> list[Snippet]:
    """Windows of other open files that share the most identifiers with the cursor's lines."""
    wanted = set(_WORD.findall("\n".join(before.splitlines()[-SNIPPET_LINES:])))
    if not wanted:
        return []
    scored: list[tuple[float, Snippet]] = []
    for other in others:
        if other.uri == doc.uri or other.language != doc.language or len(other.text) > 200_000:
            continue
        lines = other.text.splitlines()
        for start in range(0, max(1, len(lines)), SNIPPET_LINES // 2):
            window = "\n".join(lines[start : start + SNIPPET_LINES])
            score = len(wanted & set(_WORD.findall(window))) / len(wanted)
            if score >= 0.3:
                scored.append((score, Snippet(other.path or other.uri, window)))
    scored.sort(key=lambda s: -s[0])
    return [s for _, s in scored[:limit]]


class CompletionService:
    """The server's completion feature: sources by mode, requests, cache, recording."""

    def __init__(self, server: Host) -> None:
        self.server = server
        self.registry = Registry(server.home)
        self.cache = SuggestionCache()
        self._executor = ThreadPoolExecutor(2, thread_name_prefix="goldiff-complete")
        self._shadow_executor = ThreadPoolExecutor(
            1, thread_name_prefix="goldiff-shadow", initializer=_lower_priority
        )
        self._shadow_seq = 0
        self._shadow_cancel = threading.Event()
        self._load_lock = threading.Lock()
        self._local: dict[tuple[str, ...], CompletionSource] = {}
        # The last resolution of the local settings through registry.json, and the file's
        # signature then: reading and parsing the registry on every completion is wasted work
        # unless the file changed (`goldiff models use` from the command line).
        self._resolved: tuple[tuple[Any, ...], tuple[str, ...] | GoldiffError] | None = None
        self._failed: dict[tuple[str, ...], GoldiffError] = {}
        self._frontier: tuple[tuple[str, ...], CompletionSource] | None = None
        self._told: set[str] = set()
        self._recent: dict[str, deque[RecentEdit]] = {}
        self._last_request: dict[str, float] = {}
        self._generation: dict[str, int] = {}
        self._inflight: dict[str, threading.Event] = {}
        server.recorder.listeners.edit.append(self._on_edit)

    # ------------------------------------------------------------------ sources

    def _tell_once(self, message: str, kind: types.MessageType = types.MessageType.Error) -> None:
        if message not in self._told:
            self._told.add(message)
            log.warning("%s", message)
            self.server.tell_user(message, kind)

    def local_source(self) -> CompletionSource:
        """The local source the settings ask for, loaded once and kept warm (blocks to load)."""
        local = self.server.settings.local
        if local.endpoint:
            key: tuple[str, ...] = ("endpoint", local.endpoint)  # a team's shared server
        elif is_test_spec(local.model):
            key = ("test", local.model or "")
        else:
            key = self._gguf_key()
        with self._load_lock:
            source = self._local.get(key)
            if source is not None:
                return source
            if key in self._failed:
                raise self._failed[key]  # told already; retried when the settings change
            try:
                source = self._load(key)
            except GoldiffError as exc:
                self._failed[key] = exc
                message = (
                    f"Goldiff: {exc}. Goldiff keeps recording, without local completions until this is fixed."
                )
                log.warning("%s", message)
                self.server.tell_user(message, types.MessageType.Error)
                raise
            for old in list(self._local):
                self._local.pop(old).close()  # one warm model: they are large
            self._local[key] = source
            return source

    def _gguf_key(self) -> tuple[str, ...]:
        """The files and limits the local settings name, re-resolved when registry.json changes."""
        local = self.server.settings.local
        stamp = (
            self.registry.signature(),
            local.model,
            local.adapter,
            local.threads,
            local.max_memory_mb,
            local.repack,
        )
        cached = self._resolved
        if cached is not None and cached[0] == stamp:
            if isinstance(cached[1], GoldiffError):
                raise cached[1]
            return cached[1]
        try:
            resolved = self.registry.resolve(local.model)
            adapter = resolved.adapter_path
            if local.adapter:
                entry = self.registry.get(local.adapter)
                adapter = Path(entry.path) if entry is not None else Path(local.adapter).expanduser()
        except ModelLoadError as exc:
            self._resolved = (stamp, exc)  # no model: answered the same until the registry changes
            raise
        key = (
            "gguf",
            str(resolved.model_path),
            str(adapter or ""),
            resolved.name,
            str(local.threads),
            str(local.max_memory_mb),
            str(resolved.gate or ""),
            local.repack,
        )
        self._resolved = (stamp, key)
        return key

    def _load(self, key: tuple[str, ...]) -> CompletionSource:
        if key[0] == "test":
            return DeterministicSource.from_spec(key[1], kind="local")
        if key[0] == "endpoint":
            from goldiff.sources.endpoint import EndpointSource

            return EndpointSource(key[1])
        started = time.perf_counter()
        source = WorkerSource(
            key[1],
            state_dir=states_dir(self.server.home),
            adapter_path=key[2] or None,
            name=key[3],
            threads=int(key[4]),
            max_memory_mb=int(key[5]),
            gate=key[6] or None,
            repack=key[7],
            # Shared with every engine on this machine (`goldiff eval` too): a fault is learned once.
            faults=faults_path(self.server.home),
            on_crash=lambda message: self._tell_once(
                f"Goldiff: {message}. Recording goes on.", types.MessageType.Warning
            ),
        )
        # How it loaded (repacked kernels or not), the worker logs itself at every start.
        log.info("loaded local model %s in %.2fs", source.model, time.perf_counter() - started)
        return source

    def engine_status(self) -> dict[str, Any] | None:
        """The local engine's process: pid, restarts, last restart time (status, tests)."""
        return next((s.describe() for s in list(self._local.values()) if isinstance(s, WorkerSource)), None)

    def frontier_source(self) -> CompletionSource:
        fr = self.server.settings.frontier
        key_hash = hashlib.sha256((fr.api_key or "").encode()).hexdigest()[:16]
        key = (fr.provider, fr.base_url or "", fr.model or "", key_hash)
        with self._load_lock:
            if self._frontier is not None and self._frontier[0] == key:
                return self._frontier[1]
            source: CompletionSource
            if is_test_spec(fr.model):
                source = DeterministicSource.from_spec(fr.model or "", kind="frontier")
            else:
                from goldiff.sources.frontier import AnthropicSource, OpenAICompatibleSource

                http = AnthropicSource if fr.provider == "anthropic" else OpenAICompatibleSource
                source = http(base_url=fr.base_url, model=fr.model, api_key=fr.api_key)
            if self._frontier is not None:
                self._frontier[1].close()
            self._frontier = (key, source)
            return source

    def answering(self) -> dict[str, Any]:
        """The source and model that answer what the user sees, for the status bar.

        In frontier and shadow mode that is the frontier model, not the local one (which
        runs hidden in shadow mode); an unset frontier model is the provider's default.
        """
        settings = self.server.settings
        if settings.mode != "local":
            from goldiff.sources.frontier import DEFAULT_MODELS

            fr = settings.frontier
            model = fr.model
            if not model and not (fr.provider == "openai" and fr.base_url):
                model = DEFAULT_MODELS.get(fr.provider)
            if is_test_spec(model):
                model = self._test_model_name(model or "", "frontier")
            return {"source": "frontier", "provider": fr.provider, "model": model or fr.base_url}
        local = settings.local
        if is_test_spec(local.model):
            return {"source": "local", "model": self._test_model_name(local.model or "", "local")}
        try:
            name: str | None = self.registry.resolve(local.model).name
        except GoldiffError:
            name = None  # no model: the status bar says so rather than naming one
        if local.adapter:
            name = f"{name}+{Path(local.adapter).stem}"
        return {"source": "local", "model": name}

    @staticmethod
    def _test_model_name(spec: str, kind: str) -> str | None:
        try:
            return DeterministicSource.from_spec(spec, kind=kind).model
        except GoldiffError:
            return None

    def prewarm(self) -> None:
        """Load the local model now (in a worker) so the first completion is not the slow one."""
        if self.server.settings.mode not in ("local", "shadow"):
            return

        def run() -> None:
            try:
                self.local_source()
            except ModelLoadError:
                pass  # told the user once already
            except GoldiffError as exc:
                self._tell_once(f"Goldiff: {exc}")

        self._executor.submit(run)

    # ------------------------------------------------------------------ context

    def _on_edit(self, doc: Document, edit: EditRecord) -> None:
        if edit.kind != "change":
            return
        edits = self._recent.setdefault(doc.uri, deque(maxlen=RECENT_EDITS))
        last = edits[-1] if edits else None
        if (
            last is not None
            and edit.removed == 0
            and last.removed == 0
            and last.offset + len(last.inserted) == edit.offset
            and len(last.inserted) < 200
        ):
            # Typing: one edit per run of characters, as a person would describe it.
            edits[-1] = RecentEdit(last.offset, 0, last.inserted + edit.inserted, edit.ts)
        else:
            edits.append(RecentEdit(edit.offset, edit.removed, edit.inserted[:200], edit.ts))

    def build_request(self, doc: Document, offset: int, kind: str) -> CompletionRequest:
        request = make_request(
            doc.text[:offset],
            doc.text[offset:],
            kind=kind,
            language=doc.language,
            path=doc.path,
            recent_edits=list(self._recent.get(doc.uri, ())),
        )
        request.captured = doc.captured
        if kind == "frontier":  # only the frontier's chat prompt shows other files
            others = list(self.server.recorder.documents.values())
            request.snippets = related_snippets(doc, request.prefix, others)
        return request

    # ------------------------------------------------------------------ the request

    async def inline_completion(
        self, params: types.InlineCompletionParams
    ) -> types.InlineCompletionList | None:
        received = time.perf_counter()
        uri = params.text_document.uri
        doc = self.server.recorder.documents.get(uri)
        if doc is None:
            return None
        pos = params.position
        try:
            offset = doc.offset_at(pos.line, pos.character)
        except OutOfSync:
            return None
        mode = self.server.settings.mode
        kind = "local" if mode == "local" else "frontier"
        before, after = doc.text[:offset], doc.text[offset:]
        cache_key = (mode, kind, *self._source_key(kind))
        hit = self.cache.lookup(uri, cache_key, before, after)
        if hit is not None:
            sid, rest = hit
            if doc.captured:
                self.server.store.record_suggestion_event(sid, "reused", {"remaining": len(rest)})
            self.server.outcomes.suggestion_reused(doc, sid, offset, rest)
            return types.InlineCompletionList(items=[self._item(sid, rest, pos)])

        # The shown path comes first: hidden shadow work still running gives way (its model
        # would compete for the same cores), and is not recorded.
        self._shadow_cancel.set()
        generation = self._generation.get(uri, 0) + 1
        self._generation[uri] = generation
        previous = self._inflight.pop(uri, None)
        if previous is not None:
            previous.set()  # a newer request supersedes it
        now = time.monotonic()
        last = self._last_request.get(uri)
        self._last_request[uri] = now
        invoked = params.context.trigger_kind == types.InlineCompletionTriggerKind.Invoked
        if not invoked and last is not None and now - last < BURST_SECONDS:
            await asyncio.sleep(DEBOUNCE_SECONDS)
            if self._generation.get(uri) != generation:
                return None
        version = doc.version
        request = self.build_request(doc, offset, kind)
        cancel = threading.Event()
        self._inflight[uri] = cancel
        loop = asyncio.get_running_loop()
        try:
            completion = await loop.run_in_executor(self._executor, self._complete, kind, request, cancel)
        except asyncio.CancelledError:
            cancel.set()
            raise
        except ConfigError as exc:
            self._tell_once(f"Goldiff: {exc}")
            return None
        except ModelLoadError:
            return None  # told once when it first failed: capture-only until fixed
        except EngineError:
            # The engine died or hung under this request (the user was told once); it is
            # restarting. Answer, with nothing to show.
            return types.InlineCompletionList(items=[])
        except GoldiffError as exc:
            # Frontier failures come and go (rate limits, network): say so, but not twice in a row.
            self._tell_once(f"Goldiff: {exc}", types.MessageType.Warning)
            return None
        finally:
            if self._inflight.get(uri) is cancel:
                del self._inflight[uri]
        if cancel.is_set() or doc.version != version or self.server.recorder.documents.get(uri) is not doc:
            return None  # superseded, or the document moved on while the model ran
        self._told.clear()  # a success: the next failure is news again
        sid = str(uuid.uuid4())
        server_ms = (time.perf_counter() - received) * 1000.0
        self._record(doc, sid, mode, None, pos, offset, request, completion, server_ms)
        if mode == "shadow":
            self._start_shadow(doc, sid, pos, offset, request)
        if not completion.text:
            return types.InlineCompletionList(items=[])
        self.cache.add(sid, uri, cache_key, before, after, completion.text)
        self.server.outcomes.suggestion_made(doc, sid, offset, completion.text, source=completion.source)
        return types.InlineCompletionList(items=[self._item(sid, completion.text, pos)])

    def _source_key(self, kind: str) -> tuple[str, ...]:
        fr, local = self.server.settings.frontier, self.server.settings.local
        if kind == "frontier":
            return (fr.provider, fr.base_url or "", fr.model or "")
        return (local.model or "", local.adapter or "", local.endpoint or "", str(self.registry.signature()))

    def _complete(self, kind: str, request: CompletionRequest, cancel: threading.Event) -> Completion:
        if cancel.is_set():
            return Completion([], kind, "", stop_reason="cancelled")
        source = self.frontier_source() if kind == "frontier" else self.local_source()
        return source.complete(request, cancel)

    @staticmethod
    def _item(sid: str, text: str, pos: types.Position) -> types.InlineCompletionItem:
        return types.InlineCompletionItem(
            insert_text=text,
            range=types.Range(start=pos, end=pos),
            command=types.Command(title="Goldiff: accepted", command=ACCEPTED, arguments=[sid]),
        )

    def _record(
        self,
        doc: Document,
        sid: str,
        mode: str,
        shadow_of: str | None,
        pos: types.Position,
        offset: int,
        request: CompletionRequest,
        completion: Completion,
        server_ms: float | None,
    ) -> None:
        if not doc.captured:
            return  # capture is off or the file is excluded: suggest, but keep nothing
        context: dict[str, Any] = {
            "language": request.language,
            "path": request.path,
            "recentEdits": [dataclasses.asdict(e) for e in request.recent_edits],
            "snippets": [dataclasses.asdict(s) for s in request.snippets],
            "stopReason": completion.stop_reason,
            "reusedTokens": completion.reused_tokens,
            "maxTokens": request.max_tokens,
            "serverMs": server_ms,
            "rawText": completion.raw_text,
        }
        if completion.token_logprobs:
            # What the show/hide gate (goldiff.gate) learns from, with the outcome.
            context["logprobs"] = [round(v, 4) for v in completion.token_logprobs]
            # Where each token ended in rawText: the gate learns where to stop from both.
            context["tokenEnds"] = completion.token_ends
        if completion.gate_score is not None:
            context["gateScore"] = round(completion.gate_score, 4)
        row: SuggestionRow = {
            "id": sid,
            "session_id": self.server.recorder.session_id,
            "document_id": doc.id,
            "version": doc.version,
            "ts": self.server.clock(),
            "source": completion.source,
            "model": completion.model,
            "mode": mode,
            "shadow_of": shadow_of,
            "line": pos.line,
            "character": pos.character,
            "offset": offset,
            "prefix": request.prefix,
            "suffix": request.suffix,
            "context": json.dumps(context),
            "text": completion.text,
            "latency_ms": round(completion.latency_ms, 3),
            "prompt_tokens": completion.prompt_tokens,
            "completion_tokens": completion.completion_tokens,
        }
        if shadow_of is not None:
            row["shown"] = 0  # computed beside a shown suggestion; never shown
        if not completion.text:
            row["shown"] = 0
            row["outcome"] = "empty"  # nothing to show: counted, for the empty-suggestion rate
        self.server.store.record_suggestion(row)

    def _start_shadow(
        self, doc: Document, shown_id: str, pos: types.Position, offset: int, request: CompletionRequest
    ) -> None:
        """Ask the local model the same question in the background; only the newest waits."""
        self._shadow_seq += 1
        seq = self._shadow_seq
        cancel = self._shadow_cancel = threading.Event()
        local_request = dataclasses.replace(request, max_seconds=_budget(LOCAL_MAX_SECONDS), snippets=[])

        def run() -> None:
            if seq != self._shadow_seq or cancel.is_set():
                return  # a newer request came first: compare on a later one
            try:
                completion = self.local_source().complete(local_request, cancel)
            except GoldiffError as exc:
                log.info("shadow completion failed: %s", exc)
                return
            if cancel.is_set():
                return  # cut short by the next request: not a fair sample of the local model
            self._record(
                doc, str(uuid.uuid4()), "shadow", shown_id, pos, offset, local_request, completion, None
            )

        self._shadow_executor.submit(run)
