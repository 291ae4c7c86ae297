"""Every llama-server endpoint, through the engine, against the real server and test model.

Same prompt, same weave: ``/completion`` (native), ``/v1/completions`` (OpenAI-compatible,
continuing by token ids), ``auto``, and chat (compared with a completion of the templated
prompt, which is what a chat request honestly is).
"""

from __future__ import annotations

from typing import Any

import pytest
from backend_helpers import CHAT_WEAVE, WEAVE, TemplatedCompletion, TextOnly, weave_shape

from lloom_lsp.backends import (
    DetectingBackend,
    LlamaCppBackend,
    OpenAIBackend,
    OpenAIChatBackend,
    create_backend,
    stream_steps,
)
from lloom_lsp.config import BackendSettings
from lloom_lsp.engine import Prompt, weave
from lloom_lsp.testmodel import SAMPLE_PROMPTS, train


class Counting:
    """Counts the requests a TokenSource receives."""

    def __init__(self, source: Any) -> None:
        self.source = source
        self.requests = 0

    async def continue_prompt(self, prompt: Prompt, max_tokens: int, top_n: int) -> Any:
        self.requests += 1
        return await self.source.continue_prompt(prompt, max_tokens, top_n)


@pytest.mark.parametrize("story", SAMPLE_PROMPTS)
async def test_completion_v1_completions_and_auto_weave_alike(
    llama_server_url: str, story: str
) -> None:
    native = LlamaCppBackend(llama_server_url)
    v1 = OpenAIBackend(llama_server_url + "/v1")  # finds llama-server: continues by ids
    auto = create_backend(BackendSettings(url=llama_server_url))
    try:
        reference = await weave(native, story, WEAVE)
        by_v1 = await weave(v1, story, WEAVE)
        by_auto = await weave(auto, story, WEAVE)
        by_text = await weave(TextOnly(native), story, WEAVE)
    finally:
        for backend in (native, v1, auto):
            await backend.aclose()
    assert reference.beams
    assert await v1.continues_by_ids()
    assert v1.max_logprobs == 100  # llama-server has no cap of its own
    assert isinstance(auto, DetectingBackend) and auto.protocol == "llamacpp"
    # Same tree, same beams, same probabilities, same token ids, same number of requests.
    assert by_v1.to_dict()["beams"] == reference.to_dict()["beams"]
    assert by_v1.tree.to_dict() == reference.tree.to_dict()
    assert by_auto.tree.to_dict() == reference.tree.to_dict()
    assert by_v1.stats.requests == reference.stats.requests == by_auto.stats.requests
    # Continuing by text changes nothing for this model's own paths at these settings.
    assert weave_shape(by_text) == weave_shape(reference)


async def test_v1_completions_continues_by_token_ids(llama_server_url: str) -> None:
    """A beam whose tokens are not what BPE makes of its text: only ids keep the model's
    own path (the bigram model's next token depends on the last token alone)."""
    tokenizer = train().tokenizer
    story = "Once upon a time,"
    odd_ids = tuple(tokenizer.ids[ch] for ch in ("Ġ", "t", "h", "e", "r", "e"))  # " there"
    assert tokenizer.encode(" there") != list(odd_ids)
    prompt = Prompt(story, odd_ids, b" there")
    native = LlamaCppBackend(llama_server_url)
    v1 = OpenAIBackend(llama_server_url)
    as_text = OpenAIBackend(llama_server_url, token_ids=False)
    try:
        by_ids = await native.continue_prompt(prompt, 4, 5)
        by_v1 = await v1.continue_prompt(prompt, 4, 5)
        by_text = await as_text.continue_prompt(prompt, 4, 5)
    finally:
        for backend in (native, v1, as_text):
            await backend.aclose()
    assert by_v1 == by_ids
    assert by_text.steps[0].top != by_ids.steps[0].top


async def test_CHAT_WEAVE_is_the_weave_of_the_templated_prompt(llama_server_url: str) -> None:
    """The chat endpoint continues the *templated* prompt (system + user + assistant header),
    re-sent as text for every beam.  Its weave must equal a ``/completion`` weave whose
    requests carry exactly that templated text, with the template taken from the server."""
    settings = BackendSettings(url=llama_server_url, type="openai-chat")
    chat = create_backend(settings)
    native = LlamaCppBackend(llama_server_url)
    templated = TemplatedCompletion(native, llama_server_url, settings.chat_instruction)
    try:
        assert isinstance(chat, OpenAIChatBackend)
        for story in SAMPLE_PROMPTS[:3]:
            by_chat = await weave(chat, story, CHAT_WEAVE)
            reference = await weave(templated, story, CHAT_WEAVE)
            assert len(reference.beams) > 1
            assert by_chat.to_dict()["beams"] == reference.to_dict()["beams"]
            assert by_chat.tree.to_dict() == reference.tree.to_dict()
    finally:
        await chat.aclose()
        await native.aclose()
        await templated.aclose()


@pytest.mark.parametrize("kind", ["completion", "v1-completions", "v1-chat"])
async def test_stream_steps_match_one_request(llama_server_url: str, kind: str) -> None:
    backend: Any = {
        "completion": lambda: LlamaCppBackend(llama_server_url),
        "v1-completions": lambda: OpenAIBackend(llama_server_url),
        "v1-chat": lambda: OpenAIChatBackend(llama_server_url),
    }[kind]()
    prompt = Prompt("Once upon a time,", (311,), b" there")
    try:
        whole = await backend.continue_prompt(prompt, 10, 5)
        streamed = [step async for step in stream_steps(backend, prompt, 10, 5)]
        assert tuple(streamed) == whole.steps
        assert len(streamed) == 10
        # Leaving early closes the stream and the connection cleanly.
        stream = stream_steps(backend, prompt, 10, 5)
        first = await anext(stream)
        await stream.aclose()  # type: ignore[attr-defined]
        assert first == whole.steps[0]
    finally:
        await backend.aclose()


async def test_check_names_llamacpp_for_auto(llama_server_url: str) -> None:
    backend = create_backend(BackendSettings(url=llama_server_url))
    try:
        info = await backend.check()
    finally:
        await backend.aclose()
    assert info.protocol == "llamacpp"
    assert info.probabilities
    assert "llama-server" in info.detail and "GET /props" in info.detail
