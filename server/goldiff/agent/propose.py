"""Edit proposals: ask the mode's source for a rewrite and offer it for the editor to confirm.

`ProposeEditService.propose` (behind `goldiff.proposeEdit` and the `Goldiff: Edit with
model` code action, `goldiff.features.proposals`) asks the mode's source for a rewrite,
records the turn, and sends the rewrite back as a `workspace/applyEdit` whose one edit
carries a change annotation with `needsConfirmation: true`, so the editor shows a preview
the developer accepts or discards; the answer (`applied`) is the proposal's outcome. In
shadow mode the local model rewrites the same region in the background, recorded beside
it and never shown.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from goldiff.agent.proposals import ProposalTracker
from goldiff.agent.rewrite import EditRequest, Rewrite, build_request, edit_source
from goldiff.errors import ConfigError, GoldiffError
from goldiff.outcomes.episodes import Proposal
from goldiff.outcomes.spans import Span
from goldiff.prompts import edit_history
from goldiff.protocol import PROPOSE_EDIT, ProposeEditArgs

if TYPE_CHECKING:
    from goldiff.host import Host
    from goldiff.sources.completion import CompletionService

log = logging.getLogger(__name__)

ANNOTATION_ID = "goldiff.proposal"
ApplyEdit = Callable[[types.ApplyWorkspaceEditParams], Awaitable[types.ApplyWorkspaceEditResult | None]]


class ProposeEditService:
    def __init__(
        self, server: Host, tracker: ProposalTracker, completion: CompletionService, apply_edit: ApplyEdit
    ) -> None:
        self.server = server
        self.tracker = tracker
        self.completion = completion
        self.apply_edit = apply_edit
        self._shadow: set[asyncio.Task[None]] = set()

    async def propose(self, args: ProposeEditArgs) -> dict[str, Any]:
        server = self.server
        doc = server.recorder.documents.get(args.uri)
        if doc is None:
            raise ConfigError(f"{args.uri} is not open in the editor; open it before asking for an edit")
        if not args.instruction.strip():
            raise ConfigError("an edit request needs an instruction: say what to change")
        if args.episode is not None and self.tracker.episode(args.episode) is None:
            raise ConfigError(
                f"episode {args.episode} is not open (it has settled, or belongs to another server); "
                "ask again without `episode` to start a new one"
            )
        if args.range is not None:
            start = doc.offset_at(args.range.start.line, args.range.start.character)
            end = doc.offset_at(args.range.end.line, args.range.end.character)
            if end < start:
                start, end = end, start
        elif args.episode is not None and (ep := self.tracker.episode(args.episode)) is not None:
            start, end = ep.region.start, ep.region.end
        else:
            raise ConfigError(f"{PROPOSE_EDIT} needs a range (or the episode id of an earlier turn)")
        mode = server.settings.mode
        kind = "local" if mode == "local" else "frontier"
        source = edit_source(kind, server.settings, self.completion)
        try:
            episode, start, end = self.tracker.begin_turn(
                doc, start, end, episode_id=args.episode, source=kind
            )
        except KeyError:
            raise ConfigError(
                f"episode {args.episode} is not open for {args.uri} (it has settled); "
                "ask again without `episode` to start a new one"
            ) from None
        request = build_request(
            self.tracker.state(doc).text,
            start,
            end,
            path=doc.path or doc.uri,
            language=doc.language,
            instruction=args.instruction,
            recent_edits=edit_history(self.tracker.state(doc).history, doc.path or "file"),
        )
        rewrite = await asyncio.to_thread(source.rewrite, request, threading.Event())
        (sl, sc), (el, ec) = doc.position_at(start), doc.position_at(end)
        rng = {"start": {"line": sl, "character": sc}, "end": {"line": el, "character": ec}}

        def record(rewrite: Rewrite, shadow_of: str | None = None) -> Proposal:
            return self.tracker.add_proposal(
                episode,
                start=start,
                end=end,
                text=rewrite.text,
                source=rewrite.source,
                model=rewrite.model,
                instruction=args.instruction,
                rng=rng,
                context=request.stored_context(),
                latency_ms=rewrite.latency_ms,
                shadow_of=shadow_of,
            )

        proposal = record(rewrite)
        if mode == "shadow":
            self._start_shadow(request, lambda local: record(local, shadow_of=proposal.id))
        now_at = self.tracker.proposal_span(proposal.id) or Span(start, end)  # it may have moved
        label = f"Goldiff: {args.instruction.splitlines()[0][:60]}"
        (sl, sc), (el, ec) = doc.position_at(now_at.start), doc.position_at(now_at.end)
        edit = types.AnnotatedTextEdit(
            range=types.Range(start=types.Position(sl, sc), end=types.Position(el, ec)),
            new_text=rewrite.text,
            annotation_id=ANNOTATION_ID,
        )
        versioned = types.OptionalVersionedTextDocumentIdentifier(uri=args.uri, version=doc.version)
        annotation = types.ChangeAnnotation(
            label=label, needs_confirmation=True, description=f"{rewrite.source} · {rewrite.model}"
        )
        workspace_edit = types.WorkspaceEdit(
            document_changes=[types.TextDocumentEdit(text_document=versioned, edits=[edit])],
            change_annotations={ANNOTATION_ID: annotation},
        )
        result = await self.apply_edit(types.ApplyWorkspaceEditParams(edit=workspace_edit, label=label))
        applied = bool(result is not None and result.applied)
        self.tracker.resolve(proposal.id, applied)
        return {
            "episode": episode.id,
            "proposal": proposal.id,
            "turn": proposal.turn,
            "applied": applied,
            "source": rewrite.source,
            "model": rewrite.model,
        }

    def _start_shadow(self, request: EditRequest, record: Callable[[Rewrite], object]) -> None:
        """The local model rewrites the same region in the background, `record`ed beside it."""

        async def run() -> None:
            try:
                local = edit_source("local", self.server.settings, self.completion)
                rewrite = await asyncio.to_thread(local.rewrite, request, threading.Event())
            except GoldiffError as exc:
                log.info("shadow edit skipped: %s", exc)
                return
            record(rewrite)

        task = asyncio.get_running_loop().create_task(run())
        self._shadow.add(task)
        task.add_done_callback(self._shadow.discard)
