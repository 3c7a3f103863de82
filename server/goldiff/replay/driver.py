"""Drive a real `goldiff serve` over LSP through a git history, as one editor session.

The driver starts the server as a subprocess (its own process group, so a Ctrl-C in the
terminal reaches only the driver, which then shuts the server down properly), opens the
repository as the workspace, and for each commit performs every changed file's hunks
(`developer`), saving and closing each file, then sends `goldiff.commit`. That command
answers only once the store holds everything up to the commit, so the store itself
remembers how far a replay got: a later run skips the commits recorded there (`resume`).
Deleted files are not replayed (an editor does not type a deletion of a whole file).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.client import LanguageClient

import goldiff
from goldiff import protocol
from goldiff.capture.documents import Document, OutOfSync, utf16_len
from goldiff.errors import ReplayError
from goldiff.home import resolve_home, store_path
from goldiff.protocol import ACCEPTED, ADVANCE_CLOCK, language_of
from goldiff.replay.developer import Developer, DeveloperProfile, accepted_length, hunks, next_keystroke
from goldiff.replay.history import Commit, FileChange, list_commits, read_commits, repository_root

YIELD_EVERY = 64  # keystrokes between yields to the event loop, so the pipe to the server drains


@dataclass
class ReplayOptions:
    rev_range: str | None = None  # `A..B` or a revision; None: all of HEAD
    seed: int = 0
    include: tuple[str, ...] = ()  # glob patterns of files to replay; empty: every text file
    max_commits: int | None = None  # stop after this many (not counting already replayed ones)
    settings: dict[str, Any] = field(default_factory=dict)  # initializationOptions for the server
    profile: DeveloperProfile = field(default_factory=DeveloperProfile)
    resume: bool = True  # skip commits already replayed into this home
    commit_seconds: float = 30.0  # simulated time between the last save and the commit
    # A hunk longer than this (code points) is typed up to here and the rest pasted in one
    # change, as developers paste or generate long blocks; None types everything.
    paste_over: int | None = None
    ask_completions: bool = True  # False: only type (capture), never request a completion
    # At most this many completion requests per commit (the rest of it is only typed): bounds
    # a replay's time when the model is slow; None: no bound.
    max_requests_per_commit: int | None = None


@dataclass
class ReplayResult:
    commits: int = 0  # replayed in this run
    already_replayed: int = 0  # skipped because the store holds them
    files: int = 0
    deleted_files: int = 0  # not replayed
    keystrokes: int = 0
    chars_typed: int = 0
    chars_accepted: int = 0  # inserted by accepting (all or part of) a suggestion
    chars_pasted: int = 0  # inserted by pasting the rest of a long hunk (see paste_over)
    requests: int = 0  # inline completion requests sent
    suggestions: int = 0  # non-empty suggestions shown
    accepted: int = 0
    partial: int = 0
    rejected: int = 0
    simulated_seconds: float = 0.0  # the developer's logical time
    wall_seconds: float = 0.0
    interrupted: bool = False
    last_commit: str | None = None
    completions_offered: bool = False  # the server advertised inline completion
    messages: list[str] = field(default_factory=list)  # what the server told the user

    @property
    def chars_per_second(self) -> float:
        return (self.chars_typed + self.chars_accepted) / self.wall_seconds if self.wall_seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "chars_per_second": round(self.chars_per_second, 1)}


class Progress:
    """What a replay reports as it goes (`RichProgress` draws it); this base reports nothing."""

    def start(self, total_commits: int, already_replayed: int) -> None: ...
    def commit_started(self, commit: Commit) -> None: ...
    def typed(self, chars: int) -> None: ...
    def commit_done(self, commit: Commit) -> None: ...
    def message(self, text: str) -> None: ...


class _Buffer:
    """The editor's copy of one open document; every change goes out as incremental didChange."""

    def __init__(self, client: LanguageClient, uri: str, language: str, text: str) -> None:
        self.client = client
        self.uri = uri
        self.text = text
        self.version = 1
        client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(uri=uri, language_id=language, version=1, text=text)
            )
        )

    def position(self, offset: int) -> types.Position:
        line_start = self.text.rfind("\n", 0, offset) + 1
        return types.Position(
            line=self.text.count("\n", 0, offset), character=utf16_len(self.text[line_start:offset])
        )

    def offset(self, pos: types.Position) -> int | None:
        try:
            return Document("", self.uri, "", self.version, self.text).offset_at(pos.line, pos.character)
        except OutOfSync:
            return None

    def replace(self, start: int, end: int, new_text: str) -> None:
        rng = types.Range(start=self.position(start), end=self.position(end))
        self.text = self.text[:start] + new_text + self.text[end:]
        self.version += 1
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=self.uri, version=self.version),
                content_changes=[types.TextDocumentContentChangePartial(range=rng, text=new_text)],
            )
        )

    def save(self) -> None:
        doc = types.TextDocumentIdentifier(uri=self.uri)
        self.client.text_document_did_save(types.DidSaveTextDocumentParams(text_document=doc, text=self.text))

    def close(self) -> None:
        doc = types.TextDocumentIdentifier(uri=self.uri)
        self.client.text_document_did_close(types.DidCloseTextDocumentParams(text_document=doc))


def replayed_commits(home: Path, repository_uri: str) -> tuple[set[str], float | None]:
    """Commits of this repository whose boundary the store in `home` holds, and its last event time."""
    path = store_path(home)
    if not path.exists():
        return set(), None
    from goldiff.records import iter_events, last_event_at
    from goldiff.store import open_database

    db, _ = open_database(path)
    with contextlib.closing(db):
        commits = [e.detail for e in iter_events(db, "commit")]
        last = last_event_at(db)
    done = {
        str(data.get("sha"))
        for data in commits
        if data.get("source") == "replay" and data.get("workspace") == repository_uri
    }
    return done, last


class _Session:
    def __init__(self, root: Path, home: Path, options: ReplayOptions, progress: Progress) -> None:
        self.root = root
        self.root_uri = root.as_uri()
        self.home = home
        self.options = options
        self.progress = progress
        self.result = ReplayResult()
        self.stop = asyncio.Event()
        self.client = LanguageClient("goldiff-replay", goldiff.__version__)
        self._stderr_tail = b""
        self._pending_seconds = 0.0  # simulated time the server's clock has not seen yet
        self._decided: set[str] = set()  # suggestion ids the developer already acted on
        self._commit_requests = 0
        self._stderr_task: asyncio.Task[None] | None = None

        @self.client.feature(types.WINDOW_SHOW_MESSAGE)  # type: ignore[untyped-decorator]
        def show_message(params: types.ShowMessageParams) -> None:
            self.result.messages.append(params.message)
            self.progress.message(params.message)

        @self.client.feature(types.WINDOW_LOG_MESSAGE)  # type: ignore[untyped-decorator]
        def log_message(params: types.LogMessageParams) -> None:
            pass

    # ------------------------------------------------------------------ server

    async def start_server(self) -> None:
        log_file = self.home / "replay-server.log"
        serve = ["-m", "goldiff", "serve", "--home", str(self.home), "--log-file", str(log_file)]
        # The server's clock follows the developer's simulated time, moved by
        # `ADVANCE_CLOCK`: its timers (settle, survival checkpoints, timeouts) fire in
        # logical time, so a replay is reproducible.
        serve += ["--clock", "logical"]
        env = dict(os.environ, GOLDIFF_HOME=str(self.home))
        # The server must import this same goldiff, installed or not.
        package_root = str(Path(goldiff.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        await self.client.start_io(
            sys.executable,
            *serve,
            env=env,
            start_new_session=True,  # Ctrl-C goes to us; we shut the server down in order
        )
        server = self.client._server
        if server is not None and server.stderr is not None:
            self._stderr_task = asyncio.create_task(self._drain(server.stderr))
        options = {**self.options.settings}
        capture = options.get("capture", {})
        if isinstance(capture, dict):  # recording is on unless the settings turn it off
            options["capture"] = {"enabled": True, **capture}
        init = await self._request(
            self.client.initialize_async(
                types.InitializeParams(
                    process_id=os.getpid(),
                    root_uri=self.root_uri,
                    capabilities=types.ClientCapabilities(
                        text_document=types.TextDocumentClientCapabilities(
                            synchronization=types.TextDocumentSyncClientCapabilities(did_save=True),
                            inline_completion=types.InlineCompletionClientCapabilities(),
                        ),
                        workspace=types.WorkspaceClientCapabilities(workspace_folders=True),
                    ),
                    initialization_options=options,
                    workspace_folders=[types.WorkspaceFolder(uri=self.root_uri, name=self.root.name)],
                    client_info=types.ClientInfo(name="goldiff-replay", version=goldiff.__version__),
                )
            )
        )
        self.result.completions_offered = self.options.ask_completions and bool(
            init.capabilities.inline_completion_provider
        )
        self.client.initialized(types.InitializedParams())

    async def _drain(self, stream: asyncio.StreamReader) -> None:
        while chunk := await stream.read(4096):
            self._stderr_tail = (self._stderr_tail + chunk)[-4000:]

    async def _request(self, awaitable: Any) -> Any:
        try:
            return await awaitable
        except RuntimeError as exc:
            raise ReplayError(self._server_gone(str(exc))) from exc

    async def _command(self, command: str, arguments: Sequence[Any] | None) -> Any:
        params = types.ExecuteCommandParams(command=command, arguments=arguments)
        return await self._request(self.client.workspace_execute_command_async(params))

    def _server_gone(self, why: str) -> str:
        tail = self._stderr_tail.decode("utf-8", "replace").strip()
        log = self.home / "replay-server.log"
        return f"the Goldiff server stopped ({why}). Its log: {log}" + (f"\n{tail}" if tail else "")

    async def stop_server(self) -> None:
        server = self.client._server
        if server is not None and server.returncode is None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.client.shutdown_async(None), timeout=60)
            with contextlib.suppress(Exception):
                self.client.exit(None)
            try:
                await asyncio.wait_for(server.wait(), timeout=30)
            except TimeoutError:
                server.kill()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.client.stop(), timeout=10)  # type: ignore[no-untyped-call]
        if self._stderr_task is not None:
            self._stderr_task.cancel()

    def pause(self, seconds: float) -> None:
        self.result.simulated_seconds += seconds
        self._pending_seconds += seconds

    async def sync_clock(self) -> None:
        """Move the server's clock by the simulated time since the last sync (its timers run)."""
        if self._pending_seconds <= 0:
            return
        seconds, self._pending_seconds = self._pending_seconds, 0.0
        await self._command(ADVANCE_CLOCK, [{"seconds": seconds}])

    async def clock_after(self, last_event: float | None) -> None:
        """Start the logical clock after everything already in the store, so time only moves on.

        An earlier replay's simulated time may run ahead of the wall clock; a resumed one
        continues from there instead of going back.
        """
        if last_event is None:
            return
        answer = await self._command(ADVANCE_CLOCK, [{"seconds": 0}])
        now = float(protocol.as_plain(answer).get("now", last_event))
        if now <= last_event:
            self._pending_seconds += last_event - now + 1.0
            await self.sync_clock()

    # ------------------------------------------------------------------ history

    async def run(self, commits: Iterator[Commit]) -> None:
        for commit in commits:
            if self.stop.is_set():
                break
            self.progress.commit_started(commit)
            self._commit_requests = 0
            # Files stay open until the commit, as in an editor, so they settle at the commit.
            open_files: list[_Buffer] = []
            for change in commit.changes:
                if self.stop.is_set():
                    break
                buf = await self.replay_file(commit, change)
                if buf is not None:
                    open_files.append(buf)
            stopped = self.stop.is_set()
            if not stopped:
                self.pause(self.options.commit_seconds)
                await self.sync_clock()
                args = protocol.CommitArgs(
                    sha=commit.sha,
                    message=commit.message,
                    repository=self.root_uri,
                    author_time=commit.author_time,
                    source="replay",
                )
                await self._command(protocol.COMMIT, [protocol.unstructure(args)])
            for buf in open_files:
                buf.close()
            if stopped:
                break  # interrupted: recorded below
            self.result.commits += 1
            self.result.last_commit = commit.sha
            self.progress.commit_done(commit)
        if self.stop.is_set():
            self.result.interrupted = True

    async def replay_file(self, commit: Commit, change: FileChange) -> _Buffer | None:
        """Open the file at its parent state, perform its hunks, save; return it still open."""
        if change.after is None:
            self.result.deleted_files += 1
            return None
        dev = Developer(self.options.profile, self.options.seed, commit.sha, change.path)
        self.pause(dev.switch_pause())
        before = change.before or ""
        uri = (self.root / change.path).as_uri()
        language = language_of(change.path)
        buf = _Buffer(self.client, uri, language, before)
        self.result.files += 1
        for hunk in hunks(before, change.after):
            if self.stop.is_set():
                break
            if hunk.removed:
                buf.replace(hunk.start, hunk.start + hunk.removed, "")  # select, then delete
                self.pause(dev.keystroke_pause())
            await self.type_text(buf, dev, hunk.start, hunk.text)
        if not self.stop.is_set() and buf.text != change.after:
            raise ReplayError(f"internal error: replaying {change.path} at {commit.sha[:12]} diverged")
        buf.save()
        await asyncio.sleep(0)
        return buf

    async def type_text(self, buf: _Buffer, dev: Developer, cursor: int, text: str) -> None:
        pos = 0
        last_key = ""
        since_yield = 0
        offered = self.result.completions_offered
        limit = self.options.paste_over
        while pos < len(text):
            if self.stop.is_set():
                return
            if limit is not None and pos >= limit:
                buf.replace(cursor, cursor, text[pos:])  # paste the rest of a long block
                self.result.chars_pasted += len(text) - pos
                self.pause(dev.reading_pause())
                return
            budget = self.options.max_requests_per_commit
            if offered and (budget is None or self._commit_requests < budget):
                line_before = buf.text[buf.text.rfind("\n", 0, cursor) + 1 : cursor]
                if dev.wants_completion(last_key, line_before, text[pos]):
                    used = await self.suggest(buf, dev, cursor, text[pos:])
                    if used:
                        last_key = text[pos : pos + used]
                        pos += used
                        cursor += used
                        continue
            key = next_keystroke(text, pos)
            buf.replace(cursor, cursor, key)
            pos += len(key)
            cursor += len(key)
            last_key = key
            self.result.keystrokes += 1
            self.result.chars_typed += len(key)
            self.pause(dev.keystroke_pause())
            since_yield += 1
            if since_yield >= YIELD_EVERY:
                since_yield = 0
                self.progress.typed(YIELD_EVERY)
                await asyncio.sleep(0)
                server = self.client._server
                if server is not None and server.returncode is not None:
                    raise ReplayError(self._server_gone(f"exit code {server.returncode}"))

    # ------------------------------------------------------------------ suggestions

    async def suggest(self, buf: _Buffer, dev: Developer, cursor: int, expected: str) -> int:
        """Ask for a completion at `cursor`; act on it as the developer would. Returns chars it inserted."""
        await self.sync_clock()
        self.result.requests += 1
        self._commit_requests += 1
        answer = await self._request(
            self.client.text_document_inline_completion_async(
                types.InlineCompletionParams(
                    text_document=types.TextDocumentIdentifier(uri=buf.uri),
                    position=buf.position(cursor),
                    context=types.InlineCompletionContext(
                        trigger_kind=types.InlineCompletionTriggerKind.Automatic
                    ),
                )
            )
        )
        items = answer.items if isinstance(answer, types.InlineCompletionList) else list(answer or [])
        if not items:
            return 0
        item = items[0]  # the one an editor shows first
        text = item.insert_text if isinstance(item.insert_text, str) else item.insert_text.value
        if item.range is not None:
            text = self._text_from_cursor(buf, item.range, cursor, text)
        args = item.command.arguments if item.command and item.command.command == ACCEPTED else None
        suggestion_id = str(args[0]) if args else None
        if not text or suggestion_id is None or suggestion_id in self._decided:
            return 0  # nothing new to look at (a decided one comes back from the server's cache)
        self._decided.add(suggestion_id)
        self.result.suggestions += 1
        self.client.protocol.notify(protocol.SUGGESTION_SHOWN, {"id": suggestion_id})
        self.pause(dev.reading_pause())
        n = accepted_length(text, expected)
        if n == len(text):
            buf.replace(cursor, cursor, text)  # then the item's command, as VS Code does
            if item.command is not None:
                await self._command(item.command.command, item.command.arguments)
            self.result.accepted += 1
        elif n > 0:
            buf.replace(cursor, cursor, text[:n])
            self.client.protocol.notify(
                protocol.SUGGESTION_PARTIALLY_ACCEPTED,
                {"id": suggestion_id, "acceptedLength": utf16_len(text[:n])},  # as editors count
            )
            self.result.partial += 1
        else:
            self.client.protocol.notify(
                protocol.SUGGESTION_REJECTED, {"id": suggestion_id, "reason": "typedOver"}
            )
            self.result.rejected += 1
            return 0
        self.result.chars_accepted += n
        return n

    @staticmethod
    def _text_from_cursor(buf: _Buffer, rng: types.Range, cursor: int, text: str) -> str:
        """An item whose range starts before the cursor repeats what is typed; keep the rest."""
        start = buf.offset(rng.start)
        end = buf.offset(rng.end)
        if start is None or end != cursor or start > cursor:
            return ""  # replaces text after the cursor: not something typing can match
        typed = buf.text[start:cursor]
        return text[len(typed) :] if text.startswith(typed) else ""


async def replay_async(
    repo: Path, home: Path, options: ReplayOptions | None = None, progress: Progress | None = None
) -> ReplayResult:
    """Replay `repo`'s history (see `ReplayOptions`) into the store in `home`."""
    options = options or ReplayOptions()
    progress = progress or Progress()
    home = resolve_home(home)
    root = repository_root(repo)
    shas = list_commits(root, options.rev_range)
    done, last_event = replayed_commits(home, root.as_uri())
    if not options.resume:
        done = set()
    todo = [s for s in shas if s not in done]
    if options.max_commits is not None:
        todo = todo[: options.max_commits]
    session = _Session(root, home, options, progress)
    session.result.already_replayed = sum(1 for s in shas if s in done)
    progress.start(len(todo), session.result.already_replayed)
    if not todo:
        return session.result
    started = time.monotonic()
    loop = asyncio.get_running_loop()
    handled = False
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGINT, session.stop.set)
        handled = True
    try:
        await session.start_server()
        await session.clock_after(last_event)
        await session.run(read_commits(root, todo, options.include))
    finally:
        if handled:
            loop.remove_signal_handler(signal.SIGINT)
        await session.stop_server()
        session.result.wall_seconds = time.monotonic() - started
    return session.result


def replay(
    repo: Path, home: Path, options: ReplayOptions | None = None, progress: Progress | None = None
) -> ReplayResult:
    """Blocking form of `replay_async`, for the command line."""
    return asyncio.run(replay_async(repo, home, options, progress))
