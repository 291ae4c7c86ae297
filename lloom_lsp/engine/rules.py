"""The rules a search strategy grows the tree by, as one public interface.

A strategy (``token`` and ``chain`` in :mod:`.weave`, ``best`` in :mod:`.bestfirst`) decides
*which* beam to extend next and *when* to stop; the rules it applies to every answer are the
weave's, shared by all of them, so the same answer grows the same tree under every strategy:

* :meth:`WeaveRules.split`: the alternatives taken at one position;
* :meth:`WeaveRules.branch`: the children of a beam at one position, each with why it ends
  (stop string, maxDepth, end of sequence) or None;
* :meth:`WeaveRules.finish`: a beam becomes a suggestion;
* :meth:`WeaveRules.prompt_for`: what a beam is continued from, by its token ids.

Strategies depend on this module, never on :mod:`.weave`, which implements it: the arrows
go ``weave -> bestfirst -> chain -> rules`` and ``weave -> rules``, with no cycle.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from ..config import WeaveSettings
from .beam import Beam
from .frontier import Frontier, OpenBeam
from .source import Candidate, Continuation, Prompt, Step, TokenSource

__all__ = ["NATURAL", "Tally", "WeaveRules"]

#: How a beam ends on its own, as opposed to being cut by the search or a limit.
NATURAL = frozenset({"stop", "depth", "eos"})


class Tally(Protocol):
    """The costs a strategy counts as it asks (:class:`~.weave.WeaveStats`)."""

    requests: int
    decoded_tokens: int


class WeaveRules(Protocol):
    """One weave's tree, rules and backend, as a strategy sees them."""

    settings: WeaveSettings
    source: TokenSource
    frontier: Frontier
    #: Bounds the requests in flight, shared by every weave of one backend.
    limiter: asyncio.Semaphore
    concurrency: int

    @property
    def stats(self) -> Tally: ...

    def split(self, step: Step, depth: int) -> list[Candidate]:
        """The alternatives taken at one position, the chosen token first."""
        ...

    def branch(self, beam: OpenBeam, step: Step) -> list[tuple[OpenBeam, str | None]]:
        """The children taken at one position, in split order, each with why it ends now
        (None: it goes on).  On the frontier they replace ``beam``."""
        ...

    def finish(self, beam: OpenBeam, reason: str) -> Beam:
        """``beam`` ends for ``reason`` and becomes a suggestion (shown at once)."""
        ...

    def prompt_for(self, beam: OpenBeam) -> Prompt:
        """What ``beam`` is continued from: the story and the beam's token ids."""
        ...

    async def answer(self, prompt: Prompt, max_tokens: int, *, batched: bool) -> Continuation:
        """One whole answer, counted; ``batched``: through the batcher."""
        ...

    def batched(self) -> bool:
        """Whether requests go through the batcher, several beams to a request."""
        ...
