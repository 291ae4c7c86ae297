"""textDocument/completion: every beam is one item, in rank order."""

from __future__ import annotations

from lsprotocol import types

from ..app import LloomServer
from ..convert import from_lsp_story, to_lsp_completion_items


def register(server: LloomServer) -> None:
    @server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions())
    async def completion(ls: LloomServer, params: types.CompletionParams) -> types.CompletionList:
        empty = types.CompletionList(is_incomplete=False, items=[])
        doc = ls.document(params.text_document.uri)
        if doc is None:
            return empty
        settings = await ls.settings_for(doc.uri)
        story = from_lsp_story(doc, params.position, settings.story.max_context_chars)
        result = await ls.weaver.weave(
            doc.uri, story, settings, progress_token=params.work_done_token
        )
        if result is None:
            return empty
        # isIncomplete false: typing after the list appears only filters it.
        return types.CompletionList(
            is_incomplete=False, items=to_lsp_completion_items(result, doc, params.position)
        )
