"""The thread tree: every token the weave took, with the alternatives it split into.

The root is the story.  A node is one token with its probability; its children are
the alternatives taken at the next position; ``offered`` keeps every candidate the
backend reported there (its top-N), taken or not, so a server can show what the model
considered at each token of a beam.  Every beam is a path from the root to a node.
The server hands the tree to custom UIs as JSON (``to_dict``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import attrs

from .source import Candidate

__all__ = ["ThreadTree", "TreeNode"]


@attrs.define(eq=False, repr=False)
class TreeNode:
    """One token in the tree; ``candidate`` is None only at the root."""

    candidate: Candidate | None
    depth: int
    parent: TreeNode | None = None
    children: list[TreeNode] = attrs.Factory(list)
    #: Set when a beam ends here: depth, stop, eos, limit, or cut (still growing when the
    #: search stopped: cut short, never passed off as whole).
    finish: str | None = None
    #: The backend's candidates for the next position, most probable first (empty until
    #: the weave has branched here).
    offered: tuple[Candidate, ...] = ()

    def add(self, candidate: Candidate) -> TreeNode:
        child = TreeNode(candidate, self.depth + 1, self)
        self.children.append(child)
        return child

    def path(self) -> list[Candidate]:
        out: list[Candidate] = []
        node: TreeNode | None = self
        while node is not None and node.candidate is not None:
            out.append(node.candidate)
            node = node.parent
        out.reverse()
        return out

    def walk(self) -> Iterator[TreeNode]:
        yield self
        for child in self.children:
            yield from child.walk()

    def __repr__(self) -> str:
        data = self.candidate.data if self.candidate else b"<root>"
        return f"TreeNode({data!r}, depth={self.depth}, children={len(self.children)})"

    def to_dict(self) -> dict[str, Any]:
        cand = self.candidate
        return {
            "text": cand.data.decode("utf-8", errors="replace") if cand else "",
            "tokenId": cand.token_id if cand else None,
            "prob": cand.prob if cand else 1.0,
            "end": bool(cand and cand.is_end),
            "finish": self.finish,
            "children": [child.to_dict() for child in self.children],
        }


@attrs.define
class ThreadTree:
    """The whole weave; ``prompt`` is the story text the root stands for."""

    prompt: str
    root: TreeNode = attrs.Factory(lambda: TreeNode(None, 0))

    def nodes(self) -> Iterator[TreeNode]:
        return self.root.walk()

    def leaves(self) -> list[TreeNode]:
        return [node for node in self.nodes() if node.finish is not None]

    def to_dict(self) -> dict[str, Any]:
        return {"prompt": self.prompt, "root": self.root.to_dict()}
