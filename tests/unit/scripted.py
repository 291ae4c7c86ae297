"""An in-memory scripted TokenSource for exact engine rule cases.

It is not a model of any server: it answers from a table that maps the beam's token
ids to next-token probabilities, greedily, like a backend's chain would.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence

from lloom_lsp.engine import Candidate, Continuation, Prompt, Step, sort_candidates

Table = Callable[[tuple[int, ...]], Sequence[tuple[int, float]]]


class ScriptedSource:
    def __init__(
        self,
        vocab: Mapping[int, bytes],
        table: Table,
        *,
        end_id: int | None = None,
        delay: float = 0.0,
    ) -> None:
        self.vocab = vocab
        self.table = table
        self.end_id = end_id
        self.delay = delay
        self.requests: list[tuple[tuple[int, ...], int]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.cancelled = 0

    def _cand(self, token_id: int, prob: float) -> Candidate:
        return Candidate(token_id, self.vocab[token_id], prob, is_end=token_id == self.end_id)

    async def continue_prompt(self, prompt: Prompt, max_tokens: int, top_n: int) -> Continuation:
        self.requests.append((prompt.token_ids, max_tokens))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            else:
                await asyncio.sleep(0)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.in_flight -= 1
        ids = prompt.token_ids
        steps = []
        for _ in range(max_tokens):
            top = sort_candidates([self._cand(i, p) for i, p in self.table(ids)])[:top_n]
            steps.append(Step(top[0], top))
            if top[0].is_end:
                return Continuation(tuple(steps), ended=True)
            ids = (*ids, top[0].token_id)  # type: ignore[arg-type]
        return Continuation(tuple(steps))


def fixed(dist: Sequence[tuple[int, float]]) -> Table:
    """The same distribution after every context."""
    return lambda ids: dist


class BatchingSource(ScriptedSource):
    """The scripted source, also answering several prompts per request."""

    def __init__(self, *args: object, max_batch: int = 8, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.max_batch = max_batch
        self.batches: list[int] = []

    async def continue_prompts(
        self, prompts: Sequence[Prompt], max_tokens: int, top_n: int
    ) -> list[Continuation]:
        assert len(prompts) <= self.max_batch
        self.batches.append(len(prompts))
        return [await self.continue_prompt(p, max_tokens, top_n) for p in prompts]


class StreamingSource(ScriptedSource):
    """The scripted source, also streaming each chain one Step at a time.

    Each step waits for ``step_delay`` (or one turn of the loop), so other chains run
    between steps as they would against a server.  It records how many steps each stream
    handed over before it was closed, and how many streams were closed early.
    """

    def __init__(self, *args: object, step_delay: float = 0.0, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.step_delay = step_delay
        self.streamed: list[int] = []  # steps handed over, per stream
        self.closed_early = 0
        self.events: list[str] = []  # "start ids" / "end ids", in order
        self.stops: dict[tuple[int, ...], tuple[str, ...]] = {}  # each stream's Prompt.stop

    async def stream_steps(
        self, prompt: Prompt, max_tokens: int, top_n: int
    ) -> AsyncIterator[Step]:
        self.requests.append((prompt.token_ids, max_tokens))
        self.events.append(f"start {prompt.token_ids}")
        self.stops[prompt.token_ids] = prompt.stop
        ids = prompt.token_ids
        given = 0
        finished = False
        try:
            for _ in range(max_tokens):
                await asyncio.sleep(self.step_delay)
                top = sort_candidates([self._cand(i, p) for i, p in self.table(ids)])[:top_n]
                given += 1
                yield Step(top[0], top)
                if top[0].is_end:
                    break
                ids = (*ids, top[0].token_id)  # type: ignore[arg-type]
            finished = True
        finally:
            if not finished:
                self.closed_early += 1
            self.streamed.append(given)
            self.events.append(f"end {prompt.token_ids}")
