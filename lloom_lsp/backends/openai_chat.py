"""OpenAI chat completions (``POST /v1/chat/completions``) for chat-only models.

A chat model answers a message rather than continuing a text, so the story (with the beam so
far) goes in the user message and ``chat_instruction`` asks, as the system message, for a
verbatim continuation.  What comes back are the probabilities of the model's *reply* after
the server's chat template: the same weave as a plain completion of the templated prompt,
not of the story itself.  Chat APIs take no token ids, so every beam is re-sent as text.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from httpx_sse import ServerSentEvent

from ..engine.source import Continuation, Prompt, Step
from .base import DEFAULT_MAX_LOGPROBS, BackendInfo, end_continuation, no_probabilities
from .openai import (
    OpenAIStyleBackend,
    first_choice,
    parse_logprobs,
)
from .streaming import Chunk, closing, release_steps, sse_data

__all__ = ["DEFAULT_INSTRUCTION", "OpenAIChatBackend", "chat_messages", "parse_chat"]

DEFAULT_INSTRUCTION = "Continue the following text verbatim, without any preamble or commentary."


def chat_messages(prompt: Prompt, instruction: str) -> list[dict[str, str]]:
    """The messages for one request: the instruction (if any), then the text to continue."""
    system = [{"role": "system", "content": instruction}] if instruction else []
    return [*system, {"role": "user", "content": prompt.as_text()}]


class OpenAIChatBackend(OpenAIStyleBackend):
    """``/v1/chat/completions`` with ``logprobs: true`` and ``top_logprobs`` (at most 20)."""

    protocol = "openai-chat"
    path = "/v1/chat/completions"

    def __init__(self, url: str, *, instruction: str = DEFAULT_INSTRUCTION, **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        self.instruction = instruction

    def default_max_logprobs(self) -> int:
        return DEFAULT_MAX_LOGPROBS  # OpenAI's documented maximum for top_logprobs

    async def _body_for(
        self, prompt: Prompt, max_tokens: int, stream: bool
    ) -> Callable[[int], dict[str, Any]]:
        fields = {"messages": chat_messages(prompt, self.instruction), "logprobs": True}
        fixed = await self._greedy_body(fields, max_tokens, stream)
        return lambda n: {**fixed, "top_logprobs": n}

    async def continue_prompt(self, prompt: Prompt, max_tokens: int, top_n: int) -> Continuation:
        body_for = await self._body_for(prompt, max_tokens, stream=False)
        answer = await self._post(self.path, body_for, top_n)
        return parse_chat(answer, self.http.url(self.path))

    async def stream_steps(
        self, prompt: Prompt, max_tokens: int, top_n: int
    ) -> AsyncIterator[Step]:
        body_for = await self._body_for(prompt, max_tokens, stream=True)
        url = self.http.url(self.path)
        chunks = self._stream(self.path, body_for, top_n, lambda events: _chat_chunks(events, url))
        async with closing(release_steps(chunks, url)) as stream:
            async for step in stream:
                yield step

    async def check(self) -> BackendInfo:
        model = await self.model_name()
        ok, why = await self._probe()
        detail = (
            f"{self.server or 'server'} via POST {self.path} (chat: the reply's probabilities "
            f"after the chat template), top logprobs up to {self.max_logprobs}"
        )
        return BackendInfo(
            self.url, self.protocol, model, ok, f"{detail}; {why}" if why else detail
        )


def parse_chat(answer: Any, url: str) -> Continuation:
    """A chat completion: ``choices[0].logprobs.content[]``, bytes joined across tokens."""
    choice = first_choice(answer, url)
    steps = parse_logprobs(choice.get("logprobs"), url)
    return end_continuation(steps, choice.get("finish_reason") == "stop")


async def _chat_chunks(events: AsyncIterator[ServerSentEvent], url: str) -> AsyncIterator[Chunk]:
    async with closing(sse_data(events, url)) as stream:
        async for event in stream:
            choice = first_choice(event, url)
            reason = choice.get("finish_reason")
            logprobs = choice.get("logprobs")
            delta = choice.get("delta") or {}
            if logprobs and logprobs.get("content"):
                steps = parse_logprobs(logprobs, url)
            elif delta.get("content") and reason is None:
                raise no_probabilities(url)
            else:
                steps = []  # the role announcement, the finish chunk
            yield steps, (None if reason is None else reason == "stop")
