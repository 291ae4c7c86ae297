"""One beam's request for a greedy chain, streamed or answered whole."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from .closing import aclose_fully
from .rules import WeaveRules
from .source import Prompt, Step, StreamingTokenSource

__all__ = ["ChainRequest"]


class ChainRequest:
    """One beam's greedy chain: streamed where the backend streams, so every alternative
    starts as soon as its position arrives and closing stops the server's decoding; from one
    answer where the backend batches several beams per request (or cannot stream).

    Outside the batcher it holds one permit of the weave's limiter from entry to exit.
    """

    def __init__(self, weave: WeaveRules, prompt: Prompt, max_tokens: int) -> None:
        self.weave = weave
        self.prompt = prompt
        self.max_tokens = max_tokens
        self.taken = 0
        self.ended = False  # the server said end of sequence without an end token
        self._steps: AsyncGenerator[Step, None] | None = None
        self._held = False

    async def __aenter__(self) -> ChainRequest:
        if not self.weave.batched():  # the batcher takes the limiter per request itself
            await self.weave.limiter.acquire()
            self._held = True
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            if self._steps is not None:
                # stops the server decoding what we no longer need, to the end even when
                # the weave is cancelled again meanwhile (engine/closing.py)
                await aclose_fully(self._steps)
        finally:
            if self._held:
                self._held = False
                self.weave.limiter.release()

    def __aiter__(self) -> AsyncGenerator[Step, None]:
        self._steps = self._generate()
        return self._steps

    async def _generate(self) -> AsyncGenerator[Step, None]:
        weave = self.weave
        source = weave.source
        if self._held and isinstance(source, StreamingTokenSource):
            weave.stats.requests += 1
            stream = source.stream_steps(self.prompt, self.max_tokens, weave.settings.top_n)
            try:
                async for step in stream:
                    self.taken += 1
                    weave.stats.decoded_tokens += 1
                    yield step
            finally:
                await aclose_fully(stream)
            return
        cont = await weave.answer(self.prompt, self.max_tokens, batched=not self._held)
        self.ended = cont.ended
        for step in cont.steps:
            self.taken += 1
            yield step
