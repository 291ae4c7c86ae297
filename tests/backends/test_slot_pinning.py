"""Slot pinning against the real llama-server: the story is evaluated once per weave.

Measured with llama-server's own ``timings.prompt_n``: over a weave, the prompt tokens
evaluated stay at most the story's tokens plus twice the tokens in the final tree.
"""

from __future__ import annotations

import itertools
import json

import httpx

from lloom_lsp.backends import LlamaCppBackend
from lloom_lsp.config import WeaveSettings
from lloom_lsp.engine import weave
from lloom_lsp.engine.beam import split_story
from lloom_lsp.testmodel import SAMPLE_PROMPTS

_fresh = itertools.count()


def long_story() -> str:
    """A story no slot has seen (a new first line each call), about 2,000 tokens."""
    body = " ".join(itertools.islice(itertools.cycle(SAMPLE_PROMPTS), 400))
    return f"Draft {next(_fresh)} of the tale.\n\n{body[:6000]}"


async def story_tokens(url: str, story: str) -> int:
    async with httpx.AsyncClient(timeout=30) as client:
        answer = await client.post(f"{url}/tokenize", json={"content": split_story(story)[0]})
    return len(answer.json()["tokens"])


async def slot_states(url: str) -> list[dict[str, object]]:
    async with httpx.AsyncClient(timeout=30) as client:
        return list((await client.get(f"{url}/slots")).json())


async def test_a_cold_weave_evaluates_the_story_once(llama_server_url: str) -> None:
    story = long_story()
    n_story = await story_tokens(llama_server_url, story)
    backend = LlamaCppBackend(llama_server_url, concurrency=4)
    try:
        result = await weave(backend, story, WeaveSettings(max_suggestions=25))
    finally:
        await backend.aclose()
    stats = result.stats
    assert stats.requests > 4  # several chains ran, so several slots could have been used
    assert n_story <= stats.prompt_tokens <= n_story + 2 * stats.tree_tokens
    slots = await slot_states(llama_server_url)
    # Only one slot's cache holds the story; the others were never asked to evaluate it.
    holding = [s for s in slots if int(str(s.get("n_prompt_tokens", 0))) >= n_story]
    assert len(holding) == 1


async def test_a_warm_up_fills_every_slot_and_the_next_weave_evaluates_almost_nothing(
    llama_server_url: str,
) -> None:
    story = long_story()
    n_story = await story_tokens(llama_server_url, story)
    backend = LlamaCppBackend(llama_server_url, concurrency=4)
    try:
        assert await backend.warm(split_story(story)[0]) == 4
        assert await backend.warm(split_story(story)[0]) == 0  # all hold it now
        # chain: every token in its tree was decoded (best's tree also holds the top-N
        # alternatives it never took)
        settings = WeaveSettings(strategy="chain", max_suggestions=25)
        result = await weave(backend, story, settings)
    finally:
        await backend.aclose()
    assert result.stats.prompt_tokens <= 2 * result.stats.tree_tokens < n_story


async def test_requests_are_pinned_with_id_slot(llama_server_url: str) -> None:
    seen: list[bytes] = []

    class Recording(httpx.AsyncHTTPTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.url.path == "/completion":
                seen.append(request.read())
            return await super().handle_async_request(request)

    backend = LlamaCppBackend(llama_server_url, concurrency=2, transport=Recording())
    try:
        await weave(backend, "Once upon a time,", WeaveSettings(max_suggestions=5))
    finally:
        await backend.aclose()
    bodies = [json.loads(body) for body in seen]
    assert bodies and all(b["id_slot"] in (0, 1) for b in bodies)
