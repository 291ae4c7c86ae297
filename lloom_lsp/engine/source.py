"""What the engine needs from a backend: token probabilities, nothing more.

The engine defines this small interface and every backend implements it.  The
dependency points one way: ``backends`` import these types, the engine never
imports a backend.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextvars import ContextVar
from typing import Protocol, runtime_checkable

import attrs

__all__ = [
    "Candidate",
    "Continuation",
    "Prompt",
    "Step",
    "StreamingTokenSource",
    "TokenSource",
    "Usage",
    "current_usage",
    "sort_candidates",
]


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

    ``suffix`` is the text after the cursor (engine/suffix.py).  A backend whose model
    fills in the middle weaves with it in view (llama-server's ``/infill``); the others
    ignore it and continue ``text`` alone.

    ``stop``: strings at which the engine ends this beam wherever they appear in new text
    (the beam already has text of its own, so autoStop's rule holds at once).  A backend may
    have the server stop generating at the first one, so no token after it is decoded for
    nothing; the engine ends the beam there itself either way.
    """

    text: str
    token_ids: tuple[int, ...] = ()
    tail: bytes = b""
    suffix: str = ""
    stop: tuple[str, ...] = ()

    def as_text(self) -> str:
        return self.text + self.tail.decode("utf-8", errors="ignore")


@runtime_checkable
class TokenSource(Protocol):
    """Anything that can continue a prompt greedily and report the top-N at each position."""

    async def continue_prompt(
        self, prompt: Prompt, max_tokens: int, top_n: int
    ) -> Continuation: ...


@runtime_checkable
class StreamingTokenSource(TokenSource, Protocol):
    """A TokenSource that can also hand over each Step as the server generates it.

    The engine closes the iterator as soon as it has what it needs; a backend must then
    stop the server's generation (closing the stream does that on every server here).
    A chain that ends at end of sequence ends with a Step whose chosen token ``is_end``.
    """

    def stream_steps(self, prompt: Prompt, max_tokens: int, top_n: int) -> AsyncIterator[Step]: ...


@attrs.define
class Usage:
    """What the model did for one weave, as the backend reports it.

    ``prompt_tokens`` counts prompt tokens the server evaluated (not those it found in its
    cache); ``decoded_tokens`` counts tokens it generated, taken or not.  Backends that cannot
    tell leave a count at zero.
    """

    prompt_tokens: int = 0
    decoded_tokens: int = 0
    #: Steps answered from a StepMemory instead of the backend, and the requests that
    #: therefore never went out (engine/memory.py).
    reused_tokens: int = 0
    saved_requests: int = 0
    #: Told the number of prompt tokens a request must evaluate before its first token,
    #: where the backend knows it (llama-server's ``prompt_progress``), so a long wait can
    #: say why ("evaluating the story (3,400 tokens)").
    on_evaluate: Callable[[int], None] | None = attrs.field(default=None, eq=False, repr=False)

    def evaluating(self, tokens: int) -> None:
        if self.on_evaluate is not None and tokens > 0:
            self.on_evaluate(tokens)


#: The Usage of the weave a request belongs to.  The engine sets it for each weave; a backend
#: adds to it (``current_usage.get()``).  A context variable keeps the TokenSource interface
#: to the one call while every task a weave spawns still reports to that weave.
current_usage: ContextVar[Usage | None] = ContextVar("lloom_usage", default=None)


def sort_candidates(cands: Sequence[Candidate]) -> tuple[Candidate, ...]:
    """Falling probability; a stable sort keeps the server's order among ties."""
    return tuple(sorted(cands, key=lambda c: -c.prob))
