"""Edit proposals: `goldiff.proposeEdit` and the `Goldiff: Edit with model` code action.

The rules (episodes, turns, settle, gold) are in `goldiff.agent`; the request itself is
`goldiff.agent.propose.ProposeEditService`.
"""

from __future__ import annotations

from typing import Any

from lsprotocol import types

from goldiff import protocol
from goldiff.errors import PayloadError
from goldiff.server import GoldiffServer

CODE_ACTION_TITLE = "Goldiff: Edit with model"
DEFAULT_INSTRUCTION = "Improve this code"  # the code action's; the extension asks for one instead


def register(server: GoldiffServer) -> None:
    @server.command(protocol.PROPOSE_EDIT)
    async def propose_edit(ls: GoldiffServer, *args: Any) -> dict[str, Any]:
        try:
            parsed = protocol.structure(list(args), protocol.ProposeEditArgs)
        except PayloadError as exc:
            raise PayloadError(
                f"{protocol.PROPOSE_EDIT} expects {{uri, range, instruction, episode?}}: {exc}"
            ) from exc
        return await ls.edits.propose(parsed)

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.RefactorRewrite]),
    )
    def code_action(ls: GoldiffServer, params: types.CodeActionParams) -> list[types.CodeAction] | None:
        rng = params.range
        if rng.start == rng.end or params.text_document.uri not in ls.recorder.documents:
            return None  # offered on a selection only
        if params.context.only and not any(
            k.startswith(types.CodeActionKind.Refactor) for k in params.context.only
        ):
            return None
        arg = {
            "uri": params.text_document.uri,
            "range": protocol.unstructure(rng),
            "instruction": DEFAULT_INSTRUCTION,
            "askInstruction": True,  # a client with an input box asks instead of the default
        }
        command = types.Command(title=CODE_ACTION_TITLE, command=protocol.PROPOSE_EDIT, arguments=[arg])
        return [
            types.CodeAction(
                title=CODE_ACTION_TITLE, kind=types.CodeActionKind.RefactorRewrite, command=command
            )
        ]
