"""Slot pinning against the real llama-server: the story is evaluated once per weave.

Measured with llama-server's own ``timings.prompt_n``: over a weave, the prompt tokens
evaluated stay at most the story's tokens plus twice the tokens in the final tree.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import httpx

from lloom_lsp.backends import LlamaCppBackend
from lloom_lsp.backends.process import LlamaServerProcess
from lloom_lsp.config import WeaveSettings
from lloom_lsp.engine import weave
from lloom_lsp.engine.beam import split_story
from lloom_lsp.engine.source import Usage, current_usage
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
    # The server copies slots (--slot-save-path): the story was evaluated on one slot and
    # restored into the others, so the weave ran on several at once.
    holding = [s for s in slots if int(str(s.get("n_prompt_tokens", 0))) >= n_story]
    assert len(holding) > 1


async def test_without_slot_copies_a_cold_weave_keeps_to_the_slot_that_holds_the_story(
    test_model_path: Path, tmp_path: Path
) -> None:
    """A server without --slot-save-path: the other slots wait for the one that holds the
    story, rather than evaluating it again."""
    with LlamaServerProcess(
        test_model_path, copies=False, log_path=tmp_path / "llama-server.log"
    ) as server:
        story = long_story()
        n_story = await story_tokens(server.url, story)
        backend = LlamaCppBackend(server.url, concurrency=4)
        try:
            result = await weave(backend, story, WeaveSettings(max_suggestions=25))
            pool = await backend.slots()
        finally:
            await backend.aclose()
        assert pool is not None and pool.copies is False
        stats = result.stats
        assert n_story <= stats.prompt_tokens <= n_story + 2 * stats.tree_tokens
        slots = await slot_states(server.url)
        holding = [s for s in slots if int(str(s.get("n_prompt_tokens", 0))) >= n_story]
        assert len(holding) == 1


async def test_a_warm_up_copies_the_story_instead_of_evaluating_it_on_every_slot(
    llama_server_url: str,
) -> None:
    story = long_story()
    prompt = split_story(story)[0]
    n_story = await story_tokens(llama_server_url, story)
    backend = LlamaCppBackend(llama_server_url, concurrency=4)
    usage = Usage()
    token = current_usage.set(usage)
    try:
        warmed = await backend.warm(prompt)
    finally:
        current_usage.reset(token)
        await backend.aclose()
    assert warmed == 4
    # once, not four times: measured n_story less the first line's few tokens that a slot
    # held from an earlier draft (the copies re-evaluate nothing)
    assert n_story - 16 <= usage.prompt_tokens < n_story + 4 * 8
    slots = await slot_states(llama_server_url)
    assert all(int(str(s.get("n_prompt_tokens", 0))) >= n_story for s in slots[:4])


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
