"""didOpen / didChange: warm the backend up for the weave the writer will ask for next,
and keep the woven tokens' spans (:mod:`..spans`) in step with the edits.

Once the writer pauses (``warmup.debounceMs``), the story at their cursor (the end of the
text they just typed or pasted; the end of the document when it opens) is evaluated into
the backend's slots, so the next weave there skips the prompt evaluation.  The weaving
service runs it (:meth:`~lloom_lsp.server.weaving.WeaveService.warm_soon`): a change
during the wait starts the wait again, every weave cancels it, and a failure is only
logged.  The prefetch after an accepted beam starts in ``lloom.accept`` (:mod:`.commands`).
"""

from __future__ import annotations

from lsprotocol import types
from pygls.workspace import TextDocument

from ..app import LloomServer
from ..convert import change_end, end_of_document, from_lsp_story
from ..spans import woven_spans


def register(server: LloomServer) -> None:
    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    async def did_open(ls: LloomServer, params: types.DidOpenTextDocumentParams) -> None:
        woven_spans(ls).closed(params.text_document.uri)  # opened anew: nothing woven yet
        doc = ls.document(params.text_document.uri)
        if doc is not None:
            await _warm_soon(ls, doc, end_of_document(doc))

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    async def did_change(ls: LloomServer, params: types.DidChangeTextDocumentParams) -> None:
        doc = ls.document(params.text_document.uri)
        if doc is not None:
            # before any await: a hover or code action that follows sees the spans moved
            woven_spans(ls).changed(doc, params.content_changes)
        if doc is not None and params.content_changes:
            await _warm_soon(ls, doc, change_end(doc, params.content_changes[-1]))


async def _warm_soon(ls: LloomServer, doc: TextDocument, cursor: types.Position) -> None:
    version = doc.version
    settings = await ls.settings_for(doc.uri)
    if doc.version != version or not settings.warmup.enabled:
        return  # changed while the settings were pulled: that change warms up instead
    story = from_lsp_story(doc, cursor, settings.story.max_context_chars)
    ls.weaver.warm_soon(doc.uri, story, settings)
