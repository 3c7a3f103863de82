"""Episodes: one piece of work in a file region, from its opening to what the developer kept.

Three kinds share this kernel. A `completion` episode opens at a suggestion
(`goldiff.outcomes`), an `edit` episode at an edit request, whose turns are proposals, and
an `agent` episode at a coding agent's change to one file (both `goldiff.agent`). Whatever
opened it, an episode has a region that grows as the developer writes at its edges, ends
when its document settles, and is one `episodes` row: the region before and after, the
gold diff between them (a unified diff with the file's real line numbers, validated with
unidiff), each proposal's kept share, the terminal commands run while it was open and the
test runs up to 30 min after it ended (`tests_passed` is the last one's result).

`detail` holds what an exporter needs without replaying the document: for an edit
episode the first turn's prompt parts at its top level (`context_before`,
`context_after`, `recent_edits`, `cursor`) and the instructions; for a completion
episode the same four keys under `context`, taken from the text the first suggestion was
made on, around the settled `before`.
"""

from __future__ import annotations

import difflib
import json
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from goldiff.outcomes import testruns
from goldiff.outcomes.diffs import unified_diff, validate
from goldiff.outcomes.spans import Span
from goldiff.prompts import EDIT_HISTORY, edit_context, edit_history
from goldiff.store import EditRecord, EpisodeRow, ProposalRow, TraceStore

RECENT_EPISODES = 200  # ended episodes kept in memory to receive later test runs
TEST_LINK_SECONDS = 1800.0  # test runs up to 30 min after an episode's end still count for it

Scheduler = Callable[[float, Callable[[], None]], None]


@dataclass(eq=False)
class Proposal:
    """One rewrite of an episode's region: a model's turn, its shadow, or an agent's change."""

    id: str
    turn: int
    source: str
    text: str  # the proposed region
    before: str  # the region's text when the turn began
    outcome: str = "pending"  # pending | accepted | rejected | shadow
    span: Span | None = None  # where the proposal applies, followed until it is decided


@dataclass(eq=False)
class Episode:
    id: str
    kind: str  # completion | edit | agent
    document_id: str
    path: str
    source: str | None
    started_at: float
    region: Span  # where the episode's text is now
    before: str  # the region's text before the episode
    old_line: int  # the region's first line (0-based) in the text before the episode
    uri: str = ""
    suggestions: list[str] = field(default_factory=list)
    proposals: list[Proposal] = field(default_factory=list)
    instructions: list[str] = field(default_factory=list)
    # edit: the first turn's prompt parts; agent: its command; completion: the
    # surroundings, filled at the end from `seen`.
    context: dict[str, Any] = field(default_factory=dict)
    # completion: the text the first suggestion was made on, the region's start and the
    # cursor in it, and the edits before it.
    seen: tuple[str, int, int, list[tuple[str, str]]] | None = None
    kept: dict[str, float | None] = field(default_factory=dict)
    commands: list[dict[str, Any]] = field(default_factory=list)
    test_runs: list[dict[str, Any]] = field(default_factory=list)
    ended_at: float | None = None

    def tests_passed(self) -> int | None:
        return None if not self.test_runs else int(bool(self.test_runs[-1]["passed"]))

    def detail(self) -> str:
        linked = {"terminal_commands": self.commands, "test_runs": self.test_runs}
        if self.kind == "completion":
            context = {"context": self.context} if self.context else {}
            return json.dumps({"suggestions": self.suggestions, **linked, **context})
        return json.dumps(
            {
                **self.context,
                "instruction": "\n".join(self.instructions) or None,
                "proposals": [p.id for p in self.proposals],
                "turns": len([p for p in self.proposals if p.outcome != "shadow"]),
                "kept_share": self.kept,
                **linked,
            }
        )

    def widen(self, text: str, start: int, end: int) -> None:
        """Take [start, end) of the current `text` into the region: its text joins `before`."""
        region = self.region
        if start < region.start:
            self.before = text[start : region.start] + self.before
            self.old_line -= text.count("\n", start, region.start)
            region.start = start
        if end > region.end:
            self.before += text[region.end : end]
            region.end = end


@dataclass(eq=False)
class Activity:
    """How a document was edited lately: what its idle settle and its episodes' history read."""

    text: str | None = None  # the document's text after its last edit, once seen
    dirty: bool = False  # edited since opened or last saved
    last_edit_at: float = 0.0
    # Its last edits, (before, after): the history an episode's context shows.
    history: deque[tuple[str, str]] = field(default_factory=lambda: deque(maxlen=EDIT_HISTORY))

    def edited(self, edit: EditRecord, text: str, now: float, *, external: bool = False) -> None:
        """`edit` made `text`; unless it is the open or a change on disk, it is unsaved."""
        changed = bool(edit.removed or edit.inserted) if edit.kind == "change" else self.text != text
        if edit.kind in ("change", "full") and changed and self.text is not None:
            self.history.append((self.text, text))
        self.text = text
        if edit.kind != "open" and not external:
            self.dirty = True
            self.last_edit_at = now


class Followed(Protocol):
    episodes: list[Episode]
    check_scheduled: bool  # a settle check is due


S = TypeVar("S", bound=Followed)


class EpisodeTracker(Generic[S]):
    """What the suggestions' and the proposals' trackers share: their documents' episodes
    settle when the document has been idle `settle_seconds` with no unsaved edits, at a
    commit, a close or the server's exit, and the terminal's commands are linked to them."""

    def __init__(
        self,
        store: TraceStore,
        session_id: Callable[[], str | None],
        settle_seconds: Callable[[], float],
        clock: Callable[[], float],
        schedule: Scheduler | None,
    ) -> None:
        self.store = store
        self.clock = clock
        self._session_id = session_id
        self._settle_seconds = settle_seconds
        self._schedule = schedule  # None: no idle settles (commit and close still settle)
        self._docs: dict[str, S] = {}
        self.recent: deque[Episode] = deque(maxlen=RECENT_EPISODES)  # ended, for later test runs
        self._closed = False

    def _episode_opened(self, episode: Episode) -> None:
        self._write(episode, {"start_offset": episode.region.start, "end_offset": episode.region.end})

    def _episode_ended(self, episode: Episode, text: str, now: float) -> None:
        """End `episode` in the document's current `text`: its gold diff, kept shares, row."""
        start, end = episode.region.start, episode.region.end
        # Whole lines on both sides: the text that completes a partial line is unchanged
        # context, so it joins `before` and `after` alike.
        head_start = text.rfind("\n", 0, start) + 1
        tail_end = end if end == 0 or text[end - 1 : end] == "\n" or end == len(text) else line_end(text, end)
        head, tail = text[head_start:start], text[end:tail_end]
        before = head + episode.before + tail
        after = text[head_start:tail_end]
        old_line = episode.old_line - head.count("\n")
        diff = unified_diff(before, after, episode.path, old_line, text.count("\n", 0, head_start))
        if diff and not validate(diff):
            diff = ""
        for p in episode.proposals:
            share = episode.kept[p.id] = kept_share(p.before, p.text, after)
            values: ProposalRow = {"kept_share": share, "settled_at": now}
            if p.outcome == "accepted" and episode.kind == "agent" and share == 0.0:
                p.outcome = values["outcome"] = "rejected"  # the developer undid all of it
            self.store.update_proposal(p.id, values)
        if episode.seen is not None:
            seen_text, near, cursor, history = episode.seen
            episode.context = surroundings(seen_text, before, near, cursor)
            if episode.context:
                episode.context["recent_edits"] = edit_history(history, episode.path or "file")
            episode.seen = None  # the text may be large; the context is what is kept
        episode.ended_at = now
        self.recent.append(episode)
        self._write(
            episode,
            {
                "ended_at": now,
                "start_offset": head_start,
                "end_offset": tail_end,
                "before": before,
                "after": after,
                "gold_diff": diff,
                "tests_passed": episode.tests_passed(),
                "detail": episode.detail(),
            },
        )

    def _link_command(self, entry: dict[str, Any]) -> None:
        """Link a terminal command to the open episodes; a test run also to recently ended ones.

        `entry` holds `command_line`, `exit_code` and `at`; ended episodes that get a new
        test run are rewritten in the store. A commit settles every episode.
        """
        open_list = [e for s in self._docs.values() for e in s.episodes]
        for episode in open_list:
            episode.commands.append(entry)
        exit_code = entry.get("exit_code")
        test = testruns.find_test_run(entry["command_line"])
        if test is not None and exit_code is not None:
            now = entry["at"]
            run = {"command": test, "exit_code": exit_code, "passed": exit_code == 0, "at": now}
            for episode in open_list:
                episode.test_runs.append(run)
            for episode in self.recent:
                if episode.ended_at is not None and now - episode.ended_at <= TEST_LINK_SECONDS:
                    episode.test_runs.append(run)
                    self.store.update_episode(
                        episode.id, {"tests_passed": episode.tests_passed(), "detail": episode.detail()}
                    )
        if exit_code == 0 and testruns.is_commit(entry["command_line"]):
            # The workspace watcher records the commit event when it sees the repository
            # move; settling here too does not wait for it (settling twice changes nothing).
            self.commit()

    def _write(self, episode: Episode, values: EpisodeRow) -> None:
        row: EpisodeRow = {
            "id": episode.id,
            "session_id": self._session_id(),
            "document_id": episode.document_id,
            "kind": episode.kind,
            "source": episode.source,
            "started_at": episode.started_at,
            "before": episode.before,
        }
        row.update(values)
        self.store.record_episode(row)

    def _activity_of(self, state: S) -> Activity:
        raise NotImplementedError

    def _settle(self, state: S, why: str) -> None:
        raise NotImplementedError

    def commit(self) -> None:
        """A commit was made: everything followed settles now, whatever its idle time."""
        for state in list(self._docs.values()):
            self._settle(state, "commit")

    def close(self) -> None:
        """The server is going away: settle what can be settled."""
        if self._closed:
            return
        for state in list(self._docs.values()):
            self._settle(state, "shutdown")
        self._closed = True

    def _schedule_settle(self, state: S) -> None:
        if state.check_scheduled or self._closed or not state.episodes or self._schedule is None:
            return
        state.check_scheduled = True
        due = max(self.clock(), self._activity_of(state).last_edit_at + self._settle_seconds())
        self._schedule(due, lambda: self._check_settle(state))

    def _check_settle(self, state: S) -> None:
        state.check_scheduled = False
        if state not in self._docs.values():
            return  # closed meanwhile
        activity = self._activity_of(state)
        if activity.dirty:
            return  # the next save schedules the next check
        if self.clock() < activity.last_edit_at + self._settle_seconds():
            self._schedule_settle(state)
            return
        self._settle(state, "idle")


# ---------------------------------------------------------------------------- pure helpers


def line_end(text: str, offset: int) -> int:
    """The offset just after the newline ending the line at `offset` (or the text's end)."""
    nl = text.find("\n", offset)
    return len(text) if nl == -1 else nl + 1


def as_applied(old: str, new: str, edit: EditRecord) -> list[tuple[int, int, str]] | None:
    """A change as the (offset, removed, inserted) that turns `old` into `new`; None when it
    is not what did (a full text, or an edit that went by unseen: the caller diffs).

    Strings are immutable: `old` is the text the change was applied to unless an edit went
    by unseen. The length and the inserted window tell, and keep a keystroke O(1).
    """
    a, r, inserted = edit.offset, edit.removed, edit.inserted
    fits = edit.kind == "change" and len(new) == len(old) - r + len(inserted)
    return [(a, r, inserted)] if fits and new[a : a + len(inserted)] == inserted else None


def whole_lines(text: str, start: int, end: int) -> tuple[int, int]:
    """[start, end) widened to whole lines; a range ending at a line's start stops there."""
    start = text.rfind("\n", 0, start) + 1
    if (end > start and text[end - 1 : end] == "\n") or end == len(text):
        return start, end
    return start, line_end(text, end)


def surroundings(text: str, region: str, near: int, cursor: int | None) -> dict[str, Any]:
    """The `EDIT_CONTEXT_LINES` lines around `region` in `text` (its occurrence nearest to
    `near`) and the cursor's offset in it (None outside it); empty when `text` does not hold it."""
    start = nearest(text, region, near)
    if start is None:
        return {}
    end = start + len(region)
    top, bottom = edit_context(text, start, end)
    found: dict[str, Any] = {"context_before": text[top:start], "context_after": text[end:bottom]}
    found["cursor"] = cursor - start if cursor is not None and start <= cursor <= end else None
    return found


def nearest(text: str, needle: str, near: int) -> int | None:
    """The start of the occurrence of `needle` in `text` closest to `near`, if any."""
    if not needle:
        return None
    # The first occurrence from `near` on, and the last one starting before it.
    after = text.find(needle, max(0, near))
    before = text.rfind(needle, 0, max(0, near + len(needle) - 1))
    found = [at for at in (before, after) if at != -1]
    return min(found, key=lambda at: abs(at - near), default=None)


def _norm(lines: list[str]) -> list[str]:
    return [line.rstrip() for line in lines if line.strip()]


def kept_share(before: str, proposal: str, settled: str) -> float | None:
    """The line-level share of a proposal the developer kept.

    The proposal's added lines (non-blank lines it has and the region before it did not,
    by a line diff, trailing spaces ignored) that are present in the settled region, each
    counted once per occurrence. A proposal that only deletes lines is judged by its
    deleted lines that stay deleted. None when the proposal changes nothing.
    """
    old, new = _norm(before.splitlines()), _norm(proposal.splitlines())
    final = Counter(_norm(settled.splitlines()))
    added: list[str] = []
    removed: list[str] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if tag in ("replace", "insert"):
            added.extend(new[j1:j2])
        if tag in ("replace", "delete"):
            removed.extend(old[i1:i2])
    if added:
        return sum((Counter(added) & final).values()) / len(added)
    if removed:
        gone = Counter(old) - final
        return min(1.0, sum(gone[line] for line in set(removed)) / len(removed))
    return None
