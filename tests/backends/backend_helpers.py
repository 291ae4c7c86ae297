"""Helpers for the backend suite: the comparison of weaves across paths, and TokenSource
adapters that state what another path amounts to."""

from __future__ import annotations

from typing import Any

import httpx

from lloom_lsp.config import WeaveSettings
from lloom_lsp.engine import Continuation, Prompt, WeaveResult

__all__ = [
    "CHAT_WEAVE",
    "KEY_ENV",
    "TEST_KEY",
    "WEAVE",
    "TemplatedCompletion",
    "TextOnly",
    "weave_shape",
]

#: The key the OpenAI protocol fixtures expect; tests put it in this environment variable.
TEST_KEY = "sk-lloom-test-0123456789abcdef"
KEY_ENV = "LLOOM_TEST_OPENAI_KEY"

#: Settings whose weaves are deterministic: maxSuggestions never binds (when it does, which
#: beams finish first depends on the order answers arrive in).
#: Whole weaves compared across protocols follow LLooM's rules (``chain``), which are exact for a
#: given set of distributions; the default ``best`` depends on the order answers arrive.
WEAVE = WeaveSettings(strategy="chain", max_suggestions=1000, max_depth=8, cutoff=0.1)
#: For chat: the bigram model's reply after the ChatML header is "\n" (p ~0.92) with "The"
#: (p ~0.04) the runner-up at every position, so only a low cutoff makes the weave branch.
CHAT_WEAVE = WeaveSettings(strategy="chain", max_suggestions=1000, max_depth=5, cutoff=0.03)


# -- comparing weaves --------------------------------------------------------------------------


def weave_shape(result: WeaveResult) -> tuple[Any, ...]:
    """Everything a user sees of a weave, without token ids (text protocols have none):
    the beams with their finish and per-token text and probability, and the tree."""

    def node(n: dict[str, Any]) -> tuple[Any, ...]:
        return (n["text"], n["prob"], n["end"], n["finish"], tuple(map(node, n["children"])))

    beams = tuple(
        (b.text, b.insert_text, b.finish, tuple((t.text, t.prob) for t in b.tokens))
        for b in result.beams
    )
    return beams, node(result.tree.to_dict()["root"])


class TextOnly:
    """Any TokenSource, continuing every beam by its text (as the text-only protocols must)."""

    def __init__(self, source: Any) -> None:
        self.source = source

    async def continue_prompt(self, prompt: Prompt, max_tokens: int, top_n: int) -> Continuation:
        result: Continuation = await self.source.continue_prompt(
            Prompt(prompt.as_text()), max_tokens, top_n
        )
        return result


class TemplatedCompletion:
    """What a chat request amounts to: the server's own chat template applied to the chat
    messages, then a plain ``/completion`` of that text (through the native backend)."""

    def __init__(self, source: Any, url: str, instruction: str) -> None:
        self.source = source
        self.instruction = instruction
        self.client = httpx.AsyncClient(base_url=url, timeout=30)

    async def continue_prompt(self, prompt: Prompt, max_tokens: int, top_n: int) -> Continuation:
        from lloom_lsp.backends.openai_chat import chat_messages

        messages = chat_messages(prompt, self.instruction)
        response = await self.client.post("/apply-template", json={"messages": messages})
        response.raise_for_status()
        templated = response.json()["prompt"]
        result: Continuation = await self.source.continue_prompt(
            Prompt(templated), max_tokens, top_n
        )
        return result

    async def aclose(self) -> None:
        await self.client.aclose()
