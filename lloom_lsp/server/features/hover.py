"""textDocument/hover over woven text: the token's probability and the alternatives the
model offered at its position (:mod:`..spans`).  Anywhere else, nothing.  Markdown where
the client's hover ``contentFormat`` offers it (or says nothing), plain text otherwise."""

from __future__ import annotations

from lsprotocol import types

from ..app import LloomServer
from ..convert import to_lsp_token_hover


def register(server: LloomServer) -> None:
    @server.feature(types.TEXT_DOCUMENT_HOVER)
    def hover(ls: LloomServer, params: types.HoverParams) -> types.Hover | None:
        span = ls.spans.at(params.text_document.uri, params.position)
        if span is None:
            return None
        return to_lsp_token_hover(span, markdown=_takes_markdown(ls))


def _takes_markdown(ls: LloomServer) -> bool:
    document = ls.client_capabilities.text_document
    formats = document.hover.content_format if document and document.hover else None
    return not formats or types.MarkupKind.Markdown in formats
