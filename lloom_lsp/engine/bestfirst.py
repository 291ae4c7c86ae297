"""``best``: a best-first weave that always gives the writer real choices.

LLooM's rules (``chain``, ``token``) give a beam life only where an alternative passes the
cutoff, and finish every beam where it stands once the suggestion limit binds.  On a real
model, whose next-token distributions are flat, that gives one suggestion at cutoff 0.2
and one- or two-word stubs at 0.05.  This search keeps the same chain requests and
streaming, but orders the work by probability:

* a queue of prefixes, ordered by their estimated joint probability at full length (the
  joint so far, plus the remaining depth at the mean log-probability of the tokens chains
  have chosen: see ``_priority``); the best one is always extended next, by one streamed
  greedy chain to its natural end;
* every alternative along a chain goes on the queue (the cutoff and split limit prune only
  with ``prune``: measured, pruning loses the beams that beat beam search);
* each chain's own end (stop string, maxDepth, end of sequence) is a whole suggestion,
  handed back at once: the chain was asked for it, from the best open prefix;
* an alternative that ends as soon as it is taken (a stop token, the last position) waits in
  the queue and is handed back only when it comes first there, so a flat distribution's
  0.01 alternatives at the last position are not counted as choices before far more
  probable prefixes are tried;
* the weave stops once ``maxSuggestions`` distinct beams have ended naturally, or once its
  request budget (``maxRequests``, by default maxSuggestions) is spent; then the ended beams
  still queued are handed back in order, at no cost;
* a beam being extended when the search stops is marked ``cut`` and ranked below every
  finished beam.

Concurrent chains (``concurrency``) take the next prefixes in order, so the order holds up to
what they find meanwhile; none is started once the chains in flight, each bound to end in a
suggestion, make maxSuggestions with the texts already ended.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math

from .beam import TINY_PROB
from .chain import ChainRequest
from .frontier import OpenBeam
from .rules import NATURAL, WeaveRules

__all__ = ["BestFirstSearch", "NATURAL"]


class BestFirstSearch:
    """One best-first run over a :class:`~.weave.Weave`'s tree and rules."""

    def __init__(self, weave: WeaveRules) -> None:
        self.weave = weave
        settings = weave.settings
        self.wanted = settings.max_suggestions
        self.budget = settings.max_requests or settings.max_suggestions
        # (-priority, order, beam, why it ends or None): open prefixes and ended beams alike
        self._queue: list[tuple[float, int, OpenBeam, str | None]] = []
        self._order = itertools.count()
        self._texts: set[str] = set()  # distinct texts that ended naturally
        self._started = 0
        self._wake = asyncio.Event()
        self._chosen_sum = 0.0
        self._chosen_n = 0

    @property
    def enough(self) -> bool:
        return len(self._texts) >= self.wanted

    def _priority(self, beam: OpenBeam) -> float:
        """What the queue orders by: the beam's log joint, plus its remaining depth at the
        mean log-probability of the tokens the chains have chosen so far, an estimate of
        its joint at full length.  By the joint alone every short prefix comes before every
        long one, and the budget goes on the first few tokens' alternatives; measured, the
        estimate finds beams as good with about 20% fewer requests.  Ended beams are scored
        alike, so a two-token beam that ended at a comma does not jump the queue."""
        if not self._chosen_n:
            return beam.logp
        remaining = self.weave.settings.max_depth - beam.depth
        return beam.logp + remaining * self._chosen_sum / self._chosen_n

    def push(self, beam: OpenBeam, end: str | None = None) -> None:
        """Queue ``beam``: open (``end`` None) or ended, by ``_priority``."""
        self.weave.frontier.remove(beam)  # queued, not growing
        heapq.heappush(self._queue, (-self._priority(beam), next(self._order), beam, end))
        self._wake.set()

    def _finish(self, beam: OpenBeam, reason: str) -> None:
        result = self.weave.finish(beam, reason)
        if reason in NATURAL and result.text.strip():
            self._texts.add(result.text)

    def _take(self, in_flight: int = 0) -> OpenBeam | None:
        """Pop queued beams in order (``_priority``): an ended one finishes at once (no
        request); the first open prefix is returned to grow.  None: nothing open left that
        may grow, or no need to grow one now.

        ``in_flight`` chains are growing: each ends in a suggestion of its own, so once they
        and the texts already ended make ``maxSuggestions``, no chain is started beside
        them.  Started anyway, it would be cut when they finish (its tokens decoded for
        nothing), and it would slow them down: on a busy server the last chains of a weave
        are its wall.  Should one of them end in a text already had, the prefix left on the
        queue grows then."""
        while self._queue and not self.enough:
            _, _, beam, end = self._queue[0]
            if end is None and self._started < self.budget:
                if len(self._texts) + in_flight >= self.wanted:
                    return None
                heapq.heappop(self._queue)
                return beam
            heapq.heappop(self._queue)
            if end is not None:
                self._finish(beam, end)
            # budget spent: open prefixes are dropped, ended beams still come, in order
        return None

    async def run(self, root: OpenBeam) -> None:
        self.push(root)
        tasks: set[asyncio.Task[None]] = set()
        concurrency = max(1, self.weave.concurrency)
        try:
            while not self.enough:
                while len(tasks) < concurrency and (beam := self._take(len(tasks))) is not None:
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
                self.weave.finish(beam, "cut")
            else:
                self.weave.frontier.remove(beam)

    async def _extend(self, beam: OpenBeam) -> None:
        weave = self.weave
        remaining = weave.settings.max_depth - beam.depth
        chain = ChainRequest(weave, weave.prompt_for(beam), remaining)
        current = beam
        async with chain:
            async for step in chain:
                if self.enough:
                    return  # the frontier cuts it
                self._chosen_sum += math.log(max(step.chosen.prob, TINY_PROB))
                self._chosen_n += 1
                (current, end), *others = weave.branch(current, step)
                for child, child_end in others:
                    self.push(child, child_end)
                if end:
                    self._finish(current, end)  # the chain's own end: what it was asked for
                    return
        if chain.ended or chain.taken == 0:
            self._finish(current, "eos")
        else:
            self.push(current)  # the server stopped short of the depth: queue it again
