"""``lloom.tree [uri, position, options?]``: the weave's real token tree, drawn; and
``lloom.saveTree [uri, position, options?]`` / ``lloom.loadTree [uri]``, which keep a
document's tree beside it (``<name>.lloom.json``, format ``lloom-tree`` version 1: the JSON
tree of ``lloom.tree`` with the document, the position, when, and the speed line; or, with
the option ``format: "loomsidian"``, ``<name>.loomsidian.json`` for other loom tools).

The same weave (and cache) as ``lloom.weave``, with its options, plus ``format``: ``json``
(default; every node with its id, token, probability, finish, path and the text to insert
to reach it), ``dot``, ``mermaid``, ``text``, ``loomsidian`` (loomsidian's weave JSON,
which Tapestry Loom's migration assistant reads), or ``svg`` (Graphviz's ``dot`` on PATH).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from lsprotocol import types

from ...engine.render import FORMATS, TreeView, render, tree_view, view_from_dict
from ...graphviz import to_svg
from ..app import LloomServer
from ..weave_service import speed_line
from .weave_at import Woven, weave_at


def register(server: LloomServer) -> None:
    register_files(server)

    @server.command("lloom.tree")
    async def tree(
        ls: LloomServer, uri: str, position: types.Position, *rest: Any
    ) -> dict[str, Any]:
        options = rest[0] if rest and isinstance(rest[0], dict) else {}
        fmt = options.get("format") or "json"
        if problem := _unknown_format("lloom.tree", fmt):
            return {"error": problem}
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
        return {**answer, **await _drawn(view, fmt)}


#: Every format a tree is drawn in: the engine's, and SVG through Graphviz.
DRAWN_FORMATS = (*FORMATS, "svg")


def _unknown_format(command: str, fmt: Any) -> str | None:
    if fmt in DRAWN_FORMATS:
        return None
    return f"{command}: unknown format {fmt!r} (known: {', '.join(DRAWN_FORMATS)})"


async def _drawn(view: TreeView, fmt: str) -> dict[str, Any]:
    """``{"text": …}``: ``view`` drawn in ``fmt`` (not json), or ``{"error": …}``."""
    if fmt == "svg":
        svg, error = await to_svg(render(view, "dot"))
        return {"text": svg} if error is None else {"error": error}
    return {"text": render(view, fmt)}


#: What a saved tree says it is (``lloom.saveTree`` writes it, ``lloom.loadTree`` reads it).
TREE_FILE_FORMAT = "lloom-tree"
TREE_FILE_VERSION = 1


#: ``lloom.saveTree``'s ``format`` option: the file's suffix for each.
SAVE_FORMATS = {"lloom": ".lloom.json", "loomsidian": ".loomsidian.json"}


def tree_file(uri: str, fmt: str = "lloom") -> Path | None:
    """Where a document's tree is saved: beside it, ``<name>.lloom.json`` (file URIs only;
    ``<name>.loomsidian.json`` for the loomsidian format)."""
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        return None
    path = Path(unquote(parsed.path))
    return path.with_name(path.name + SAVE_FORMATS[fmt])


def register_files(server: LloomServer) -> None:
    @server.command("lloom.saveTree")
    async def save_tree(
        ls: LloomServer, uri: str, position: types.Position, *rest: Any
    ) -> dict[str, Any]:
        """Save the tree of the weave at ``position`` beside the document: option
        ``format`` ``lloom`` (the default; ``lloom.loadTree`` reads it back) or
        ``loomsidian`` (for Tapestry Loom and the other loom tools)."""
        options = rest[0] if rest and isinstance(rest[0], dict) else {}
        fmt = options.get("format") or "lloom"
        if fmt not in SAVE_FORMATS:
            known = ", ".join(SAVE_FORMATS)
            return {"error": f"lloom.saveTree: unknown format {fmt!r} (known: {known})"}
        path = tree_file(uri, fmt)
        if path is None:
            return {"error": f"lloom.saveTree: only a file: document has a place beside it: {uri}"}
        woven = await weave_at(ls, "lloom.saveTree", uri, position, rest, {"format": str})
        if not isinstance(woven, Woven):
            return woven
        view = tree_view(woven.result.tree, woven.result.held, woven.after)
        if fmt == "loomsidian":
            return _write(path, render(view, "loomsidian"), view)
        data = {
            "format": TREE_FILE_FORMAT,
            "version": TREE_FILE_VERSION,
            "document": uri,
            "savedAt": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "position": {"line": position.line, "character": position.character},
            "after": woven.after,
            "speedLine": speed_line(woven.result),
            "tree": view.to_dict(),
        }
        return _write(path, json.dumps(data, ensure_ascii=False, indent=1), view)

    @server.command("lloom.loadTree")
    async def load_tree(ls: LloomServer, uri: str, *rest: Any) -> dict[str, Any]:
        """The tree saved beside the document, as ``lloom.tree`` gives it in ``json``; with
        the option ``format`` (``dot``, ``mermaid``, ``text``, ``loomsidian`` or ``svg``),
        drawn in it too (``text``), as ``lloom.tree`` draws a woven one."""
        if len(rest) > 1 or (rest and rest[0] is not None and not isinstance(rest[0], dict)):
            return {"error": "lloom.loadTree: [uri, options?], options an object"}
        fmt = (rest[0] or {}).get("format") if rest else None
        fmt = fmt or "json"
        if problem := _unknown_format("lloom.loadTree", fmt):
            return {"error": problem}
        path = tree_file(uri)
        if path is None:
            return {"error": f"lloom.loadTree: only a file: document has a place beside it: {uri}"}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"error": f"lloom.loadTree: no tree saved at {path}"}
        except (OSError, ValueError) as exc:
            return {"error": f"lloom.loadTree: cannot read {path}: {exc}"}
        problem = _bad_tree_file(data)
        if problem:
            return {"error": f"lloom.loadTree: {path}: {problem}"}
        answer = {**data, "format": fmt, "path": str(path)}
        if fmt == "json":
            return answer
        return {**answer, **await _drawn(view_from_dict(data["tree"]), fmt)}


def _write(path: Path, text: str, view: TreeView) -> dict[str, Any]:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        return {"error": f"lloom.saveTree: cannot write {path}: {exc.strerror or exc}"}
    return {"path": str(path), "nodes": sum(1 for _ in view.root.walk())}


def _bad_tree_file(data: Any) -> str | None:
    """What is wrong with a saved tree, naming the field; None when nothing."""
    if not isinstance(data, dict) or data.get("format") != TREE_FILE_FORMAT:
        return f'not a saved LLooM tree ("format" is not "{TREE_FILE_FORMAT}")'
    if data.get("version") != TREE_FILE_VERSION:
        return f'"version" {data.get("version")!r}: this lloom-lsp reads {TREE_FILE_VERSION}'
    tree = data.get("tree")
    if not isinstance(tree, dict) or not isinstance(tree.get("root"), dict):
        return '"tree.root" is missing'
    stack: list[tuple[str, Any]] = [("tree.root", tree["root"])]
    while stack:
        where, node = stack.pop()
        if not isinstance(node, dict):
            return f'"{where}" is not an object'
        for key, kind in (("id", str), ("text", str), ("insertText", str), ("children", list)):
            if not isinstance(node.get(key), kind):
                return f'"{where}.{key}" must be a {kind.__name__}'
        if not isinstance(node.get("prob"), (int, float)):
            return f'"{where}.prob" must be a number'
        stack += [(f"{where}.children[{i}]", c) for i, c in enumerate(node["children"])]
    return None
