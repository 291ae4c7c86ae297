"""didOpen / didChange: warm the backend up for the weave the writer will ask for next,
and keep the woven tokens' spans (:mod:`..spans`) in step with the edits.  A change that
inserts a beam of the weave cached for its spot (a completion or inline item the editor
inserted) is woven text too.

Once the writer pauses (``warmup.debounceMs``), the story at their cursor (the end of the
text they just typed or pasted; the end of the document when it opens) is evaluated into
the backend's slots, so the next weave there skips the prompt evaluation.  The weaving
service runs it (:meth:`~lloom_lsp.server.weave_service.WeaveService.warm_soon`): a change
during the wait starts the wait again, every weave cancels it, and a failure is only
logged.  The prefetch after an accepted beam starts in ``lloom.accept`` (:mod:`.commands`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from lsprotocol import types
from pygls.workspace import TextDocument

from ...config import Settings
from ...engine import WeaveResult
from ..app import LloomServer
from ..positions import change_end, end_of_document, position_after
from ..woven_tokens import woven_tokens
from .shading import publish_spans


def register(server: LloomServer) -> None:
    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    async def did_open(ls: LloomServer, params: types.DidOpenTextDocumentParams) -> None:
        ls.spans.closed(params.text_document.uri)  # opened anew: nothing woven yet
        doc = ls.document(params.text_document.uri)
        if doc is not None:
            await _warm_soon(ls, doc, end_of_document(doc))

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    async def did_change(ls: LloomServer, params: types.DidChangeTextDocumentParams) -> None:
        doc = ls.document(params.text_document.uri)
        if doc is None or not params.content_changes:
            return
        # before any await: a hover or code action that follows sees the spans moved
        spans = ls.spans
        before = spans.spans(doc.uri)
        accepted = spans.changed(doc, params.content_changes)
        await _warm_soon(ls, doc, change_end(doc, params.content_changes[-1]))
        if not accepted:
            await _remember_woven(ls, doc, params.content_changes)
        if before or spans.spans(doc.uri):
            await publish_spans(ls, doc.uri)  # the shading follows the spans


async def _warm_soon(ls: LloomServer, doc: TextDocument, cursor: types.Position) -> None:
    version = doc.version
    settings = await ls.settings_for(doc.uri)
    if doc.version != version or not settings.warmup.enabled:
        return  # changed while the settings were pulled: that change warms up instead
    story = await ls.story(doc, cursor, settings)
    if doc.version == version:  # else the change since warms up instead
        ls.weaver.warm_soon(doc.uri, story, settings)


async def _remember_woven(
    ls: LloomServer,
    doc: TextDocument,
    changes: Sequence[types.TextDocumentContentChangeEvent],
) -> None:
    """A completion or inline item the editor inserted itself: when the change inserted a
    beam of the weave cached for its spot, the woven text remembers its tokens.  A
    completion item's edit re-inserts the word fragment before the cursor, so the beam
    may follow a run of non-whitespace at the change's start."""
    change = changes[0]
    if len(changes) != 1 or not isinstance(change, types.TextDocumentContentChangePartial):
        return
    text = change.text
    if len(text) < 2:
        return  # typing, one character at a time
    version = doc.version
    settings = await ls.settings_for(doc.uri)
    if doc.version != version:
        return
    start = change.range.start
    for k in range(len(text)):
        if k and text[k - 1].isspace():
            return
        fragment = text[:k]
        tokens = woven_tokens(text[k:], _cached_after(ls, doc, start, fragment, settings))
        if tokens:
            ls.spans.inserted(doc, position_after(doc, start, fragment), text[k:], tokens)
            return


def _cached_after(
    ls: LloomServer, doc: TextDocument, start: types.Position, fragment: str, settings: Settings
) -> Callable[[str], WeaveResult | None]:
    """The cached weave of the story at ``start`` with ``fragment`` and then a prefix of
    the inserted text after it."""

    def cached(done: str) -> WeaveResult | None:
        story = ls.story_now(doc, start, settings, inserted=fragment + done)
        return ls.weaver.cached(doc.uri, story, settings, any_settings=True)

    return cached
