"""Probability shading: the server tells the editor where its woven tokens are and how
probable each was, so the editor can shade them (``lloom.woven.shading``).

* ``lloom/spans``, a notification: ``{"uri", "version", "spans": [{"range", "prob",
  "text"}]}``, every woven token of the document at that version (the whole list, which
  replaces the last one).  Sent after a change that moved, dropped or added spans, and
  after a configuration change, while the document's ``lloom.woven.shading`` is on; when
  it turns off, or the last span is edited away, one ``"spans": []`` clears the shading.
  Ranges are in the negotiated position encoding.  An editor whose document is at another
  version ignores it: the next change sends a new one.
* ``lloom.spans [uri]``, a command: the same answer on request, whatever the setting.
"""

from __future__ import annotations

import logging
from typing import Any

from ..app import LloomServer
from ..woven_spans import TokenSpan

__all__ = ["SPANS_NOTIFICATION", "publish_spans", "register", "spans_message"]

log = logging.getLogger("lloom_lsp.server.shading")

SPANS_NOTIFICATION = "lloom/spans"


def spans_message(uri: str, version: int | None, spans: list[TokenSpan]) -> dict[str, Any]:
    return {
        "uri": uri,
        "version": version,
        "spans": [
            {
                "range": {
                    "start": {"line": s.start[0], "character": s.start[1]},
                    "end": {"line": s.end[0], "character": s.end[1]},
                },
                "prob": s.prob,
                "text": s.text,
            }
            for s in spans
        ],
    }


async def publish_spans(ls: LloomServer, uri: str) -> None:
    """Send the document's spans, if its shading is on and there is anything to say."""
    if ls.document(uri) is None:
        return
    settings = await ls.settings_for(uri)
    doc = ls.document(uri)  # read after the await: the spans follow the document's changes
    if doc is None:
        return
    shown = ls.shaded
    spans = ls.spans.spans(uri) if settings.woven.shading else []
    if not spans and uri not in shown:
        return  # nothing shaded, nothing to clear
    try:
        ls.protocol.notify(SPANS_NOTIFICATION, spans_message(uri, doc.version, spans))
    except Exception as exc:  # a closing transport: nothing left to shade
        log.debug("lloom/spans not sent: %r", exc)
        return
    if spans:
        shown.add(uri)
    else:
        shown.discard(uri)


async def publish_all(ls: LloomServer) -> None:
    """After a configuration change: every open document that has spans or shows some."""
    uris = {uri for uri in ls.workspace.text_documents if ls.spans.spans(uri)}
    for uri in sorted(uris | ls.shaded):
        await publish_spans(ls, uri)


def forget(ls: LloomServer, uri: str) -> None:
    """The document closed: the editor drops its shading itself."""
    ls.shaded.discard(uri)


def register(server: LloomServer) -> None:
    @server.command("lloom.spans")
    def spans(ls: LloomServer, *args: Any) -> dict[str, Any]:
        if len(args) != 1 or not isinstance(args[0], str):
            return {"error": f"lloom.spans: one argument, the document's URI, got {list(args)!r}"}
        doc = ls.document(args[0])
        if doc is None:
            return {"error": f"document not open: {args[0]}"}
        return spans_message(doc.uri, doc.version, ls.spans.spans(doc.uri))
