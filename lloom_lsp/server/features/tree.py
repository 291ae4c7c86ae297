"""``lloom.tree [uri, position, options?]``: the weave's real token tree, drawn.

The same weave (and cache) as ``lloom.weave``, with its options, plus ``format``: ``json``
(default; every node with its id, token, probability, finish, path and the text to insert
to reach it), ``dot``, ``mermaid``, ``text``, or ``svg`` (Graphviz's ``dot`` on PATH).
"""

from __future__ import annotations

import asyncio
import shutil
from typing import Any

from lsprotocol import types

from ...engine.render import FORMATS, render, tree_view
from ..app import LloomServer
from ..weaving import speed_line
from .weave_at import Woven, weave_at

#: Seconds Graphviz may take to lay out one weave.
DOT_TIMEOUT = 20.0


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


async def to_svg(dot: str) -> tuple[str, str | None]:
    """(svg, None), or ("", why not): Graphviz's ``dot -Tsvg``, when it is on PATH."""
    program = shutil.which("dot")
    if program is None:
        return "", (
            "Graphviz's dot is not on PATH; install graphviz, or ask for format dot "
            "and render it yourself"
        )
    process = await asyncio.create_subprocess_exec(
        program,
        "-Tsvg",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(dot.encode()), DOT_TIMEOUT)
    except asyncio.TimeoutError:
        process.kill()
        await process.wait()
        return "", f"Graphviz's dot took longer than {DOT_TIMEOUT:g} s"
    except asyncio.CancelledError:
        process.kill()
        await process.wait()
        raise
    if process.returncode != 0:
        return "", f"Graphviz's dot failed ({process.returncode}): {err.decode(errors='replace')}"
    return out.decode("utf-8", errors="replace"), None
