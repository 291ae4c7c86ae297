"""textDocument/inlineCompletion (LSP 3.18): beams as ghost text.

Invoked: weave and return every beam, so the client can cycle through them.
Automatic (sent while typing): weave only if ``inline.automatic`` is on, after a
debounce, cancelling the previous automatic request for the document (Neovim 0.12
never cancels stale ones itself); otherwise return cached beams for this exact story.
"""

from __future__ import annotations

import asyncio

from lsprotocol import types

from ..app import LloomServer
from ..convert import to_lsp_inline_items
from ..newest import Newest


def register(server: LloomServer) -> None:
    requests = Newest.of_tasks()

    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(
        ls: LloomServer, params: types.InlineCompletionParams
    ) -> types.InlineCompletionList:
        empty = types.InlineCompletionList(items=[])
        uri = params.text_document.uri
        doc = ls.document(uri)
        if doc is None:
            return empty
        settings = await ls.settings_for(uri)
        story = await ls.story(doc, params.position, settings)
        after = ls.weaver.windows.after_at(doc, params.position, settings)
        automatic = params.context.trigger_kind == types.InlineCompletionTriggerKind.Automatic
        if automatic:
            cached = ls.weaver.cached(uri, story, settings, after=after)
            if cached is not None or not settings.inline.automatic:
                return types.InlineCompletionList(
                    items=to_lsp_inline_items(cached, params.position) if cached else []
                )
            with requests.request(uri):
                await asyncio.sleep(settings.inline.debounce_ms / 1000)
                result = await ls.weaver.weave(
                    uri, story, settings, show_progress=False, after=after
                )
        else:
            result = await ls.weaver.weave(
                uri, story, settings, progress_token=params.work_done_token, after=after
            )
        if result is None:
            return empty
        return types.InlineCompletionList(items=to_lsp_inline_items(result, params.position))
