"""textDocument/hover over woven text: the token's probability and the alternatives the
model offered at its position (:mod:`..spans`).  Anywhere else, nothing."""

from __future__ import annotations

from lsprotocol import types

from ..app import LloomServer
from ..convert import to_lsp_token_hover
from ..spans import woven_spans


def register(server: LloomServer) -> None:
    @server.feature(types.TEXT_DOCUMENT_HOVER)
    def hover(ls: LloomServer, params: types.HoverParams) -> types.Hover | None:
        span = woven_spans(ls).at(params.text_document.uri, params.position)
        return to_lsp_token_hover(span) if span is not None else None
