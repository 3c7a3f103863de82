"""Suggestions: every suggestion's fate, its span, survival, settle, gold and episode.

It listens to the recorder (every edit, save, close and terminal command), to the
client's suggestion notifications and to its own timers, and writes what it decides
through the trace store's queue, so nothing here ever waits on the disk. All of it runs
on the server's event loop thread; timers are `call_later` handles on that loop (or, in
tests, a manual clock advanced by a command). The rules it applies are in the package
docstring (`goldiff.outcomes`).
"""

from __future__ import annotations

import functools
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from goldiff.capture.documents import Document
from goldiff.clock import Timers
from goldiff.outcomes.episodes import Activity, Episode, EpisodeTracker, as_applied, line_end
from goldiff.outcomes.spans import Span, diff_edits, survival
from goldiff.protocol import CHECKPOINTS, REJECT_REASONS, TerminalCommand
from goldiff.store import EditRecord, SuggestionRow, TraceStore

PENDING_TIMEOUT_SECONDS = 60.0  # a suggestion nobody acted on for this long: rejected, timeout
JOIN_LINES = 10  # a suggestion this close to an open episode's region joins that episode


@dataclass(eq=False)
class Tracked:
    """One suggestion the tracker follows, from made to its last survival checkpoint."""

    id: str
    text: str
    anchor: Span  # where the suggestion was made, followed until it has a span
    outcome: str = "pending"  # pending | accepted | partial | rejected
    span: Span | None = None  # accepted/partial: the accepted text as it is now
    written: Span | None = None  # rejected: what the developer wrote at that place instead
    accepted_length: int = 0
    accepted_at: float | None = None
    extendable: bool = True  # a partial acceptance may still grow by inference
    survival: dict[str, float] = field(default_factory=dict)
    reverted: bool = False
    settled: bool = False
    episode: Episode | None = None

    def spans(self) -> list[Span]:
        out = [s for s in (self.span, self.written) if s is not None]
        if self.span is None:
            out.append(self.anchor)
        return out

    def done(self) -> bool:
        """Settled and nothing left to measure: the tracker can forget it."""
        if not self.settled:
            return False
        if self.outcome in ("accepted", "partial") and self.span is not None:
            return len(self.survival) == len(CHECKPOINTS)
        return True


@dataclass(eq=False)
class DocState:
    """What the tracker follows in one open document."""

    doc: Document
    text: str  # our own copy: classifying an edit needs the text it was applied to
    items: list[Tracked] = field(default_factory=list)
    episodes: list[Episode] = field(default_factory=list)
    check_scheduled: bool = False
    # Derived from items and episodes, rebuilt when `changed`: every span to move on an
    # edit, and the items an edit may decide (undecided, or partly accepted and growing).
    spans: list[Span] = field(default_factory=list)
    active: list[Tracked] = field(default_factory=list)
    changed: bool = True

    def refresh(self) -> None:
        self.spans = [s for item in self.items for s in item.spans()]
        self.spans.extend(e.region for e in self.episodes)
        self.active = [
            i
            for i in self.items
            if (i.span is None and i.outcome != "rejected") or (i.outcome == "partial" and i.extendable)
        ]
        self.changed = False


class OutcomeTracker(EpisodeTracker[DocState]):
    """Follows suggestions from made to settled; see `goldiff.outcomes` for the rules."""

    def __init__(
        self,
        store: TraceStore,
        *,
        session_id: Callable[[], str | None] = lambda: None,
        settle_seconds: Callable[[], float] = lambda: 10.0,
        clock: Callable[[], float] = time.time,
        real_timers: bool = True,
        timers: Timers | None = None,
    ) -> None:
        # The server's timers (`clock.Timers`), or this tracker's own (unit tests, scripts).
        self.timers = timers if timers is not None else Timers(clock, real=real_timers)
        super().__init__(store, session_id, settle_seconds, clock, self.timers.schedule)
        self._activity: dict[str, Activity] = {}
        self._by_id: dict[str, tuple[DocState, Tracked]] = {}

    # ------------------------------------------------------------------ suggestions

    def suggestion_made(
        self, doc: Document, suggestion_id: str, offset: int, text: str, *, source: str | None = None
    ) -> None:
        """A suggestion (already recorded) was returned to the client for `doc` at `offset`.

        `offset` is the cursor's code-point offset; `source` (frontier | local | ...) labels
        the episode the suggestion opens, when it opens one.
        """
        if not doc.captured or not text or self._closed:
            return
        now = self.clock()
        state = self._docs.setdefault(doc.id, DocState(doc=doc, text=doc.text))
        for other in state.items:
            if other.outcome == "pending":
                self._reject(state, other, "replaced", inferred=True, now=now)
            other.extendable = False
        offset = max(0, min(offset, len(state.text)))
        item = Tracked(id=suggestion_id, text=text, anchor=Span(offset, offset))
        state.items.append(item)
        state.changed = True
        self._by_id[suggestion_id] = (state, item)
        self._join_episode(state, item, offset, now, source)
        self.timers.schedule(now + PENDING_TIMEOUT_SECONDS, lambda: self._timeout(state, item))
        self._schedule_settle(state)

    def suggestion_reused(self, doc: Document, suggestion_id: str, offset: int, rest: str) -> None:
        """The client asked again after typing into a suggestion; the rest was offered under
        the same id. The typed part counted as a partial acceptance; the rest may follow."""
        found = self._by_id.get(suggestion_id)
        if found is None:
            return
        state, item = found
        span = item.span
        if (
            item.outcome == "partial"
            and span is not None
            and not span.dead
            and span.end == offset
            and item.text[item.accepted_length :] == rest
        ):
            item.extendable = True
            state.changed = True

    def shown(self, suggestion_id: str) -> None:
        self.store.update_suggestion(suggestion_id, {"shown": 1})
        self._event(suggestion_id, "shown", {})

    def accepted(self, suggestion_id: str) -> None:
        """The item's command ran: the client accepted the whole suggestion."""
        now = self.clock()
        found = self._followed(suggestion_id, {"outcome": "accepted", "reason": None})
        if found is None:
            return
        state, item = found
        if item.outcome == "accepted":
            self._event(item.id, "accepted", {"inferred": False, "confirmed": True})
            return
        self._taken(state, item, "accepted", len(item.text), now)

    def partially_accepted(self, suggestion_id: str, accepted_length_utf16: int) -> None:
        now = self.clock()
        found = self._followed(
            suggestion_id, {"outcome": "partial", "accepted_length": accepted_length_utf16}
        )
        if found is None:
            return
        state, item = found
        k = _code_points(item.text, accepted_length_utf16)
        if item.outcome == "accepted" or k <= 0:
            self._event(item.id, "partial", {"inferred": False, "ignored": item.outcome})
            return
        if k >= len(item.text):
            self.accepted(suggestion_id)
            return
        k = max(k, item.accepted_length if item.outcome == "partial" else 0)
        self._taken(state, item, "partial", k, now)

    def _taken(self, state: DocState, item: Tracked, outcome: str, k: int, now: float) -> None:
        """The client says it took the suggestion's first `k` code points: the span is where
        the document holds them, or else what we saw inserted (the client took more)."""
        # Where its text starts (or would start) now; a rejected one's anchor moved past
        # what was written there.
        start = (item.span or item.written or item.anchor).start
        span = item.span
        if state.text[start : start + k] == item.text[:k]:
            span = Span(start, start + k, dies_when_empty=True)
        self._accept(state, item, outcome, k, span, inferred=False, now=now)

    def rejected(self, suggestion_id: str, reason: str) -> None:
        now = self.clock()
        found = self._followed(suggestion_id, {"outcome": "rejected", "reason": reason}, {"reason": reason})
        if found is None:
            return
        state, item = found
        if item.outcome in ("accepted", "partial"):
            # The ghost text went away after (part of) it was taken: the acceptance stands.
            self._event(item.id, "rejected", {"reason": reason, "inferred": False, "ignored": item.outcome})
            return
        self._reject(state, item, reason, inferred=False, now=now)

    # ------------------------------------------------------------------ edits

    def on_edit(self, doc: Document, edit: EditRecord) -> None:
        """The recorder's listener: called after every recorded change to `doc`."""
        now = self.clock()
        self._activity.setdefault(doc.id, Activity()).edited(edit, doc.text, now)
        state = self._docs.get(doc.id)
        if state is None:
            return
        old = state.text
        user = edit.kind in ("change", "full")
        edits = as_applied(old, doc.text, edit)
        if edits is None:
            # A full text, or our copy and the recorder's disagree (a change we did not see).
            user = user and edit.kind != "change"
            edits = diff_edits(old, doc.text)
        # One edit, or `diff_edits`' from the end towards the start: the text before each
        # edit's end is still `old`'s, so no keystroke copies the document.
        for a, r, inserted in edits:
            self._apply(state, old, a, r, inserted, user, now)
        state.text = doc.text
        self._schedule_settle(state)

    def _apply(
        self, state: DocState, text: str, a: int, r: int, inserted: str, user: bool, now: float
    ) -> None:
        n = len(inserted)
        b = a + r
        delta = n - r
        placed: set[int] = set()  # spans inference already put where they are after this edit
        if user:
            if state.changed:
                state.refresh()
            for item in state.active:
                if item.span is None:
                    if item.outcome != "rejected" and self._infer(state, item, text, a, r, inserted, now):
                        placed.update(id(s) for s in item.spans())
                    continue
                span = item.span
                if (
                    item.extendable
                    and not span.dead
                    and r == 0
                    and a == span.end
                    and inserted
                    and item.text.startswith(inserted, item.accepted_length)
                ):
                    # The next piece of a partially accepted suggestion, inserted where it goes.
                    span.end += n
                    placed.add(id(span))
                    k = item.accepted_length + n
                    outcome = "accepted" if k == len(item.text) else "partial"
                    self._accept(state, item, outcome, k, span, inferred=True, now=now)
                else:
                    item.extendable = False  # anything else in between ends the piecewise acceptance
                    state.changed = True
        if state.changed:
            state.refresh()
        died = False
        # Every live span of the document, kept cheap for the common case: most edits
        # touch none of them, and those after the edit only shift.
        for span in state.spans:
            if span.end < a:
                continue
            if placed and id(span) in placed:
                continue
            if span.start > b:
                span.start += delta
                span.end += delta
                continue
            was_dead = span.dead
            span.apply(a, r, n)
            died = died or (span.dead and not was_dead)
        if died:
            for item in state.items:
                if item.span is not None and item.span.dead and not item.reverted:
                    item.reverted = True
                    self.store.update_suggestion(item.id, {"reverted": 1})
                    self._event(item.id, "reverted", {})

    def _infer(
        self, state: DocState, item: Tracked, text: str, a: int, r: int, inserted: str, now: float
    ) -> bool:
        """Decide a suggestion without a span from a user edit; True if the edit was used."""
        anchor = item.anchor.start
        b = a + r
        if not a <= anchor <= b:
            if item.outcome == "pending":
                # The developer edits elsewhere: the cursor left, the ghost text is gone.
                item.anchor.apply(a, r, len(inserted))
                self._reject(state, item, "dismissed", inferred=True, now=now)
                return True
            return False
        if r == 0 and not inserted:
            return False
        before = text[a:anchor]
        rest = inserted[len(before) :] if inserted.startswith(before) else None
        start = a + len(before)
        if rest and item.text.startswith(rest):
            span = Span(start, start + len(rest), dies_when_empty=True)
            whole = rest == item.text
            outcome = "accepted" if whole else "partial" if item.outcome == "pending" else item.outcome
            k = max(len(rest), item.accepted_length)
            self._accept(state, item, outcome, k, span, inferred=True, now=now)
        elif rest == "" and b == anchor:
            return False  # text before the anchor replaced by itself: nothing happened here
        elif item.outcome == "pending":
            item.anchor = Span(a, a)
            item.written = Span(a, a + len(inserted), grow_end=True)
            self._reject(state, item, "typedOver", inferred=True, now=now, written=item.written)
        else:
            return False
        return True

    # ------------------------------------------------------------------ outcomes

    def _accept(
        self,
        state: DocState,
        item: Tracked,
        outcome: str,
        length: int,
        span: Span | None,
        *,
        inferred: bool,
        now: float,
    ) -> None:
        first = item.accepted_at is None
        item.outcome = outcome
        state.changed = True
        item.accepted_length = length
        item.span = span
        item.written = None
        if first:
            item.accepted_at = now
            for seconds in CHECKPOINTS:
                self.timers.schedule(now + seconds, functools.partial(self._checkpoint, state, item, seconds))
        self.store.update_suggestion(
            item.id,
            {"outcome": outcome, "reason": None, "accepted_length": length, "resolved_at": now},
        )
        self._event(item.id, outcome, {"inferred": inferred, "accepted_length": length})

    def _reject(
        self,
        state: DocState,
        item: Tracked,
        reason: str,
        *,
        inferred: bool,
        now: float,
        written: Span | None = None,
    ) -> None:
        if reason not in REJECT_REASONS:
            reason = "dismissed"
        item.outcome = "rejected"
        state.changed = True
        item.extendable = False
        if written is not None:
            item.written = written
        elif item.written is None:
            item.written = Span(item.anchor.start, item.anchor.start, grow_end=True)
        self.store.update_suggestion(
            item.id, {"outcome": "rejected", "reason": reason, "accepted_length": 0, "resolved_at": now}
        )
        self._event(item.id, "rejected", {"reason": reason, "inferred": inferred})
        self._schedule_settle(state)

    def _timeout(self, state: DocState, item: Tracked) -> None:
        if item.outcome == "pending":
            self._reject(state, item, "timeout", inferred=True, now=self.clock())

    def _checkpoint(self, state: DocState, item: Tracked, seconds: int) -> None:
        if item.span is None or self._docs.get(state.doc.id) is not state:
            return  # never inserted, or its document closed: nothing more is known
        accepted = item.text[: item.accepted_length]
        value = 0.0 if item.span.dead else round(survival(accepted, item.span.text(state.text)), 4)
        item.survival[str(seconds)] = value
        self.store.update_suggestion(
            item.id, {"survival": json.dumps(item.survival), "reverted": int(item.reverted)}
        )
        self._event(item.id, "checkpoint", {"seconds": seconds, "survival": value})
        self._forget_done(state)

    # ------------------------------------------------------------------ settle

    def on_open(self, doc: Document) -> None:
        """A document opened: its edits from here on make the history its episodes show."""
        self._activity.setdefault(doc.id, Activity()).text = doc.text

    def on_save(self, doc: Document) -> None:
        activity = self._activity.setdefault(doc.id, Activity())
        activity.dirty = False
        state = self._docs.get(doc.id)
        if state is not None:
            if state.text != doc.text:  # the saved text differs: the recorder resynchronised
                self.on_edit(doc, EditRecord(doc.id, "resync", doc.version, 0.0, 0.0))
                activity.dirty = False
            self._schedule_settle(state)

    def on_close(self, doc: Document) -> None:
        state = self._docs.get(doc.id)
        if state is not None:
            self._settle(state, "close")
            for item in state.items:
                self._by_id.pop(item.id, None)
            self._docs.pop(doc.id, None)
        self._activity.pop(doc.id, None)

    def close(self) -> None:
        """The server is going away: settle what can be settled, stop the timers."""
        super().close()
        self.timers.close()

    def _activity_of(self, state: DocState) -> Activity:
        return self._activity.setdefault(state.doc.id, Activity())

    def _settle(self, state: DocState, why: str) -> None:
        now = self.clock()
        final = why in ("commit", "close", "shutdown")
        for item in state.items:
            if item.settled:
                continue
            if item.outcome == "pending":
                if not final:
                    continue
                self._reject(state, item, "timeout", inferred=True, now=now)
            if item.outcome == "rejected":
                written = item.written.text(state.text) if item.written is not None else ""
                gold = cut_written(written, item.text)
            else:
                gold = item.span.text(state.text) if item.span is not None else ""
            item.settled = True
            item.extendable = False
            state.changed = True
            self.store.update_suggestion(item.id, {"gold": gold, "settled_at": now})
            self._event(item.id, "settled", {"why": why, "gold_length": len(gold)})
        for episode in list(state.episodes):
            if all(i.settled for i in state.items if i.episode is episode):
                self._episode_ended(episode, state.text, now)
                state.episodes.remove(episode)
        self._forget_done(state)

    def _forget_done(self, state: DocState) -> None:
        keep = []
        for item in state.items:
            if item.done():
                self._by_id.pop(item.id, None)
            else:
                keep.append(item)
        state.items = keep
        state.changed = True
        if not state.items and not state.episodes:
            self._docs.pop(state.doc.id, None)

    # ------------------------------------------------------------------ episodes

    def _join_episode(
        self, state: DocState, item: Tracked, offset: int, now: float, source: str | None
    ) -> None:
        text = state.text
        first = text.rfind("\n", 0, offset) + 1
        last = line_end(text, offset)
        episode = None
        for candidate in state.episodes:
            region = candidate.region
            near_start = text.count("\n", offset, region.start) <= JOIN_LINES
            near_end = text.count("\n", region.end, offset) <= JOIN_LINES
            if (
                (offset < region.start and near_start)
                or (offset >= region.end and near_end)
                or (region.start <= offset < region.end)
            ):
                episode = candidate
                break
        if episode is None:
            activity = self._activity.setdefault(state.doc.id, Activity())
            episode = Episode(
                id=str(uuid.uuid4()),
                kind="completion",
                document_id=state.doc.id,
                path=state.doc.path or state.doc.uri,
                source=source,
                started_at=now,
                region=Span(first, last, grow_start=True, grow_end=True),
                before=text[first:last],
                old_line=text.count("\n", 0, first),
                seen=(text, first, offset, list(activity.history)),
            )
            state.episodes.append(episode)
            state.changed = True
            self._episode_opened(episode)
        else:
            episode.widen(text, first, last)
        episode.suggestions.append(item.id)
        item.episode = episode
        self.store.update_suggestion(item.id, {"episode_id": episode.id})

    # ------------------------------------------------------------------ terminal

    def terminal_command(self, cmd: TerminalCommand) -> None:
        """A command ran in the editor's terminal: link it, judge test runs, settle at commits."""
        self._link_command(
            {"command_line": cmd.command_line, "exit_code": cmd.exit_code, "at": self.clock(), "cwd": cmd.cwd}
        )

    # ------------------------------------------------------------------ helpers

    def _followed(
        self, suggestion_id: str, told: SuggestionRow, detail: dict[str, Any] | None = None
    ) -> tuple[DocState, Tracked] | None:
        """The suggestion as followed; None for one not followed (another window, a restart),
        whose outcome is recorded as the client `told` it."""
        found = self._by_id.get(suggestion_id)
        if found is None:
            self.store.update_suggestion(suggestion_id, told)
            self._event(
                suggestion_id, told["outcome"], {**(detail or {}), "inferred": False, "tracked": False}
            )
        return found

    def _event(self, suggestion_id: str, kind: str, detail: dict[str, Any]) -> None:
        self.store.record_suggestion_event(suggestion_id, kind, detail, ts=self.clock())


def _code_points(text: str, utf16_units: int) -> int:
    """How many code points of `text` make `utf16_units` UTF-16 code units (JS string length)."""
    units = 0
    for i, ch in enumerate(text):
        if units >= utf16_units:
            return i
        units += 2 if ord(ch) > 0xFFFF else 1
    return len(text)


def cut_written(written: str, suggestion: str) -> str:
    """The gold for a rejected suggestion: what was written at its place, to the end of the
    line (single-line suggestions) or of the block, i.e. up to the first blank line after
    some content (multi-line suggestions)."""
    if "\n" not in suggestion.strip("\n"):
        return written.split("\n", 1)[0]
    kept: list[str] = []
    for line in written.split("\n"):
        if not line.strip() and any(k.strip() for k in kept):
            break
        kept.append(line)
    return "\n".join(kept)


__all__ = ["CHECKPOINTS", "OutcomeTracker", "cut_written"]
