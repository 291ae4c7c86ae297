"""The beams still growing: each one's place in the tree, and the frontier that holds them."""

from __future__ import annotations

from collections.abc import Iterator

import attrs

from .tree import TreeNode

__all__ = ["Frontier", "OpenBeam"]


@attrs.define(eq=False)
class OpenBeam:
    """A beam still growing: its tree node, bytes and token ids so far, and the log of its
    joint probability (what the best-first search orders by)."""

    node: TreeNode
    data: bytes
    ids: tuple[int, ...]
    logp: float = 0.0

    @property
    def depth(self) -> int:
        return self.node.depth


class Frontier:
    """The beams still growing, in the order they were born.

    A beam is open from the moment the weave takes it (the root, or an alternative at a
    split) until it finishes.  Walking a chain replaces the beam being walked by the
    children taken at each position; finishing removes a beam.  The suggestion limit is
    ``finished + len(frontier)``, and when it binds every beam still here finishes as
    ``limit`` where it stands.
    """

    def __init__(self) -> None:
        self._beams: dict[OpenBeam, None] = {}  # insertion-ordered set

    def __len__(self) -> int:
        return len(self._beams)

    def __iter__(self) -> Iterator[OpenBeam]:
        return iter(list(self._beams))

    def add(self, beam: OpenBeam) -> None:
        self._beams[beam] = None

    def replace(self, beam: OpenBeam, children: list[OpenBeam]) -> None:
        self._beams.pop(beam, None)
        for child in children:
            self._beams[child] = None

    def remove(self, beam: OpenBeam) -> None:
        self._beams.pop(beam, None)
