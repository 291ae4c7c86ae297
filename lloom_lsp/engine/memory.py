"""Continue without starting over: the steps a weave already got, kept and replayed.

A :class:`StepMemory` remembers every Step a backend answered, by the prompt it continued
(the story text and the token ids after it, and the text after the cursor, which a model
that fills in the middle reads: its answers differ with it).  :func:`remembering` wraps a
TokenSource so that a request for a prompt whose steps are known is answered from memory
up to the first unknown position, and only the rest goes to the backend: a chain that is
known to its end sends no request at all.  Every answered step is remembered, so the next
weave after an accepted beam (whose story is the old one plus the beam's tokens) extends
only the frontier.

``root_for`` finds the prompt to continue by token ids for a new story: the old story's
text plus the ids of a known path whose text is exactly what was added.  Continuing by ids
is also what the model produced, where re-sent text could tokenize differently.

The memory is bounded (least recently used steps go first) and belongs to one document.
Backends that batch several beams per request (BatchTokenSource) are not wrapped.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import attrs
from cachetools import LRUCache

from .closing import aclose_fully
from .source import Continuation, Prompt, Step, StreamingTokenSource, TokenSource, current_usage

__all__ = ["StepMemory", "remembering"]

#: Steps one document keeps (a step holds topN candidates: about 1 KB each).
MAX_STEPS = 4096

_Key = tuple[str, str, tuple[int, ...]]  # (story text, text after the cursor, token ids)


@attrs.define(eq=False)
class _Known:
    step: Step
    top_n: int  # how many alternatives were asked for when it was answered


class StepMemory:
    """Steps by the prompt they continued: ``(story text, suffix, token ids before the
    step)``."""

    def __init__(self, max_steps: int = MAX_STEPS) -> None:
        self._steps: LRUCache[_Key, _Known] = LRUCache(maxsize=max_steps)
        #: The text each known path adds to its story (for :meth:`root_for`).
        self._texts: LRUCache[_Key, bytes] = LRUCache(maxsize=max_steps)

    def __len__(self) -> int:
        return len(self._steps)

    def get(self, text: str, ids: tuple[int, ...], top_n: int, suffix: str = "") -> Step | None:
        known = self._steps.get((text, suffix, ids))
        if known is None or known.top_n < top_n:
            return None  # unknown, or asked with fewer alternatives than wanted now
        step = known.step
        return step if len(step.top) <= top_n else attrs.evolve(step, top=step.top[:top_n])

    def put(
        self,
        text: str,
        ids: tuple[int, ...],
        data: bytes,
        step: Step,
        top_n: int,
        suffix: str = "",
    ) -> None:
        """``step`` came after ``ids`` (which add ``data`` to the story ``text``), with
        ``suffix`` after the cursor."""
        self._steps[(text, suffix, ids)] = _Known(step, top_n)
        chosen = step.chosen
        if chosen.token_id is not None and not chosen.is_end:
            self._texts[(text, suffix, (*ids, chosen.token_id))] = data + chosen.data
        self._texts.setdefault((text, suffix, ids), data)

    def root_for(self, prompt: str, suffix: str = "") -> Prompt | None:
        """The prompt that continues a known path whose story plus text is ``prompt``, with
        ``suffix`` after the cursor (its ``tail`` is that text, for the record): the path
        with the most known steps below it wins."""
        best: tuple[int, Prompt] | None = None
        encoded = prompt.encode("utf-8", errors="surrogatepass")
        for (text, after, ids), data in list(self._texts.items()):
            if not ids or after != suffix or not prompt.startswith(text):
                continue
            if text.encode("utf-8", errors="surrogatepass") + data != encoded:
                continue
            below = sum(
                1
                for key in self._steps
                if key[0] == text and key[1] == after and key[2][: len(ids)] == ids
            )
            if below and (best is None or below > best[0]):
                best = (below, Prompt(text, ids, data, suffix))
        return best[1] if best else None


def remembering(source: TokenSource, memory: StepMemory) -> TokenSource:
    """``source``, answering known steps from ``memory`` and remembering new ones."""
    if isinstance(source, StreamingTokenSource):
        return _StreamingRemembering(source, memory)
    return _Remembering(source, memory)


class _Remembering:
    def __init__(self, source: TokenSource, memory: StepMemory) -> None:
        self.source = source
        self.memory = memory

    def __getattr__(self, name: str) -> Any:  # check(), aclose(), warm() ... of the backend
        return getattr(self.source, name)

    def _known(self, prompt: Prompt, max_tokens: int, top_n: int) -> tuple[list[Step], bool]:
        """The known steps from ``prompt`` on (at most ``max_tokens``), and whether they
        end the chain (an end of sequence)."""
        steps: list[Step] = []
        if not prompt.token_ids and prompt.tail:
            return steps, False  # a text-only continuation: no ids to key it by
        ids = prompt.token_ids
        while len(steps) < max_tokens:
            step = self.memory.get(prompt.text, ids, top_n, prompt.suffix)
            if step is None:
                break
            steps.append(step)
            if step.chosen.is_end or step.chosen.token_id is None:
                return steps, step.chosen.is_end
            ids = (*ids, step.chosen.token_id)
        return steps, False

    def _data(self, prompt: Prompt, steps: list[Step]) -> bytes:
        return prompt.tail + b"".join(s.chosen.data for s in steps)

    def _remember(self, prompt: Prompt, steps: list[Step], top_n: int) -> None:
        ids, data = prompt.token_ids, prompt.tail
        for step in steps:
            self.memory.put(prompt.text, ids, data, step, top_n, prompt.suffix)
            if step.chosen.token_id is None or step.chosen.is_end:
                return
            ids, data = (*ids, step.chosen.token_id), data + step.chosen.data

    @staticmethod
    def _after(prompt: Prompt, steps: list[Step]) -> Prompt:
        if not steps:
            return prompt
        ids = tuple(s.chosen.token_id for s in steps if s.chosen.token_id is not None)
        return Prompt(
            prompt.text, (*prompt.token_ids, *ids), suffix=prompt.suffix, stop=prompt.stop
        )

    @staticmethod
    def _count(steps: int, saved_request: bool) -> None:
        usage = current_usage.get()
        if usage is not None:
            usage.reused_tokens += steps
            usage.saved_requests += int(saved_request)

    async def continue_prompt(self, prompt: Prompt, max_tokens: int, top_n: int) -> Continuation:
        known, ended = self._known(prompt, max_tokens, top_n)
        if ended or len(known) >= max_tokens:
            self._count(len(known), saved_request=True)
            return Continuation(tuple(known), ended=ended)
        self._count(len(known), saved_request=False)
        rest = await self.source.continue_prompt(
            self._after(prompt, known), max_tokens - len(known), top_n
        )
        self._remember(prompt, [*known, *rest.steps], top_n)
        return Continuation((*known, *rest.steps), ended=rest.ended)


class _StreamingRemembering(_Remembering):
    source: StreamingTokenSource

    async def stream_steps(
        self, prompt: Prompt, max_tokens: int, top_n: int
    ) -> AsyncIterator[Step]:
        known, ended = self._known(prompt, max_tokens, top_n)
        complete = ended or len(known) >= max_tokens
        self._count(len(known), saved_request=complete)
        for step in known:
            yield step
        if complete:
            return
        after = self._after(prompt, known)
        ids, data = after.token_ids, self._data(prompt, known)
        stream = self.source.stream_steps(after, max_tokens - len(known), top_n)
        try:
            async for step in stream:
                self.memory.put(prompt.text, ids, data, step, top_n, prompt.suffix)
                yield step
                if step.chosen.token_id is None or step.chosen.is_end:
                    continue
                ids, data = (*ids, step.chosen.token_id), data + step.chosen.data
        finally:
            await aclose_fully(stream)
