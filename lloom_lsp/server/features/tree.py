"""``lloom.tree [uri, position, options?]``: the weave's real token tree, drawn.

The same weave (and cache) as ``lloom.weave``, with its options, plus ``format``: ``json``
(default; every node with its id, token, probability, finish, path and the text to insert
to reach it), ``dot``, ``mermaid``, ``text``, or ``svg`` (Graphviz's ``dot`` on PATH).
"""

from __future__ import annotations

from typing import Any

from lsprotocol import types

from ...engine.render import FORMATS, render, tree_view
from ...graphviz import to_svg
from ..app import LloomServer
from ..weaving import speed_line
from .weave_at import Woven, weave_at


def register(server: LloomServer) -> None:
    @server.command("lloom.tree")
    async def tree(
        ls: LloomServer, uri: str, position: types.Position, *rest: Any
    ) -> dict[str, Any]:
        options = rest[0] if rest and isinstance(rest[0], dict) else {}
        fmt = options.get("format") or "json"
        if fmt not in (*FORMATS, "svg"):
            known = ", ".join((*FORMATS, "svg"))
            return {"error": f"lloom.tree: unknown format {fmt!r} (known: {known})"}
        woven = await weave_at(ls, "lloom.tree", uri, position, rest, {"format": str})
        if not isinstance(woven, Woven):
            return {"format": fmt, **woven}
        view = tree_view(woven.result.tree, woven.result.held, woven.after)
        answer: dict[str, Any] = {
            "format": fmt,
            "version": woven.version,
            "speedLine": speed_line(woven.result),
            "after": woven.after,
        }
        if fmt == "json":
            return {**answer, "tree": view.to_dict()}
        if fmt == "svg":
            svg, error = await to_svg(render(view, "dot"))
            return {**answer, "text": svg} if error is None else {**answer, "error": error}
        return {**answer, "text": render(view, fmt)}
