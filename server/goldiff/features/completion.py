"""textDocument/inlineCompletion: the completion service answers (`goldiff.sources.completion`)."""

from __future__ import annotations

from lsprotocol import types

from goldiff.server import GoldiffServer


def register(server: GoldiffServer) -> None:
    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(
        ls: GoldiffServer, params: types.InlineCompletionParams
    ) -> types.InlineCompletionList | None:
        return await ls.completion.inline_completion(params)
