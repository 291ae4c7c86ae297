"""The weave: LLooM's tree search over token probabilities.

Two strategies grow the same tree:

* ``token`` is the seed's search, fixed: breadth-first by depth, one request per
  token per open beam.
* ``chain`` (the default) asks for a whole greedy chain with the top-N alternatives
  at every position, walks it with the same split rule, and gives every alternative
  it takes a request of its own.  Requests fall from one per token per beam to about
  one per beam; with maxSuggestions not binding, the suggestion set is the same.

Both continue a beam by its token ids, so a chain and a run of one-token requests
see the same distributions.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import attrs

from ..config import WeaveSettings
from .batching import Batcher, BatchTokenSource
from .beam import Beam, find_stop, make_beam, rank_beams, split_story
from .source import Candidate, Continuation, Prompt, Step, TokenSource
from .tree import ThreadTree, TreeNode

__all__ = ["Weave", "WeaveResult", "WeaveStats", "weave"]


@attrs.define
class WeaveStats:
    """What the weave cost."""

    requests: int = 0
    tokens: int = 0  # tokens the backend generated or evaluated as chain steps
    elapsed: float = 0.0

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.elapsed if self.elapsed > 0 else 0.0

    def speed_line(self, suggestions: int) -> str:
        return (
            f"{suggestions} suggestions in {self.elapsed:.2f} s @ "
            f"{self.tokens_per_second:.1f} tokens/s, {self.requests} requests"
        )


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
            "stats": {
                "requests": self.stats.requests,
                "tokens": self.stats.tokens,
                "elapsed": self.stats.elapsed,
                "tokensPerSecond": self.stats.tokens_per_second,
            },
        }


@attrs.define(eq=False)
class _Open:
    """A beam still growing: its tree node and bytes so far."""

    node: TreeNode
    data: bytes
    ids: tuple[int, ...]

    @property
    def depth(self) -> int:
        return self.node.depth


class Weave:
    """One weave of one story.  Run it once with :meth:`run` or :meth:`stream`."""

    def __init__(
        self,
        source: TokenSource,
        story: str,
        settings: WeaveSettings | None = None,
        *,
        concurrency: int = 4,
    ) -> None:
        self.source = source
        self.settings = settings or WeaveSettings()
        self.prompt, self.held = split_story(story)
        self.tree = ThreadTree(self.prompt)
        self.stats = WeaveStats()
        self._sem = asyncio.Semaphore(max(1, concurrency))
        self._stops = [s.encode() for s in self.settings.stop_strings]
        self._finished: list[Beam] = []
        self._open = 0
        self._limit_hit = False
        self._on_beam: Callable[[Beam], None] | None = None
        self._emitted: set[str] = set()
        self._batcher: Batcher | None = None
        if isinstance(source, BatchTokenSource):
            self._batcher = Batcher(source, self.settings.top_n, self._sem)

    # -- public -------------------------------------------------------------------

    async def run(self, on_beam: Callable[[Beam], None] | None = None) -> WeaveResult:
        """Weave to the end.  ``on_beam`` sees each new beam text as soon as it finishes."""
        self._on_beam = on_beam
        started = time.perf_counter()
        try:
            root = _Open(self.tree.root, b"", ())
            self._open = 1
            if self.settings.strategy == "token":
                await self._run_token(root)
            else:
                await self._run_chain(root)
        finally:
            self.stats.elapsed = time.perf_counter() - started
            if self._batcher is not None:
                self._batcher.cancel()
        return WeaveResult(
            rank_beams(self._finished, self.settings.rank),
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

    # -- rules shared by both strategies -------------------------------------------------

    def _cutoff(self, depth: int) -> float:
        return self.settings.cutoff * self.settings.multiplier**depth

    def _split(self, step: Step, depth: int) -> list[Candidate]:
        """The alternatives taken at one position: the chosen token, then the rest while
        p >= cutoff, at most splitLimit in all (0: unlimited)."""
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

    def _extend(self, beam: _Open, cand: Candidate) -> tuple[_Open, str | None]:
        """The child beam, and why it ends now (None: it goes on)."""
        node = beam.node.add(cand)
        self._open += 1
        if cand.is_end:
            return _Open(node, beam.data, beam.ids), "eos"
        ids = (*beam.ids, cand.token_id) if cand.token_id is not None else beam.ids
        child = _Open(node, beam.data + cand.data, ids)
        if self.settings.auto_stop:
            end = find_stop(child.data, self._stops)
            if end is not None:
                child.data = child.data[:end]
                return child, "stop"
        if child.depth >= self.settings.max_depth:
            return child, "depth"
        return child, None

    def _finish(self, beam: _Open, reason: str) -> None:
        self._open -= 1
        beam.node.finish = reason
        result = make_beam(beam.node.path(), beam.data, self.held, reason)
        self._finished.append(result)
        if self._on_beam and result.text.strip() and result.text not in self._emitted:
            self._emitted.add(result.text)
            self._on_beam(result)

    def _limit_reached(self) -> bool:
        if len(self._finished) + self._open >= self.settings.max_suggestions:
            self._limit_hit = True
        return self._limit_hit

    async def _ask(self, beam: _Open, max_tokens: int) -> Continuation:
        prompt = Prompt(self.prompt, beam.ids, beam.data)
        if self._batcher is not None:
            cont = await self._batcher.ask(prompt, max_tokens)
            self.stats.requests = self._batcher.requests
        else:
            async with self._sem:
                self.stats.requests += 1
                cont = await self.source.continue_prompt(prompt, max_tokens, self.settings.top_n)
        self.stats.tokens += len(cont.steps)
        return cont

    # -- token: the seed's breadth-first search ---------------------------------------

    async def _run_token(self, root: _Open) -> None:
        level = [root]
        while level:
            answers = await asyncio.gather(*(self._ask(beam, 1) for beam in level))
            next_level: list[_Open] = []
            for beam, cont in zip(level, answers):
                self._open -= 1  # the parent is replaced by its children
                if not cont.steps:
                    self._open += 1
                    self._finish(beam, "eos")
                    continue
                for cand in self._split(cont.steps[0], beam.depth):
                    child, end = self._extend(beam, cand)
                    if end:
                        self._finish(child, end)
                    else:
                        next_level.append(child)
            if next_level and self._limit_reached():
                for beam in next_level:
                    self._finish(beam, "limit")
                next_level = []
            level = next_level

    # -- chain: one request per beam ----------------------------------------------------

    async def _run_chain(self, root: _Open) -> None:
        tasks: set[asyncio.Task[None]] = set()

        def spawn(beam: _Open) -> None:
            tasks.add(asyncio.ensure_future(self._chain_beam(beam, spawn)))

        spawn(root)
        try:
            while tasks:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                tasks.difference_update(done)
                for task in done:
                    task.result()  # re-raise a backend failure; finally cancels the rest
        finally:
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)

    async def _chain_beam(self, beam: _Open, spawn: Callable[[_Open], None]) -> None:
        if self._limit_hit:
            self._finish(beam, "limit")
            return
        cont = await self._ask(beam, self.settings.max_depth - beam.depth)
        if self._limit_hit:
            self._finish(beam, "limit")
            return
        current = beam
        for step in cont.steps:
            self._open -= 1  # current is replaced by its children, made in split order
            children = [self._extend(current, cand) for cand in self._split(step, current.depth)]
            (current, end), *others = children
            for child, child_end in others:
                if child_end:
                    self._finish(child, child_end)
                else:
                    spawn(child)
            if end:
                self._finish(current, end)
                return
            if self._limit_reached():
                self._finish(current, "limit")
                return
        if cont.ended or not cont.steps:
            self._finish(current, "eos")
        else:
            spawn(current)  # the server stopped short of the depth: ask again from here


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
    on_beam: Callable[[Beam], None] | None = None,
) -> WeaveResult:
    """Weave ``story`` once; see :class:`Weave`."""
    return await Weave(source, story, settings, concurrency=concurrency).run(on_beam)
