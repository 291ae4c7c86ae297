"""The thread tree, drawn: JSON for editors, DOT (and so SVG) for Graphviz, Mermaid, a
compact text tree for terminals, and loomsidian's weave JSON for other loom tools.

Every rendering is built from the weave's real token tree (:class:`ThreadTree`), not from
the beams' strings.  Only the explored part is drawn: a node is kept when a finished beam
runs through it.  The best-first strategy records every top-N alternative it saw, most of
which it never grew; drawing them all would bury the beams in stubs.

Node ids are stable paths of child indices in the whole tree (``n0`` is the root, ``n0_2``
its third child), the same in every format, so an editor can map a click on an SVG
element back to the JSON node.
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import attrs

from .beam import heal_whitespace
from .tree import ThreadTree, TreeNode

__all__ = [
    "FINISH_NAMES",
    "FORMATS",
    "TreeView",
    "bar",
    "render",
    "shown",
    "tree_view",
    "view_from_dict",
    "visible",
]

#: The engine's finish reasons, as the renderings name them.
FINISH_NAMES = {"stop": "stop", "depth": "depth", "eos": "end", "limit": "cut", "cut": "cut"}

FORMATS = ("json", "dot", "mermaid", "text", "loomsidian")


@attrs.frozen
class ViewNode:
    id: str
    text: str
    prob: float
    finish: str | None
    path: str
    insert_text: str
    depth: int
    children: tuple[ViewNode, ...]

    def walk(self) -> Iterator[ViewNode]:
        yield self
        for child in self.children:
            yield from child.walk()

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "text": self.text,
            "prob": self.prob,
            "finish": self.finish,
            "path": self.path,
            "insertText": self.insert_text,
            "children": [child.to_dict() for child in self.children],
        }


@attrs.frozen
class TreeView:
    """The explored tree, ready to draw."""

    prompt: str
    held: str
    root: ViewNode

    def to_dict(self) -> dict[str, Any]:
        return {"prompt": self.prompt, "held": self.held, "root": self.root.to_dict()}


def tree_view(tree: ThreadTree, held: str = "", after: str = "") -> TreeView:
    """The explored part of ``tree``.  ``held``: the whitespace between the prompt and the
    cursor (healed against each node's text); ``after``: text the weave continued from, not
    yet in the document, which every ``insertText`` starts with."""

    def build(node: TreeNode, node_id: str, data: bytes) -> ViewNode | None:
        cand = node.candidate
        here = data + (cand.data if cand else b"")
        children = []
        for index, child in enumerate(node.children):
            built = build(child, f"{node_id}_{index}", here)
            if built is not None:
                children.append(built)
        if node.finish is None and not children and node.parent is not None:
            return None  # an alternative nobody grew
        path = here.decode("utf-8", errors="replace")
        return ViewNode(
            id=node_id,
            text=cand.data.decode("utf-8", errors="replace") if cand else "",
            prob=cand.prob if cand else 1.0,
            finish=FINISH_NAMES.get(node.finish, node.finish) if node.finish else None,
            path=path,
            insert_text=after + heal_whitespace(held, path) if path or after else "",
            depth=node.depth,
            children=tuple(children),
        )

    root = build(tree.root, "n0", b"")
    assert root is not None  # the root is always kept
    return TreeView(tree.prompt, held, root)


def view_from_dict(data: dict[str, Any]) -> TreeView:
    """The view :meth:`TreeView.to_dict` gave (a saved tree, drawn again without weaving).
    The dict must have been checked: every node with its id, text, prob, insertText and
    children."""

    def node(d: dict[str, Any], depth: int) -> ViewNode:
        return ViewNode(
            id=d["id"],
            text=d["text"],
            prob=float(d["prob"]),
            finish=d.get("finish"),
            path=d.get("path") or "",
            insert_text=d["insertText"],
            depth=depth,
            children=tuple(node(c, depth + 1) for c in d["children"]),
        )

    return TreeView(data.get("prompt") or "", data.get("held") or "", node(data["root"], 0))


def render(view: TreeView, fmt: str) -> str:
    """``view`` as ``fmt``: one of :data:`FORMATS`."""
    renderers: dict[str, Callable[[TreeView], str]] = {
        "json": lambda v: json.dumps(v.to_dict(), ensure_ascii=False),
        "dot": to_dot,
        "mermaid": to_mermaid,
        "text": to_text,
        "loomsidian": to_loomsidian,
    }
    if fmt not in renderers:
        raise ValueError(f"unknown tree format {fmt!r} (known: {', '.join(FORMATS)})")
    return renderers[fmt](view)


# -- labels ----------------------------------------------------------------------------------


# The one place text and probabilities are drawn for people: the renderings here, the
# terminal's beam list (lloom_lsp/cli/terminal.py) and the server's hovers and titles.

_BLOCKS = " ▏▎▍▌▋▊▉█"


def bar(fraction: float, width: int = 10, *, eighths: bool = True) -> str:
    """A bar ``width`` cells wide, filled to ``fraction`` with eighth-block precision (or
    whole cells only, without ``eighths``), the rest dotted."""
    fraction = min(1.0, max(0.0, fraction))
    if not eighths:
        full = round(fraction * width)
        return "█" * full + "·" * (width - full)
    full, part = divmod(round(fraction * width * 8), 8)
    text = "█" * full + (_BLOCKS[part] if part else "")
    return text.ljust(width, "·")


def visible(text: str) -> str:
    """One line: newlines and tabs shown as symbols."""
    return text.replace("\n", "⏎").replace("\t", "⇥")


def shown(text: str) -> str:
    """A token as one visible line: line breaks (``\\r`` ones too) and tabs as symbols,
    spaces as middle dots where they lead or trail (a bare space is invisible in a node)."""
    out = visible(text.replace("\r\n", "\n").replace("\r", "\n"))
    stripped = out.strip(" ")
    if stripped != out:
        lead = len(out) - len(out.lstrip(" "))
        trail = len(out) - len(out.rstrip(" "))
        out = "·" * lead + stripped + "·" * trail
    return out or "∅"


def percent(prob: float) -> str:
    if prob >= 0.995:
        return "100%"
    if prob >= 0.1:
        return f"{prob * 100:.0f}%"
    if prob >= 0.001:
        return f"{prob * 100:.1f}%"
    return f"{prob:.0e}"


# -- DOT ---------------------------------------------------------------------------------------


def _dot_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _colour(prob: float) -> str:
    """Grey for unlikely tokens through to a strong blue for certain ones."""
    t = max(0.0, min(1.0, prob)) ** 0.5
    low, high = (0x9A, 0xA0, 0xA6), (0x1F, 0x6F, 0xEB)
    r, g, b = (round(lo + (hi - lo) * t) for lo, hi in zip(low, high))
    return f"#{r:02x}{g:02x}{b:02x}"


def to_dot(view: TreeView) -> str:
    """Graphviz DOT, left to right: nodes labelled with the token and its probability,
    edges as wide and as dark as the token is probable, finished beams marked with their
    reason.  Every node carries its ``id`` (kept in Graphviz's SVG) and a tooltip with the
    text up to it."""
    lines = [
        "digraph weave {",
        "  rankdir=LR;",
        '  node [shape=box, style="rounded", fontname="sans-serif", fontsize=11];',
        '  edge [arrowhead=none, fontname="sans-serif", fontsize=9];',
    ]
    for node in view.root.walk():
        if node.id == "n0":
            label = "story"
            attrs_ = "shape=plaintext"
        else:
            label = f"{shown(node.text)}\n{percent(node.prob)}"
            attrs_ = f"color={_dot_string(_colour(node.prob))}"
            if node.finish:
                label += f"\n[{node.finish}]"
                attrs_ += ', peripheries=2, style="rounded,bold"'
        tooltip = _dot_string((view.prompt[-40:] + "|" + node.path)[-200:])
        lines.append(
            f"  {node.id} [id={_dot_string(node.id)}, label={_dot_string(label)}, "
            f"tooltip={tooltip}, {attrs_}];"
        )
    for node in view.root.walk():
        for child in node.children:
            width = 0.5 + 3.5 * max(0.0, min(1.0, child.prob))
            lines.append(
                f"  {node.id} -> {child.id} [penwidth={width:.2f}, "
                f"color={_dot_string(_colour(child.prob))}];"
            )
    lines.append("}")
    return "\n".join(lines) + "\n"


# -- Mermaid -----------------------------------------------------------------------------------


def _mermaid_text(text: str) -> str:
    # Mermaid labels are quoted; entity codes keep quotes and brackets from ending them.
    return (
        text.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")
    )


def to_mermaid(view: TreeView) -> str:
    """A Mermaid flowchart (GitHub and most Markdown viewers draw it)."""
    lines = ["flowchart LR"]
    for node in view.root.walk():
        if node.id == "n0":
            lines.append(f'  {node.id}(["story"])')
            continue
        label = f"{shown(node.text)} {percent(node.prob)}"
        if node.finish:
            lines.append(f'  {node.id}[["{_mermaid_text(label)} · {node.finish}"]]')
        else:
            lines.append(f'  {node.id}["{_mermaid_text(label)}"]')
    links = 0
    styles = []
    for node in view.root.walk():
        for child in node.children:
            lines.append(f"  {node.id} --> {child.id}")
            width = 1 + 3 * max(0.0, min(1.0, child.prob))
            styles.append(
                f"  linkStyle {links} stroke:{_colour(child.prob)},stroke-width:{width:.1f}px"
            )
            links += 1
    return "\n".join(lines + styles) + "\n"


# -- text --------------------------------------------------------------------------------------


def to_text(view: TreeView) -> str:
    """One node per line, indented by depth, with a probability bar; a chain of only
    children stays on one line, so a beam reads as a phrase."""
    out = [f"story …{shown(view.prompt[-40:])}"]

    def emit(node: ViewNode, indent: str) -> None:
        for run in _runs(node):
            last = run[-1]
            words = "".join(shown(n.text) for n in run)
            joint = math.prod(n.prob for n in run)
            cells = bar(run[0].prob, 5, eighths=False)
            line = f"{indent}{cells} {percent(run[0].prob):>5}  {words}"
            if len(run) > 1:
                line += f"  (p={percent(joint)})"
            if last.finish:
                line += f"  [{last.finish}]"
            out.append(line)
            emit(last, indent + "  ")

    emit(view.root, "")
    return "\n".join(out) + "\n"


# -- loomsidian --------------------------------------------------------------------------------


def _runs(node: ViewNode) -> Iterator[list[ViewNode]]:
    """``node``'s children, each with the chain of only children that follows it (a beam's
    phrase, up to where it branches or ends)."""
    for child in node.children:
        run = [child]
        while len(run[-1].children) == 1 and run[-1].finish is None:
            run.append(run[-1].children[0])
        yield run


def to_loomsidian(view: TreeView) -> str:
    """The weave as loomsidian (github.com/cosmicoptima/loom) keeps one: ``{"current": id,
    "nodes": {id: {"text", "parentId", "author"}}}``.  Tapestry Loom's migration assistant
    reads it, and so do the tools that read loomsidian's.

    The root holds the prompt; every other node one phrase (a chain of only children), so
    the text of a path is its nodes' texts joined, exactly what the model saw.  Ids are
    UUIDs derived from the prompt and the node's place, so saving the same weave twice
    gives the same file.  ``current`` is the most probable finished beam.  The format has
    no place for probabilities or finish reasons; the other formats keep them."""
    seed = hashlib.sha256(view.prompt.encode("utf-8", "surrogatepass")).hexdigest()

    def node_id(view_node: ViewNode) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"lloom-lsp:{seed}:{view_node.id}"))

    root = node_id(view.root)
    nodes: dict[str, dict[str, Any]] = {
        root: {"text": view.prompt, "parentId": None, "author": "genesis"}
    }
    best: tuple[float, str] = (-math.inf, root)

    def add(node: ViewNode, parent: str, logp: float) -> None:
        nonlocal best
        for run in _runs(node):
            last = run[-1]
            here = node_id(last)
            nodes[here] = {
                "text": "".join(n.text for n in run),
                "parentId": parent,
                "author": "lloom-lsp",
            }
            joint = logp + sum(math.log(max(n.prob, 1e-300)) for n in run)
            if last.finish and last.finish != "cut" and joint > best[0]:
                best = (joint, here)
            add(last, here, joint)

    add(view.root, root, 0.0)
    return json.dumps({"current": best[1], "nodes": nodes}, ensure_ascii=False, indent=1) + "\n"
