"""The tokens of woven text: which token of a beam is which part of the text inserted,
with its probability and what the model offered at its position.

The beam's path is read from the weave's thread tree, whose nodes keep each token's raw
bytes (a token may end inside a character) and the candidates the backend offered at
each position (:attr:`~lloom_lsp.engine.tree.TreeNode.offered`).  Positions here are
character indices into the inserted text; :mod:`.spans` places them in the document.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import attrs

from ..engine import Beam, WeaveResult
from ..engine.beam import complete_utf8_length
from ..engine.source import Candidate
from ..engine.tree import TreeNode

__all__ = ["Alternative", "WovenToken", "beam_tokens", "branch_tokens", "woven_tokens"]

#: Alternatives remembered per token (the most probable the backend offered).
MAX_ALTERNATIVES = 5


@attrs.frozen
class Alternative:
    """One candidate the backend offered at a woven token's position."""

    text: str
    prob: float
    is_end: bool = False  # an end of sequence: the beam could have stopped here
    chosen: bool = False  # the token that was woven


@attrs.frozen
class WovenToken:
    """A token of inserted text, by character index into that text (not placed yet)."""

    start: int
    end: int
    text: str
    prob: float
    alternatives: tuple[Alternative, ...]


def beam_tokens(result: WeaveResult, beam: Beam) -> list[WovenToken]:
    """The tokens of ``beam`` by index into its ``insert_text``, with their alternatives.

    The beam's path is found in the weave's tree, whose nodes keep the raw bytes (a
    token may end inside a character) and the candidates offered at each position.  A
    token's text is what it added to the inserted text: the whitespace the document
    already had is not part of the first one, and one that adds nothing is left out.
    """
    nodes = _path(result.tree.root, beam)
    if nodes is None:
        return []
    data = b""
    ends: list[int] = []
    for node in nodes:
        assert node.candidate is not None
        data += node.candidate.data
        ends.append(len(_decoded(data)))
    if not _decoded(data).startswith(beam.text):
        return []  # not the path this beam's text came from: better nothing than wrong
    healed = len(beam.text) - len(beam.insert_text)
    out = []
    start = 0
    for node, end in zip(nodes, ends):
        lo, hi = max(start - healed, 0), min(end, len(beam.text)) - healed
        start = end
        if hi <= lo:
            continue
        assert node.candidate is not None
        out.append(
            WovenToken(lo, hi, beam.insert_text[lo:hi], node.candidate.prob, _alternatives(node))
        )
    return out


def woven_tokens(text: str, woven_after: Callable[[str], WeaveResult | None]) -> list[WovenToken]:
    """The tokens of ``text`` about to be inserted, as far as it is made of woven beams.

    ``woven_after(prefix)`` is the cached weave of the story with ``prefix`` of the text
    already inserted.  The text is taken beam by beam: the longest beam of that weave
    that starts the rest, then the weave after it ("weave from this beam").
    """
    out: list[WovenToken] = []
    done = 0
    while done < len(text):
        result = woven_after(text[:done])
        if result is None:
            break
        rest = text[done:]
        fits = [b for b in result.beams if b.insert_text and rest.startswith(b.insert_text)]
        if not fits:
            break
        beam = max(fits, key=lambda b: len(b.insert_text))
        out.extend(
            attrs.evolve(t, start=t.start + done, end=t.end + done)
            for t in beam_tokens(result, beam)
        )
        done += len(beam.insert_text)
    return out


def branch_tokens(
    alternatives: Sequence[Alternative],
    alternative: Alternative,
    text: str,
    result: WeaveResult | None,
    beam: Beam | None,
) -> list[WovenToken]:
    """The tokens of a branch at a woven token: ``alternative``, one of that token's
    ``alternatives`` (inserted as ``text``, its whitespace healed), then ``beam`` of
    ``result``, the weave after it."""
    chosen = tuple(attrs.evolve(a, chosen=a == alternative) for a in alternatives)
    out = [WovenToken(0, len(text), text, alternative.prob, chosen)]
    if result is not None and beam is not None:
        out += [
            attrs.evolve(t, start=t.start + len(text), end=t.end + len(text))
            for t in beam_tokens(result, beam)
        ]
    return out


def _path(root: TreeNode, beam: Beam) -> list[TreeNode] | None:
    node, out = root, []
    for token in beam.tokens:
        node_ = next(
            (
                child
                for child in node.children
                if child.candidate is not None
                and not child.candidate.is_end
                and child.candidate.token_id == token.token_id
                and child.candidate.data.decode("utf-8", errors="replace") == token.text
            ),
            None,
        )
        if node_ is None:
            return None
        out.append(node_)
        node = node_
    return out


def _decoded(data: bytes) -> str:
    return data[: complete_utf8_length(data)].decode("utf-8", errors="ignore")


def _alternatives(node: TreeNode) -> tuple[Alternative, ...]:
    parent = node.parent
    chosen = node.candidate
    if parent is None or chosen is None:
        return ()
    offered: Sequence[Candidate] = parent.offered or sorted(
        (c.candidate for c in parent.children if c.candidate is not None), key=lambda c: -c.prob
    )
    return tuple(
        Alternative(
            cand.data.decode("utf-8", errors="replace"),
            cand.prob,
            is_end=cand.is_end,
            chosen=_same(cand, chosen),
        )
        for cand in offered[:MAX_ALTERNATIVES]
    )


def _same(a: Candidate, b: Candidate) -> bool:
    if a.token_id is not None and b.token_id is not None:
        return a.token_id == b.token_id
    return a.data == b.data and a.is_end == b.is_end
