"""What the engine needs from a backend: token probabilities, nothing more.

The engine defines this small interface and every backend implements it.  The
dependency points one way: ``backends`` import these types, the engine never
imports a backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import attrs

__all__ = ["Candidate", "Continuation", "Prompt", "Step", "TokenSource", "sort_candidates"]


@attrs.frozen
class Candidate:
    """One possible next token: its id (where the backend has ids), raw bytes, probability."""

    token_id: int | None
    data: bytes
    prob: float
    is_end: bool = False  # an end-of-sequence token: taking it ends the beam, adds no text


@attrs.frozen
class Step:
    """One generated position: the token the backend chose and the top alternatives.

    ``top`` is sorted by falling probability (backends must sort: some servers do not).
    """

    chosen: Candidate
    top: tuple[Candidate, ...]


@attrs.frozen
class Continuation:
    """A backend's answer: the greedy chain it generated, one Step per token."""

    steps: tuple[Step, ...]
    ended: bool = False  # the chain stopped at end of sequence (not at the token limit)


@attrs.frozen
class Prompt:
    """The story plus the beam so far.

    Backends that accept token ids send ``text`` followed by ``token_ids`` so the
    model continues its own tokens; the others send ``text + tail`` as text.
    """

    text: str
    token_ids: tuple[int, ...] = ()
    tail: bytes = b""

    def as_text(self) -> str:
        return self.text + self.tail.decode("utf-8", errors="ignore")


@runtime_checkable
class TokenSource(Protocol):
    """Anything that can continue a prompt greedily and report the top-N at each position."""

    async def continue_prompt(
        self, prompt: Prompt, max_tokens: int, top_n: int
    ) -> Continuation: ...


def sort_candidates(cands: Sequence[Candidate]) -> tuple[Candidate, ...]:
    """Falling probability; a stable sort keeps the server's order among ties."""
    return tuple(sorted(cands, key=lambda c: -c.prob))
