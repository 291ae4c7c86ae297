"""Several beams in one request, for backends that accept a list of prompts.

Requests made in the same turn of the event loop with the same token budget are
grouped, up to the backend's ``max_batch``, into one ``continue_prompts`` call.
The engine's concurrency limit then counts requests, not beams.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from .source import Continuation, Prompt, TokenSource

__all__ = ["BatchTokenSource", "Batcher"]


@runtime_checkable
class BatchTokenSource(TokenSource, Protocol):
    """A TokenSource that can also continue several prompts in one request."""

    max_batch: int

    async def continue_prompts(
        self, prompts: Sequence[Prompt], max_tokens: int, top_n: int
    ) -> list[Continuation]: ...


class Batcher:
    def __init__(self, source: BatchTokenSource, top_n: int, semaphore: asyncio.Semaphore):
        self.source = source
        self.top_n = top_n
        self.semaphore = semaphore
        self.requests = 0
        self._waiting: dict[int, list[tuple[Prompt, asyncio.Future[Continuation]]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def ask(self, prompt: Prompt, max_tokens: int) -> Continuation:
        future: asyncio.Future[Continuation] = asyncio.get_running_loop().create_future()
        queue = self._waiting.setdefault(max_tokens, [])
        queue.append((prompt, future))
        if len(queue) == 1:  # first of this turn: flush once the turn is over
            task = asyncio.ensure_future(self._flush(max_tokens))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _flush(self, max_tokens: int) -> None:
        await asyncio.sleep(0)  # let the rest of this turn's requests join
        queue = self._waiting.pop(max_tokens, [])
        size = max(1, self.source.max_batch)
        chunks = [queue[i : i + size] for i in range(0, len(queue), size)]
        await asyncio.gather(*(self._send(max_tokens, chunk) for chunk in chunks))

    async def _send(
        self, max_tokens: int, chunk: list[tuple[Prompt, asyncio.Future[Continuation]]]
    ) -> None:
        live = chunk
        try:
            async with self.semaphore:
                # beams whose weave was cancelled while waiting for a slot are not sent
                live = [(p, f) for p, f in chunk if not f.done()]
                if not live:
                    return
                self.requests += 1
                answers = await self.source.continue_prompts(
                    [p for p, _ in live], max_tokens, self.top_n
                )
        except asyncio.CancelledError:
            for _, future in live:
                future.cancel()
            raise
        except Exception as exc:
            for _, future in live:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), answer in zip(live, answers):
            if not future.done():
                future.set_result(answer)

    def cancel(self) -> None:
        for task in self._tasks:
            task.cancel()
