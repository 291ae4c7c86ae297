"""textDocument/completion: every beam is one item, in rank order.

Completion engines (nvim-cmp, blink.cmp, ``vim.lsp.completion`` with autotrigger, VS Code's
quick suggestions) ask on every keystroke.  A request the cache cannot answer waits
``completion.debounceMs``; a newer request for the same document cancels it, so typing gets
one weave when it pauses instead of one per keystroke.  One whose document changed
meanwhile is answered empty and incomplete, so the client asks again: weaving the older
story would cancel the newer one's weave.
"""

from __future__ import annotations

import asyncio

from lsprotocol import types

from ..app import LloomServer
from ..convert import to_lsp_completion_items
from ..newest import Newest


def register(server: LloomServer) -> None:
    requests = Newest.of_tasks()

    @server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions())
    async def completion(ls: LloomServer, params: types.CompletionParams) -> types.CompletionList:
        empty = types.CompletionList(is_incomplete=False, items=[])
        doc = ls.document(params.text_document.uri)
        if doc is None:
            return empty
        settings = await ls.settings_for(doc.uri)
        story = await ls.story(doc, params.position, settings)
        after = ls.weaver.windows.after_at(doc, params.position, settings)
        result = ls.weaver.cached(doc.uri, story, settings, after=after)
        if result is None:
            with requests.request(doc.uri):  # an older one is answered -32800
                if settings.completion.debounce_ms:
                    version = doc.version
                    await asyncio.sleep(settings.completion.debounce_ms / 1000)
                    now = ls.document(doc.uri)
                    if now is None or now.version != version:
                        # typed on meanwhile: weaving the older story would cancel the
                        # newer one's weave; the client asks again as typing goes on
                        return types.CompletionList(is_incomplete=True, items=[])
                result = await ls.weaver.weave(
                    doc.uri, story, settings, progress_token=params.work_done_token, after=after
                )
        if result is None:
            return empty
        # isIncomplete false: typing after the list appears only filters it.
        return types.CompletionList(
            is_incomplete=False, items=to_lsp_completion_items(result, doc, params.position)
        )
