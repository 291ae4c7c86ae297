"""The weave: LLooM's tree search over token probabilities.

One :class:`Weave` holds the tree, the rules every strategy grows it by (split, branch,
finish, prompt_for: the public :class:`.rules.WeaveRules`) and the backend.  Three strategies
grow the same tree:

* ``best`` (the default, :mod:`.bestfirst`): best-first search.  The most probable open
  prefixes are extended by streamed greedy chains until maxSuggestions beams have ended on
  their own.
* ``chain``: LLooM's rules.  A whole greedy chain with the top-N alternatives at every
  position, walked with the split rule; every alternative it takes gets a request of its
  own.  Requests fall from one per token per beam to about one per beam; with
  maxSuggestions not binding, the suggestion set is ``token``'s.  Chains are streamed
  (:mod:`.chain`): an alternative's request starts as soon as its position arrives, and a
  chain is closed once its beam has ended.
* ``token``: the seed's search, fixed: breadth-first by depth, one request per token per
  open beam.

The beams still growing are a :class:`~.frontier.Frontier`; for ``chain`` and ``token``,
``finished + open`` is what maxSuggestions limits.

All of them continue a beam by its token ids, so a chain and a run of one-token requests
see the same distributions.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, TypeVar

import attrs

from ..config import WeaveSettings
from .batching import Batcher, BatchTokenSource
from .beam import TINY_PROB, Beam, find_stop, has_text, make_beam, rank_beams, split_story
from .bestfirst import BestFirstSearch
from .chain import ChainRequest
from .frontier import Frontier, OpenBeam
from .source import (
    Candidate,
    Continuation,
    Prompt,
    Step,
    TokenSource,
    Usage,
    current_usage,
)
from .suffix import score_leads
from .tree import ThreadTree

__all__ = ["Frontier", "Weave", "WeaveResult", "WeaveStats", "weave"]

T = TypeVar("T")


@attrs.define
class WeaveStats:
    """What the weave cost.

    On a real model the costs are prompt tokens evaluated and tokens decoded; requests are
    cheap.  ``tree_tokens`` counts the tokens the weave kept (the tree's nodes), so
    ``tokens_per_second`` is not inflated by tokens decoded and thrown away.
    """

    requests: int = 0
    decoded_tokens: int = 0  # tokens the backend generated, kept or not
    tree_tokens: int = 0  # tokens in the final tree
    prompt_tokens: int = 0  # prompt tokens the backend evaluated (0 where it cannot tell)
    reused_tokens: int = 0  # steps answered from an earlier weave's memory
    saved_requests: int = 0  # requests that memory made unnecessary
    elapsed: float = 0.0
    first_beam: float | None = None  # seconds to the first finished beam

    @property
    def tokens_per_second(self) -> float:
        return self.tree_tokens / self.elapsed if self.elapsed > 0 else 0.0

    def speed_line(self, suggestions: int) -> str:
        return (
            f"{suggestions} suggestions in {self.elapsed:.2f} s @ "
            f"{self.tokens_per_second:.1f} tokens/s, {self.requests} requests"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "tokens": self.tree_tokens,
            "decodedTokens": self.decoded_tokens,
            "promptTokens": self.prompt_tokens,
            "reusedTokens": self.reused_tokens,
            "savedRequests": self.saved_requests,
            "elapsed": self.elapsed,
            "firstBeam": self.first_beam,
            "tokensPerSecond": self.tokens_per_second,
        }


@attrs.frozen
class WeaveResult:
    """Sorted, deduplicated beams, the tree they came from, and the cost."""

    beams: list[Beam]
    tree: ThreadTree
    stats: WeaveStats
    prompt: str
    held: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "beams": [b.to_dict() for b in self.beams],
            "tree": self.tree.to_dict(),
            "stats": self.stats.to_dict(),
        }


class Weave:
    """One weave of one story.  Run it once with :meth:`run` or :meth:`stream`.

    ``limiter`` bounds the requests in flight; pass the same one to every weave that shares
    a backend, so the bound holds for the backend and not per weave.  Without one, the
    weave makes its own of size ``concurrency``.

    ``fold``: near-duplicates in the result become ``variants`` of the best of them
    (:func:`.beam.rank_beams`); what a writer reads wants it, a test of the search not.

    ``after``: the text after the cursor (:func:`.suffix.after_cursor`); with
    ``afterCursor`` on, beams that repeat it are demoted and the finished beams are ranked
    by how well they lead into it (:mod:`.suffix`); every prompt carries it as its
    ``suffix``, for a backend whose model fills in the middle.
    """

    def __init__(
        self,
        source: TokenSource,
        story: str,
        settings: WeaveSettings | None = None,
        *,
        concurrency: int = 4,
        limiter: asyncio.Semaphore | None = None,
        root: Prompt | None = None,
        fold: bool = False,
        after: str = "",
    ) -> None:
        self.source = source
        self.fold = fold
        #: What the root stands for when the story continues a known path by its token ids
        #: (engine/memory.py: ``StepMemory.root_for``); else the story's own text.
        self.root = root
        self.settings = settings or WeaveSettings()
        self.after = after if self.settings.after_cursor else ""
        self.prompt, self.held = split_story(story)
        self.tree = ThreadTree(self.prompt)
        self.stats = WeaveStats()
        self.usage = Usage()
        self.concurrency = max(1, concurrency)
        self.limiter = limiter or asyncio.Semaphore(self.concurrency)
        self._stops = [s.encode() for s in self.settings.stop_strings]
        self._finished: list[Beam] = []
        self.frontier = Frontier()
        self._limit_hit = asyncio.Event()
        self._on_beam: Callable[[Beam], None] | None = None
        self._emitted: set[str] = set()
        self._started = 0.0
        self._batcher: Batcher | None = None
        if isinstance(source, BatchTokenSource):
            self._batcher = Batcher(source, self.settings.top_n, self.limiter)

    # -- public -------------------------------------------------------------------

    async def run(self, on_beam: Callable[[Beam], None] | None = None) -> WeaveResult:
        """Weave to the end.  ``on_beam`` sees each new beam text as soon as it finishes."""
        self._on_beam = on_beam
        self._started = time.perf_counter()
        token = current_usage.set(self.usage)
        try:
            root = OpenBeam(self.tree.root, b"", ())
            self.frontier.add(root)
            if self.settings.strategy == "token":
                await self._run_token(root)
            elif self.settings.strategy == "best":
                self.frontier.remove(root)  # queued: it grows once the search takes it
                await BestFirstSearch(self).run(root)
            else:
                await self._run_chain(root)
            if self.after:
                self._finished = await self._led(self._finished)
        finally:
            current_usage.reset(token)
            self.stats.elapsed = time.perf_counter() - self._started
            self.stats.prompt_tokens = self.usage.prompt_tokens
            # what memory answered was counted as asked for: take it off
            self.stats.reused_tokens = self.usage.reused_tokens
            self.stats.saved_requests = self.usage.saved_requests
            self.stats.decoded_tokens -= self.usage.reused_tokens
            self.stats.requests -= self.usage.saved_requests
            self.stats.tree_tokens = sum(1 for node in self.tree.nodes() if node.candidate)
            if self._batcher is not None:
                self._batcher.cancel()
                self.stats.requests += self._batcher.requests
        return WeaveResult(
            rank_beams(
                self._finished,
                self.settings.rank,
                story=self.prompt,
                repeats=self.settings.repeats,
                limit=self.settings.max_suggestions,
                fold=self.fold,
                after=self.after,
            ),
            self.tree,
            self.stats,
            self.prompt,
            self.held,
        )

    async def stream(self) -> AsyncIterator[Beam | WeaveResult]:
        """Yield each beam as it finishes, then the final :class:`WeaveResult`.

        Closing the iterator early cancels the weave and its in-flight requests.
        """
        queue: asyncio.Queue[Beam | WeaveResult | BaseException] = asyncio.Queue()

        async def runner() -> None:
            try:
                queue.put_nowait(await self.run(queue.put_nowait))
            except BaseException as exc:  # handed to the consumer, which re-raises
                queue.put_nowait(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise

        task = asyncio.ensure_future(runner())
        try:
            while True:
                item = await queue.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
                if isinstance(item, WeaveResult):
                    return
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    # -- the rules every strategy shares (:class:`.rules.WeaveRules`) ---------------------

    def _cutoff(self, depth: int) -> float:
        return self.settings.cutoff * self.settings.multiplier**depth

    def split(self, step: Step, depth: int) -> list[Candidate]:
        """The alternatives taken at one position: the chosen token, then the rest while
        p >= cutoff, at most splitLimit in all (0: unlimited).  ``best`` without ``prune``
        takes every one: its frontier, ordered by joint probability, does the choosing."""
        if self.settings.strategy == "best" and not self.settings.prune:
            return [step.chosen, *(cand for cand in step.top if not _same(cand, step.chosen))]
        cutoff = self._cutoff(depth)
        limit = self.settings.split_limit
        chosen = step.chosen
        taken = [chosen]
        for cand in step.top:
            if limit and len(taken) >= limit:
                break
            if _same(cand, chosen):
                continue
            if cand.prob < cutoff:
                break
            taken.append(cand)
        return taken

    def branch(self, beam: OpenBeam, step: Step) -> list[tuple[OpenBeam, str | None]]:
        """The children taken at one position, in split order, each with why it ends now
        (None: it goes on).  On the frontier they replace ``beam``."""
        beam.node.offered = step.top
        children = [self._child(beam, cand) for cand in self.split(step, beam.depth)]
        self.frontier.replace(beam, [child for child, _ in children])
        return children

    def _child(self, beam: OpenBeam, cand: Candidate) -> tuple[OpenBeam, str | None]:
        node = beam.node.add(cand)
        logp = beam.logp + math.log(max(cand.prob, TINY_PROB))
        if cand.is_end:
            return OpenBeam(node, beam.data, beam.ids, logp), "eos"
        ids = (*beam.ids, cand.token_id) if cand.token_id is not None else beam.ids
        child = OpenBeam(node, beam.data + cand.data, ids, logp)
        if self.settings.auto_stop:
            end = find_stop(child.data, self._stops)
            if end is not None:
                child.data = child.data[:end]
                return child, "stop"
        if child.depth >= self.settings.max_depth:
            return child, "depth"
        return child, None

    def finish(self, beam: OpenBeam, reason: str) -> Beam:
        self.frontier.remove(beam)
        beam.node.finish = reason
        result = make_beam(beam.node.path(), beam.data, self.held, reason)
        self._finished.append(result)
        if self.stats.first_beam is None and result.text.strip():
            self.stats.first_beam = time.perf_counter() - self._started
        if self._on_beam and result.text.strip() and result.text not in self._emitted:
            self._emitted.add(result.text)
            self._on_beam(result)
        return result

    async def _led(self, finished: list[Beam]) -> list[Beam]:
        """The finished beams, one per text, each with its lead into the text after the
        cursor where the backend can score it (:func:`.suffix.score_leads`)."""
        merged = rank_beams(finished, self.settings.rank)
        led = await score_leads(self.source, merged, self._beam_prompt, self.after, self.limiter)
        self.stats.requests += sum(1 for beam in led if beam.lead)  # one a scored beam
        return led

    def _beam_prompt(self, beam: Beam) -> Prompt:
        """The prompt a finished beam continues: the story and the beam's token ids (its
        text where a token has no id, or the tokens spell more than the beam kept)."""
        ids = tuple(t.token_id for t in beam.tokens if t.token_id is not None)
        whole = len(ids) == len(beam.tokens) and "".join(t.text for t in beam.tokens) == beam.text
        data = beam.text.encode()
        if not whole:
            return Prompt(self.prompt + beam.text, suffix=self.after)
        if self.root is not None:
            root = self.root
            return Prompt(root.text, (*root.token_ids, *ids), root.tail + data, self.after)
        return Prompt(self.prompt, ids, data, self.after)

    def _limit_reached(self) -> bool:
        if len(self._finished) + len(self.frontier) >= self.settings.max_suggestions:
            self._limit_hit.set()
        return self._limit_hit.is_set()

    def _finish_frontier(self) -> None:
        """The limit bound: every beam still open ends where it stands."""
        for beam in self.frontier:
            self.finish(beam, "limit")

    def prompt_for(self, beam: OpenBeam) -> Prompt:
        stop = self._stop_for(beam)
        if self.root is not None:
            root = self.root
            return Prompt(
                root.text, (*root.token_ids, *beam.ids), root.tail + beam.data, self.after, stop
            )
        return Prompt(self.prompt, beam.ids, beam.data, self.after, stop)

    def _stop_for(self, beam: OpenBeam) -> tuple[str, ...]:
        """The stop strings that end ``beam`` wherever they come next: all of them once it
        has text of its own (autoStop), none before (a beam may start with one)."""
        if not self.settings.auto_stop or not has_text(beam.data, self._stops):
            return ()
        return self.settings.stop_strings

    async def _ask(self, beam: OpenBeam, max_tokens: int) -> Continuation:
        prompt = self.prompt_for(beam)
        if self._batcher is not None:
            return await self.answer(prompt, max_tokens, batched=True)
        async with self.limiter:
            return await self.answer(prompt, max_tokens, batched=False)

    async def answer(self, prompt: Prompt, max_tokens: int, *, batched: bool) -> Continuation:
        """One answer; ``batched``: through the batcher, which takes the limiter itself;
        otherwise the caller holds a permit."""
        if batched and self._batcher is not None:
            cont = await self._batcher.ask(prompt, max_tokens)  # counted in run()
        else:
            self.stats.requests += 1
            cont = await self.source.continue_prompt(prompt, max_tokens, self.settings.top_n)
        self.stats.decoded_tokens += len(cont.steps)
        return cont

    # -- token: the seed's breadth-first search ---------------------------------------

    async def _run_token(self, root: OpenBeam) -> None:
        level = [root]
        while level:
            answers = await _all_or_none([self._ask(beam, 1) for beam in level])
            next_level: list[OpenBeam] = []
            for beam, cont in zip(level, answers):
                if not cont.steps:
                    self.finish(beam, "eos")
                    continue
                for child, end in self.branch(beam, cont.steps[0]):
                    if end:
                        self.finish(child, end)
                    else:
                        next_level.append(child)
                # checked after every beam, not once per level: the beams of this level
                # not taken yet are pending, and finish where they stand
                if self._limit_reached():
                    self._finish_frontier()
                    return
            level = next_level

    # -- chain: one streamed request per beam -------------------------------------------

    async def _run_chain(self, root: OpenBeam) -> None:
        """Each beam gets one streamed chain; each alternative a chain of its own, started
        as soon as its position arrives.  When the suggestion limit binds, the chains
        still in flight are cancelled and their beams end where they stand."""
        tasks: set[asyncio.Task[None]] = set()

        def spawn(beam: OpenBeam) -> None:
            tasks.add(asyncio.ensure_future(self._chain_beam(beam, spawn)))

        spawn(root)
        limit = asyncio.ensure_future(self._limit_hit.wait())
        try:
            while tasks:
                done, _ = await asyncio.wait({*tasks, limit}, return_when=asyncio.FIRST_COMPLETED)
                tasks.difference_update(done)
                for task in done - {limit}:
                    task.result()  # re-raise a backend failure; finally cancels the rest
                if limit.done():
                    break
        finally:
            limit.cancel()
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
        self._finish_frontier()

    async def _chain_beam(self, beam: OpenBeam, spawn: Callable[[OpenBeam], None]) -> None:
        if self._limit_hit.is_set():
            return  # the frontier finishes it
        chain = ChainRequest(self, self.prompt_for(beam), self.settings.max_depth - beam.depth)
        current = beam
        async with chain:
            async for step in chain:
                if self._limit_hit.is_set():
                    return  # another chain reached the limit: this one ends where it stands
                (current, end), *others = self.branch(current, step)
                for child, child_end in others:
                    if child_end:
                        self.finish(child, child_end)
                    else:
                        spawn(child)
                if end:
                    self.finish(current, end)
                    return
                if self._limit_reached():
                    return  # _run_chain ends every open beam, this one included
        if chain.ended or chain.taken == 0:
            self.finish(current, "eos")
        else:
            spawn(current)  # the server stopped short of the depth: ask again from here

    def batched(self) -> bool:
        # Known only once an auto-detecting backend has probed: ask each time.
        return self._batcher is not None and self._batcher.source.max_batch > 1


async def _all_or_none(coros: list[Coroutine[Any, Any, T]]) -> list[T]:
    """Every result in order; when one raises, the others are cancelled (and awaited)
    before the error goes on, so no request is left running (``asyncio.gather`` leaves
    them)."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                task.result()  # raises it
        return [task.result() for task in tasks]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _same(a: Candidate, b: Candidate) -> bool:
    if a.token_id is not None and b.token_id is not None:
        return a.token_id == b.token_id
    return a.data == b.data


async def weave(
    source: TokenSource,
    story: str,
    settings: WeaveSettings | None = None,
    *,
    concurrency: int = 4,
    limiter: asyncio.Semaphore | None = None,
    on_beam: Callable[[Beam], None] | None = None,
    fold: bool = False,
    after: str = "",
) -> WeaveResult:
    """Weave ``story`` once; see :class:`Weave`."""
    weave_ = Weave(
        source, story, settings, concurrency=concurrency, limiter=limiter, fold=fold, after=after
    )
    return await weave_.run(on_beam)
