"""Proposals: edit episodes, their turns, what was kept, and agents' changes.

It follows every edit proposal — a model's rewrite asked for with `goldiff.proposeEdit`,
or a coding agent's changes to a file during one terminal command — from the moment it
is made to the settle of its episode, and writes proposals and episodes through the
store's queue. It listens to the recorder (edits, saves, closes, changes on disk,
terminal commands) and runs on the server's event loop thread, like the outcome tracker,
whose timers it shares so tests drive both with one manual clock. The rules it applies
are in the package docstring (`goldiff.agent`).
"""

from __future__ import annotations

import json
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from goldiff.agent.recognise import agent_of
from goldiff.capture.documents import Document
from goldiff.capture.paths import git_output, uri_to_path
from goldiff.outcomes.episodes import (
    Activity,
    Episode,
    EpisodeTracker,
    Proposal,
    Scheduler,
    as_applied,
    whole_lines,
)
from goldiff.outcomes.spans import Span, common_ends, diff_edits
from goldiff.protocol import TerminalCommand
from goldiff.store import EditRecord, TraceStore

EXTERNAL_BUFFER = 1000  # recent changes on disk kept until a terminal command claims them
EXTERNAL_KEEP_SECONDS = 3600.0  # ... or until they are this old
EXTERNAL_MAX_CHARS = 32_000_000  # ... or until the texts they hold exceed this
WINDOW_SLACK_SECONDS = 1.0  # file times are coarse on some file systems; agents flush late
RELOAD_SECONDS = 5.0  # an editor reload seen before the watcher: how recent it must be


@dataclass(eq=False, kw_only=True)
class DocEdits(Activity):
    """What the tracker follows in one document (by URI: a file keeps its state when it
    is opened after an agent changed it on disk)."""

    uri: str
    text: str  # our own copy: a change is classified against the text it was applied to
    document_id: str
    episodes: list[Episode] = field(default_factory=list)
    check_scheduled: bool = False
    disk_text: str | None = None  # the file changed on disk: the text the editor will reload
    disk_mtime: float = 0.0
    version: int | None = None
    before_version: str = ""  # the text before the current version's changes
    version_at: float = 0.0  # wall time the current version began
    before_unknown: bool = False  # a closed file first seen changed: its old text is not ours


@dataclass
class ExternalChange:
    uri: str
    before: str | None  # None: a closed file first seen changed (its text at git HEAD, if any)
    after: str
    at: float  # wall-clock seconds (the file's modification time)

    def size(self) -> int:
        return len(self.before or "") + len(self.after)


@dataclass
class AgentRun:
    agent: str
    command_line: str
    started_at: float
    ended_at: float


class ProposalTracker(EpisodeTracker[DocEdits]):
    def __init__(
        self,
        store: TraceStore,
        *,
        session_id: Callable[[], str | None] = lambda: None,
        settle_seconds: Callable[[], float] = lambda: 10.0,
        agents: Callable[[], Sequence[str]] = lambda: (),
        mode: Callable[[], str] = lambda: "",
        clock: Callable[[], float] = time.time,
        schedule: Scheduler | None = None,
    ) -> None:
        super().__init__(store, session_id, settle_seconds, clock, schedule)
        self._agents = agents
        self._mode = mode
        self._episodes: dict[str, Episode] = {}
        self._proposals: dict[str, tuple[Episode, Proposal]] = {}
        self._external: deque[ExternalChange] = deque(maxlen=EXTERNAL_BUFFER)
        self._external_chars = 0
        self._runs: deque[AgentRun] = deque(maxlen=20)

    # ------------------------------------------------------------------ edit requests

    def state(self, doc: Document) -> DocEdits:
        state = self._docs.get(doc.uri)
        if state is None:
            state = self._docs[doc.uri] = DocEdits(
                uri=doc.uri, text=doc.text, document_id=doc.id, version=doc.version, before_version=doc.text
            )
        return state

    def episode(self, episode_id: str) -> Episode | None:
        return self._episodes.get(episode_id)

    def begin_turn(
        self, doc: Document, start: int, end: int, *, episode_id: str | None, source: str
    ) -> tuple[Episode, int, int]:
        """Open (or continue) the episode for region [start, end) of `doc`, widened to whole
        lines; return it and the turn's region as offsets in the current text."""
        state = self.state(doc)
        self._sync(state, doc)
        text = state.text
        start, end = whole_lines(text, start, end)
        episode = self._episodes.get(episode_id) if episode_id else None
        if episode_id and (episode is None or episode.uri != doc.uri):
            raise KeyError(episode_id)
        if episode is None:
            region = Span(start, end, grow_start=True, grow_end=True)
            episode = self._open(state, "edit", source, self.clock(), region, text[start:end], text, start)
        else:
            episode.widen(text, start, end)
        return episode, start, end

    def add_proposal(
        self,
        episode: Episode,
        *,
        start: int,
        end: int,
        text: str,
        source: str,
        model: str,
        instruction: str,
        rng: dict[str, Any] | None,
        context: dict[str, Any] | None,
        latency_ms: float,
        shadow_of: str | None = None,
        kind: str = "edit",
        outcome: str = "pending",
        before: str | None = None,
        ts: float | None = None,
    ) -> Proposal:
        """Record a turn of `episode` over [start, end) of the text, the region `before` it
        (by default the document's text there now)."""
        before = self._docs[episode.uri].text[start:end] if before is None else before
        turn = len([p for p in episode.proposals if p.outcome != "shadow"]) + (0 if shadow_of else 1)
        proposal = Proposal(
            id=str(uuid.uuid4()),
            turn=turn,
            source=source,
            text=text,
            before=before,
            outcome="shadow" if shadow_of else outcome,
            span=None if shadow_of or outcome != "pending" else Span(start, end),
        )
        episode.proposals.append(proposal)
        if not shadow_of:
            episode.instructions.append(instruction)
            if not episode.context:
                episode.context = dict(context or {})
            self._proposals[proposal.id] = (episode, proposal)
        self.store.record_proposal(
            {
                "id": proposal.id,
                "episode_id": episode.id,
                "session_id": self._session_id(),
                "document_id": episode.document_id,
                "turn": turn,
                "ts": self.clock() if ts is None else ts,
                "kind": kind,
                "source": source,
                "model": model,
                "mode": self._mode(),
                "shadow_of": shadow_of,
                "instruction": instruction,
                "range": None if rng is None else json.dumps(rng),
                "start_offset": start,
                "end_offset": end,
                "before": before,
                "context": None if context is None else json.dumps(context),
                "text": text,
                "outcome": None if shadow_of else proposal.outcome,
                "latency_ms": latency_ms,
            },
        )
        return proposal

    def proposal_span(self, proposal_id: str) -> Span | None:
        """Where a pending proposal applies now (the document may have moved meanwhile)."""
        found = self._proposals.get(proposal_id)
        return None if found is None else found[1].span

    def resolve(self, proposal_id: str, applied: bool) -> None:
        """The editor answered the proposal's `workspace/applyEdit`."""
        found = self._proposals.get(proposal_id)
        if found is None:
            return
        episode, proposal = found
        if proposal.outcome != "pending":
            return
        proposal.outcome = "accepted" if applied else "rejected"
        proposal.span = None
        self.store.update_proposal(proposal.id, {"outcome": proposal.outcome})
        state = self._docs.get(episode.uri)
        if state is not None:
            self._schedule_settle(state)

    # ------------------------------------------------------------------ the recorder's events

    def on_edit(self, doc: Document, edit: EditRecord) -> None:
        if edit.kind == "external" and doc.uri not in self._docs:
            # A closed file we never saw: what it was before is looked up (at git HEAD) only
            # if an agent's run claims the change, so a checkout of 5,000 files costs nothing.
            self._docs[doc.uri] = DocEdits(
                uri=doc.uri, text="", document_id=doc.id, version=doc.version, before_unknown=True
            )
        state = self.state(doc)
        old = state.text
        now = self.clock()
        if edit.kind != "open" and (doc.version != state.version or edit.kind == "external"):
            state.before_version = old
            state.version_at = time.time()
            state.version = doc.version
        external = edit.kind == "external"
        disk = state.disk_text
        if disk is not None and len(disk) == len(doc.text) and doc.text == disk and not external:
            # The editor reloaded the file an agent (or another program) changed on disk.
            seen: tuple[str | None, float] | None = (state.before_version, state.disk_mtime)
            state.disk_text = None
            external = True
        elif external:
            seen = (None if state.before_unknown else old, _mtime(doc.uri))
            state.before_unknown = False
        else:
            seen = None
        if state.episodes:
            edits = as_applied(old, doc.text, edit) or diff_edits(old, doc.text)
            spans = [e.region for e in state.episodes]
            spans += [p.span for e in state.episodes for p in e.proposals if p.span is not None]
            for a, r, inserted in edits:
                for span in spans:
                    span.apply(a, r, len(inserted))
        # The edit history an edit prompt shows (open documents only; keystrokes are cheap
        # to keep: both texts are the recorder's own strings, not copies).
        state.edited(edit, doc.text, now, external=external)
        state.document_id = state.document_id or doc.id
        if seen is not None:
            # Last: an agent's episode opened from it must see our copy already updated.
            self._external_seen(state, seen[0], doc.text, seen[1])
        self._schedule_settle(state)

    def on_open(self, doc: Document) -> None:
        """A document opened: our copy starts from its text (a file an agent changed while it
        was closed keeps its state, and the open text is diffed against ours)."""
        self._sync(self.state(doc), doc)

    def _sync(self, state: DocEdits, doc: Document) -> None:
        """Bring our copy in line with the document (an edit we were not told about)."""
        if state.text != doc.text:
            self.on_edit(doc, EditRecord(doc.id, "resync", doc.version, 0.0, 0.0))

    def on_external(self, doc: Document, disk_text: str) -> None:
        """An open document changed on disk; the editor's reload follows as a didChange."""
        state = self.state(doc)
        mtime = _mtime(doc.uri)
        if disk_text == state.text:
            # The editor reloaded before our watcher saw the file: its last change was it.
            if time.time() - state.version_at <= RELOAD_SECONDS and state.before_version != disk_text:
                self._external_seen(state, state.before_version, disk_text, mtime)
            return
        state.disk_text = disk_text
        state.disk_mtime = mtime

    def on_save(self, doc: Document) -> None:
        state = self._docs.get(doc.uri)
        if state is None:
            return
        state.dirty = False
        self._schedule_settle(state)

    def on_close(self, doc: Document) -> None:
        state = self._docs.pop(doc.uri, None)
        if state is not None:
            self._settle(state, "close")
            if state.episodes:
                self._docs[doc.uri] = state  # still waiting on an editor's answer

    # ------------------------------------------------------------------ external agents

    def _external_seen(self, state: DocEdits, before: str | None, after: str, at: float) -> None:
        if before == after:
            return
        change = ExternalChange(state.uri, before, after, at)
        for run in self._runs:
            if run.started_at - WINDOW_SLACK_SECONDS <= at <= run.ended_at + WINDOW_SLACK_SECONDS:
                # Seen after the command's notification (a slow watcher): attribute it now.
                self._attribute(run, [change])
                return
        self._external.append(change)
        self._external_chars += change.size()
        while self._external_chars > EXTERNAL_MAX_CHARS and len(self._external) > 1:
            self._external_chars -= self._external.popleft().size()

    def terminal_command(self, cmd: TerminalCommand) -> None:
        """A terminal command finished: link it to open episodes; claim an agent's changes.

        Its `started_at`/`ended_at` are the client's epoch milliseconds.
        """
        self._link_command({"command_line": cmd.command_line, "exit_code": cmd.exit_code, "at": self.clock()})
        agent = agent_of(cmd.command_line, self._agents())
        if agent is None or cmd.started_at is None:
            return
        ended_at = (cmd.ended_at or time.time() * 1000) / 1000
        run = AgentRun(agent, cmd.command_line, cmd.started_at / 1000, ended_at)
        cutoff = time.time() - EXTERNAL_KEEP_SECONDS
        claimed, kept = [], deque[ExternalChange](maxlen=EXTERNAL_BUFFER)
        for change in self._external:
            if run.started_at - WINDOW_SLACK_SECONDS <= change.at <= run.ended_at + WINDOW_SLACK_SECONDS:
                claimed.append(change)
            elif change.at >= cutoff:
                kept.append(change)
        self._external = kept
        self._external_chars = sum(c.size() for c in kept)
        self._runs.append(run)
        self._attribute(run, claimed)

    def _attribute(self, run: AgentRun, changes: list[ExternalChange]) -> None:
        # A file's changes during one run make one proposal: from the text before the
        # run's first change to the text after its last. A change the watcher reports only
        # after the command's notification was handled opens an episode of its own.
        by_uri: dict[str, list[ExternalChange]] = {}
        for change in changes:
            by_uri.setdefault(change.uri, []).append(change)
        for uri, seen in by_uri.items():
            state = self._docs.get(uri)
            if state is not None:
                before = seen[0].before
                if before is None:
                    path = uri_to_path(uri)
                    before = (git_head_text(path) if path is not None else None) or ""
                if before != seen[-1].after:  # (a file rewritten with what it had: no proposal)
                    self._agent_episode(state, run, before, seen[-1].after)

    def _agent_episode(self, state: DocEdits, run: AgentRun, before: str, after: str) -> None:
        """One episode per file an agent changed: the changed lines, as the agent left them."""
        b_start, b_end, a_start, a_end = changed_lines(before, after)
        region = Span(a_start, a_end, grow_start=True, grow_end=True)
        if state.text != after:
            # The developer (or the editor) moved on since: carry the region along.
            for a, r, inserted in diff_edits(after, state.text):
                region.apply(a, r, len(inserted))
        episode = self._open(
            state, "agent", run.agent, run.started_at, region, before[b_start:b_end], before, b_start
        )
        episode.context = {"agent": run.agent, "command_line": run.command_line}
        self.add_proposal(
            episode,
            start=b_start,
            end=b_end,
            text=after[a_start:a_end],
            source=run.agent,
            model=run.agent,
            instruction=run.command_line,
            rng=None,
            context=None,
            latency_ms=(run.ended_at - run.started_at) * 1000,
            kind="agent",
            outcome="accepted",  # an agent writes the file itself: applied as proposed
            before=before[b_start:b_end],
            ts=run.ended_at,
        )
        self._schedule_settle(state)

    # ------------------------------------------------------------------ episodes and settle

    def _open(
        self,
        state: DocEdits,
        kind: str,
        source: str,
        at: float,
        region: Span,
        before: str,
        text: str,
        start: int,
    ) -> Episode:
        """Open an episode over `region`, whose text was `before` at `start` in `text`."""
        episode = Episode(
            id=str(uuid.uuid4()),
            kind=kind,
            uri=state.uri,
            document_id=state.document_id,
            path=_path_of(state.uri),
            source=source,
            started_at=at,
            region=region,
            before=before,
            old_line=text.count("\n", 0, start),
        )
        state.episodes.append(episode)
        self._episodes[episode.id] = episode
        self._episode_opened(episode)
        return episode

    def _activity_of(self, state: DocEdits) -> Activity:
        return state

    def _settle(self, state: DocEdits, why: str) -> None:
        now = self.clock()
        final = why in ("commit", "close", "shutdown")
        for episode in list(state.episodes):
            pending = [p for p in episode.proposals if p.outcome == "pending"]
            if pending and not final:
                continue  # the editor has not answered yet
            for p in pending:
                p.outcome = "rejected"  # never answered: nothing was applied
                p.span = None
                self.store.update_proposal(p.id, {"outcome": "rejected"})
            self._episode_ended(episode, state.text, now)
            for p in episode.proposals:
                self._proposals.pop(p.id, None)
            state.episodes.remove(episode)
            self._episodes.pop(episode.id, None)
            self.store.record_event(
                "episode_settled",
                session_id=self._session_id(),
                document_id=episode.document_id,
                detail={"episode": episode.id, "why": why, "kind": episode.kind},
                ts=now,
            )


# ---------------------------------------------------------------------------- pure helpers


def changed_lines(before: str, after: str) -> tuple[int, int, int, int]:
    """The whole-line region that differs: [b_start, b_end) of `before`, [a_start, a_end) of `after`."""
    b_lines = before.splitlines(keepends=True)
    a_lines = after.splitlines(keepends=True)
    p, s = common_ends(b_lines, a_lines)
    # The shared lines are the same on both sides, and so are their lengths.
    start = sum(map(len, b_lines[:p]))
    tail = sum(map(len, b_lines[len(b_lines) - s :]))
    return start, len(before) - tail, start, len(after) - tail


def _mtime(uri: str) -> float:
    path = uri_to_path(uri)
    try:
        return path.stat().st_mtime if path is not None else time.time()
    except OSError:
        return time.time()


def _path_of(uri: str) -> str:
    path = uri_to_path(uri)
    if path is None:
        return uri
    root = _git_root(path)
    return path.relative_to(root).as_posix() if root is not None else path.name


def _git_root(path: Path) -> Path | None:
    for parent in path.parents:
        if (parent / ".git").exists():
            return parent
    return None


def git_head_text(path: Path) -> str | None:
    """The file's text at the repository's HEAD (what a closed file was before an agent)."""
    root = _git_root(path)
    if root is None:
        return None
    out = git_output(root, "show", f"HEAD:{path.relative_to(root).as_posix()}", timeout=2)
    return out.decode("utf-8", "replace") if out is not None else None
