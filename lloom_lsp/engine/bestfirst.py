"""``best``: a best-first weave that always gives the writer real choices.

LLooM's rules (``chain``, ``token``) give a beam life only where an alternative passes the
cutoff, and finish every beam where it stands once the suggestion limit binds.  On a real
model, whose next-token distributions are flat, that gives one suggestion at cutoff 0.2
and one- or two-word stubs at 0.05.  This search keeps the same chain requests and
streaming, but orders the work by probability:

* an open frontier of prefixes, ordered by joint probability; the most probable one is
  always extended next, by one streamed greedy chain to its natural end;
* every alternative along a chain (above the optional cutoff / split-limit pruning) goes
  on the frontier with its joint probability;
* the weave stops once ``maxSuggestions`` distinct beams have ended naturally (stop string,
  maxDepth, end of sequence), or once its request budget is spent;
* a beam cut short by the stop is marked ``cut`` and ranked below every finished beam; it is
  handed back only where too few beams finished.

Each chain request yields one finished beam, so requests stay close to maxSuggestions.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from typing import TYPE_CHECKING

from .chain import ChainRequest
from .frontier import OpenBeam

if TYPE_CHECKING:
    from .weave import Weave

__all__ = ["BestFirstSearch", "NATURAL"]

#: How a beam ends on its own, as opposed to being cut by the search.
NATURAL = frozenset({"stop", "depth", "eos"})


class BestFirstSearch:
    """One best-first run over a :class:`~.weave.Weave`'s tree and rules."""

    def __init__(self, weave: Weave) -> None:
        self.weave = weave
        settings = weave.settings
        self.wanted = settings.max_suggestions
        self.budget = settings.max_requests or 3 * settings.max_suggestions
        self._queue: list[tuple[float, int, OpenBeam]] = []  # (-log joint, order, beam)
        self._order = itertools.count()
        self._texts: set[str] = set()  # distinct texts that ended naturally
        self._started = 0
        self._wake = asyncio.Event()
        self._enough = False

    def push(self, beam: OpenBeam) -> None:
        heapq.heappush(self._queue, (-beam.logp, next(self._order), beam))
        self._wake.set()

    def finished(self, beam: OpenBeam, reason: str) -> None:
        result = self.weave._finish(beam, reason)
        if reason in NATURAL and result.text.strip():
            self._texts.add(result.text)
            if len(self._texts) >= self.wanted:
                self._enough = True
                self._wake.set()

    async def run(self, root: OpenBeam) -> None:
        self.push(root)
        tasks: set[asyncio.Task[None]] = set()
        concurrency = max(1, self.weave.concurrency)
        try:
            while not self._enough:
                while self._queue and len(tasks) < concurrency and self._started < self.budget:
                    _, _, beam = heapq.heappop(self._queue)
                    self.weave.frontier.add(beam)  # growing now
                    self._started += 1
                    tasks.add(asyncio.ensure_future(self._extend(beam)))
                if not tasks:
                    break  # nothing left to extend, or the budget is spent
                self._wake.clear()
                waker = asyncio.ensure_future(self._wake.wait())
                done, _ = await asyncio.wait({*tasks, waker}, return_when=asyncio.FIRST_COMPLETED)
                waker.cancel()
                for task in done - {waker}:
                    tasks.discard(task)
                    task.result()  # a backend failure ends the weave
        finally:
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
        # Beams being extended when the search stopped: cut short, never passed off as whole.
        for beam in self.weave.frontier:
            if beam.depth > 0 or beam.node.children:
                self.weave._finish(beam, "cut")
            else:
                self.weave.frontier.remove(beam)

    async def _extend(self, beam: OpenBeam) -> None:
        weave = self.weave
        remaining = weave.settings.max_depth - beam.depth
        chain = ChainRequest(weave, weave._prompt(beam), remaining)
        current = beam
        async with chain:
            async for step in chain:
                if self._enough:
                    return  # the frontier cuts it
                (current, end), *others = weave._branch(current, step)
                for child, child_end in others:
                    if child_end:
                        self.finished(child, child_end)
                    else:
                        weave.frontier.remove(child)  # queued, not growing
                        self.push(child)
                if end:
                    self.finished(current, end)
                    return
        if chain.ended or chain.taken == 0:
            self.finished(current, "eos")
        else:
            weave.frontier.remove(current)
            self.push(current)  # the server stopped short of the depth: queue it again
