"""The language server's side of edit proposals: `goldiff.proposeEdit` and its code action.

`register(server)` creates `server.proposals` (the tracker), hooks it to the recorder and
adds the command and the `Goldiff: Edit with model` code action. The command asks the
mode's source for a rewrite, records the turn, and sends the rewrite back as a
`workspace/applyEdit` whose one edit carries a change annotation with
`needsConfirmation: true`, so the editor shows a preview the developer accepts or
discards; the answer (`applied`) is the proposal's outcome. In shadow mode the local model
rewrites the same region in the background, recorded beside it and never shown.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from goldiff.agent.rewrite import EditRequest, EditSource, Rewrite, build_request, edit_source
from goldiff.agent.tracker import ProposalTracker, Scheduler
from goldiff.errors import ConfigError, GoldiffError
from goldiff.protocol import PayloadError, ProposeEditArgs, TerminalCommand, structure

if TYPE_CHECKING:
    from goldiff.lsp import GoldiffServer

log = logging.getLogger(__name__)

PROPOSE_EDIT = "goldiff.proposeEdit"
ANNOTATION_ID = "goldiff.proposal"
CODE_ACTION_TITLE = "Goldiff: Edit with model"
DEFAULT_INSTRUCTION = "Improve this code"  # the code action's; the extension asks for one instead


class ProposeEditService:
    def __init__(self, server: GoldiffServer, tracker: ProposalTracker) -> None:
        self.server = server
        self.tracker = tracker
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
            raise ConfigError("goldiff.proposeEdit needs a range (or the episode id of an earlier turn)")
        mode = server.settings.mode
        kind = "local" if mode == "local" else "frontier"
        source = edit_source(server, kind)
        try:
            episode, start, end = self.tracker.begin_turn(
                doc, start, end, episode_id=args.episode, source=kind
            )
        except KeyError:
            raise ConfigError(
                f"episode {args.episode} is not open for {args.uri} (it has settled); "
                "ask again without `episode` to start a new one"
            ) from None
        text = self.tracker.state(doc).text
        request = build_request(
            text,
            start,
            end,
            path=doc.path or doc.uri,
            language=doc.language,
            instruction=args.instruction,
            recent_edits=self.tracker.recent_diffs(doc),
        )
        rewrite = await asyncio.to_thread(source.rewrite, request, threading.Event())
        rng = _lsp_range(doc, start, end)
        proposal = self.tracker.add_proposal(
            episode,
            start=start,
            end=end,
            text=rewrite.text,
            source=rewrite.source,
            model=rewrite.model,
            instruction=args.instruction,
            rng=rng,
            context=_context(request),
            latency_ms=rewrite.latency_ms,
        )
        if mode == "shadow":
            self._start_shadow(episode, proposal.id, start, end, request, args.instruction, rng)
        found = self.tracker.proposal_span(proposal.id)
        if found is not None:  # the document may have moved while the model wrote
            start, end = found[1].start, found[1].end
        result = await server.workspace_apply_edit_async(
            types.ApplyWorkspaceEditParams(
                edit=_workspace_edit(args.uri, doc.version, doc, start, end, rewrite, args.instruction),
                label=f"Goldiff: {args.instruction.splitlines()[0][:60]}",
            )
        )
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

    def _start_shadow(
        self,
        episode: Any,
        shown_id: str,
        start: int,
        end: int,
        request: EditRequest,
        instruction: str,
        rng: dict[str, Any],
    ) -> None:
        async def run() -> None:
            try:
                local: EditSource = edit_source(self.server, "local")
                rewrite: Rewrite = await asyncio.to_thread(local.rewrite, request, threading.Event())
            except GoldiffError as exc:
                log.info("shadow edit skipped: %s", exc)
                return
            self.tracker.add_proposal(
                episode,
                start=start,
                end=end,
                text=rewrite.text,
                source=rewrite.source,
                model=rewrite.model,
                instruction=instruction,
                rng=rng,
                context=_context(request),
                latency_ms=rewrite.latency_ms,
                shadow_of=shown_id,
            )

        task = asyncio.get_running_loop().create_task(run())
        self._shadow.add(task)
        task.add_done_callback(self._shadow.discard)


def _lsp_range(doc: Any, start: int, end: int) -> dict[str, Any]:
    (sl, sc), (el, ec) = doc.position_at(start), doc.position_at(end)
    return {"start": {"line": sl, "character": sc}, "end": {"line": el, "character": ec}}


def _context(request: EditRequest) -> dict[str, Any]:
    return {
        "context_before": request.context_before,
        "context_after": request.context_after,
        "recent_edits": request.recent_edits,
        "cursor": request.cursor,
    }


def _workspace_edit(
    uri: str, version: int | None, doc: Any, start: int, end: int, rewrite: Rewrite, instruction: str
) -> types.WorkspaceEdit:
    (sl, sc), (el, ec) = doc.position_at(start), doc.position_at(end)
    edit = types.AnnotatedTextEdit(
        range=types.Range(start=types.Position(sl, sc), end=types.Position(el, ec)),
        new_text=rewrite.text,
        annotation_id=ANNOTATION_ID,
    )
    return types.WorkspaceEdit(
        document_changes=[
            types.TextDocumentEdit(
                text_document=types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=version),
                edits=[edit],
            )
        ],
        change_annotations={
            ANNOTATION_ID: types.ChangeAnnotation(
                label=f"Goldiff: {instruction.splitlines()[0][:60]}",
                needs_confirmation=True,
                description=f"{rewrite.source} · {rewrite.model}",
            )
        },
    )


def _schedule_for(server: GoldiffServer) -> Scheduler:
    outcomes = server.outcomes
    if outcomes is not None:
        # The outcome tracker's timer heap: one clock drives both (a manual one in tests).
        return outcomes._schedule

    def schedule(due: float, fn: Any) -> None:
        asyncio.get_running_loop().call_later(max(0.0, due - server.clock()), fn)

    return schedule


def register(server: GoldiffServer) -> ProposalTracker:
    """Add edit proposals and agent attribution to `server` (after `outcomes.register`)."""
    tracker = ProposalTracker(
        server.store,
        session_id=lambda: server.recorder.session_id,
        settle_seconds=lambda: server.settings.settle_seconds,
        agents=lambda: server.settings.agents,
        mode=lambda: server.settings.mode,
        clock=lambda: server.clock(),
        schedule=_schedule_for(server),
    )
    server.proposals = tracker  # type: ignore[attr-defined]
    service = ProposeEditService(server, tracker)
    recorder = server.recorder
    recorder.on_open(tracker.on_open)
    recorder.on_edit(tracker.on_edit)
    recorder.on_document_event(
        lambda kind, doc: tracker.on_save(doc) if kind == "save" else tracker.on_close(doc)
    )
    recorder.on_external(lambda uri, text: tracker.on_external(recorder.documents.get(uri), text))

    def terminal_command(cmd: TerminalCommand) -> None:
        tracker.terminal_command(cmd.command_line, cmd.exit_code, cmd.started_at, cmd.ended_at)

    recorder.on_terminal_command(terminal_command)
    recorder.on_commit(lambda _workspace, _sha: tracker.commit())

    # `ls: Any`: pygls resolves annotations at run time and GoldiffServer would be a cycle.
    @server.command(PROPOSE_EDIT)
    async def propose_edit(ls: Any, *args: Any) -> dict[str, Any]:
        plain = list(args)
        try:
            parsed = structure(plain[0] if len(plain) == 1 else plain, ProposeEditArgs)
        except PayloadError as exc:
            raise ConfigError(
                f"goldiff.proposeEdit expects {{uri, range, instruction, episode?}}: {exc}"
            ) from exc
        return await service.propose(parsed)

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.RefactorRewrite]),
    )
    def code_action(ls: Any, params: types.CodeActionParams) -> list[types.CodeAction] | None:
        rng = params.range
        if rng.start == rng.end or params.text_document.uri not in ls.recorder.documents:
            return None  # offered on a selection only
        if params.context.only and not any(
            k.startswith(types.CodeActionKind.Refactor) for k in params.context.only
        ):
            return None
        arg = {
            "uri": params.text_document.uri,
            "range": {
                "start": {"line": rng.start.line, "character": rng.start.character},
                "end": {"line": rng.end.line, "character": rng.end.character},
            },
            "instruction": DEFAULT_INSTRUCTION,
            "askInstruction": True,  # a client with an input box asks instead of the default
        }
        return [
            types.CodeAction(
                title=CODE_ACTION_TITLE,
                kind=types.CodeActionKind.RefactorRewrite,
                command=types.Command(title=CODE_ACTION_TITLE, command=PROPOSE_EDIT, arguments=[arg]),
            )
        ]

    return tracker
