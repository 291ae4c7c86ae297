"""The OpenAI, OpenAI chat, vLLM and Ollama backends against protocol fixtures.

Each protocol fixture (``tests/fixtures/protocol_stubs.py``) answers in its protocol's
documented shape with the real llama-server's numbers, so a weave through it must equal the
real server's weave continued by text.  None of them is the real vLLM, OpenAI or Ollama.
"""

from __future__ import annotations

import logging
from typing import Any

import attrs
import pytest
from backend_helpers import CHAT_WEAVE, KEY_ENV, WEAVE, TextOnly, weave_shape

from lloom_lsp.backends import (
    BackendProtocolError,
    DetectingBackend,
    LlamaCppBackend,
    OllamaBackend,
    OpenAIBackend,
    OpenAIChatBackend,
    create_backend,
    stream_steps,
)
from lloom_lsp.config import BackendSettings
from lloom_lsp.engine import Prompt, weave
from lloom_lsp.testmodel import SAMPLE_PROMPTS

# stub fixture name -> (protocol auto must pick, POST path, needs the API key)
TEXT_STUBS = {
    "vllm_stub": ("openai", "/v1/completions", False),
    "openai_legacy_stub": ("openai", "/v1/completions", True),
    "ollama_stub": ("ollama", "/api/generate", False),
}


def _settings(url: str, *, key: bool, **kw: Any) -> BackendSettings:
    return BackendSettings(url=url, api_key_env=KEY_ENV if key else "", **kw)


@pytest.mark.parametrize("stub_name", list(TEXT_STUBS))
async def test_weave_through_protocol_fixture_equals_real_server(
    request: pytest.FixtureRequest, llama_server_url: str, openai_key: str, stub_name: str
) -> None:
    protocol, path, needs_key = TEXT_STUBS[stub_name]
    stub = request.getfixturevalue(stub_name)
    stub.clear()
    backend = create_backend(_settings(stub.url, key=needs_key))
    real = LlamaCppBackend(llama_server_url)
    # The same top-N as the backend gets: the test model has exact ties (p = 0.17 four
    # times over), and llama-server orders tied tokens differently for different n_probs,
    # which changes which two of them the split takes.
    cap = 5 if stub_name == "openai_legacy_stub" else WEAVE.top_n
    reference_settings = attrs.evolve(WEAVE, top_n=cap)
    requests = 0
    try:
        for story in SAMPLE_PROMPTS:
            reference = await weave(TextOnly(real), story, reference_settings)
            through_stub = await weave(backend, story, WEAVE)
            assert reference.beams
            assert weave_shape(through_stub) == weave_shape(reference), story
            requests += through_stub.stats.requests
    finally:
        await backend.aclose()
        await real.aclose()
    assert isinstance(backend, DetectingBackend)
    assert backend.protocol == protocol
    posts = stub.posted(path)
    assert len(posts) == requests
    if stub_name == "openai_legacy_stub":
        # OpenAI's models (owned_by "system") get OpenAI's legacy cap from the first request.
        assert {body["logprobs"] for body in posts} == {5}
    # Text protocols get text, never token ids; servers that take a list of prompts get
    # several beams per request (the engine batches them).
    prompts = [body["prompt"] for body in posts]
    assert all(
        isinstance(p, str) or (isinstance(p, list) and all(isinstance(x, str) for x in p))
        for p in prompts
    )
    batched = [p for p in prompts if isinstance(p, list) and len(p) > 1]
    if stub_name in ("vllm_stub", "openai_legacy_stub"):
        assert batched and max(len(p) for p in batched) <= 8
    else:
        assert not batched  # Ollama takes one prompt per request


async def test_chat_fixture_weaves_like_real_chat_endpoint(
    llama_server_url: str, openai_chat_stub: Any
) -> None:
    through_stub = create_backend(BackendSettings(url=openai_chat_stub.url))
    real = OpenAIChatBackend(llama_server_url)
    try:
        for story in SAMPLE_PROMPTS[:3]:
            a = await weave(through_stub, story, CHAT_WEAVE)
            b = await weave(real, story, CHAT_WEAVE)
            assert len(a.beams) > 1
            assert weave_shape(a) == weave_shape(b)
    finally:
        await through_stub.aclose()
        await real.aclose()
    assert through_stub.protocol == "openai-chat"
    body = openai_chat_stub.posted("/v1/chat/completions")[-1]
    assert body["logprobs"] is True and body["top_logprobs"] == CHAT_WEAVE.top_n
    assert body["temperature"] == 0 and body["model"] == "gpt-4o-mini"
    assert body["messages"][0] == {
        "role": "system",
        "content": BackendSettings().chat_instruction,
    }
    assert body["messages"][1]["role"] == "user"


def _backend_for(kind: str, stubs: dict[str, Any]) -> Any:
    if kind == "vllm":
        return OpenAIBackend(stubs["vllm"].url)
    if kind == "openai-legacy":
        return OpenAIBackend(stubs["openai-legacy"].url, api_key_env=KEY_ENV)
    if kind == "openai-chat":
        return OpenAIChatBackend(stubs["openai-chat"].url)
    return OllamaBackend(stubs["ollama"].url)


@pytest.mark.parametrize("kind", ["vllm", "openai-legacy", "openai-chat", "ollama"])
async def test_stream_steps_through_protocol_fixture(
    kind: str,
    openai_key: str,
    vllm_stub: Any,
    openai_legacy_stub: Any,
    openai_chat_stub: Any,
    ollama_stub: Any,
) -> None:
    stubs = {
        "vllm": vllm_stub,
        "openai-legacy": openai_legacy_stub,
        "openai-chat": openai_chat_stub,
        "ollama": ollama_stub,
    }
    backend = _backend_for(kind, stubs)
    prompt = Prompt("The king")
    try:
        whole = await backend.continue_prompt(prompt, 8, 5)
        streamed = [step async for step in stream_steps(backend, prompt, 8, 5)]
    finally:
        await backend.aclose()
    assert len(whole.steps) == 8
    assert tuple(streamed) == whole.steps
    assert all(step.top and step.top[0].prob >= step.top[-1].prob for step in streamed)


async def test_logprobs_cap_from_a_400_is_used_and_logged_once(
    llama_server_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    from fixtures.protocol_stubs import VLLMStub

    stub = VLLMStub(llama_server_url, max_logprobs=8).start()  # vLLM --max-logprobs 8
    backend = OpenAIBackend(stub.url)
    caplog.set_level(logging.WARNING, logger="lloom_lsp.backends")
    try:
        result = await weave(backend, "Once upon a time,", WEAVE)
        streamed = [s async for s in stream_steps(backend, Prompt("The king"), 3, 10)]
    finally:
        await backend.aclose()
        stub.stop()
    asked = [body["logprobs"] for body in stub.posted("/v1/completions")]
    assert asked[:3] == [10, 8, 8]
    # One retry in all; the stream's request is the last one.
    assert asked.count(10) == 1 and len(asked) == result.stats.requests + 1 + 1
    assert len(streamed) == 3 and len(streamed[0].top) == 8
    warnings = [r for r in caplog.records if r.name == "lloom_lsp.backends"]
    assert len(warnings) == 1
    assert "at most 8 top logprobs" in warnings[0].getMessage()


async def test_server_without_probabilities_is_named(no_logprobs_stub: Any) -> None:
    backend = OpenAIBackend(no_logprobs_stub.url)
    try:
        with pytest.raises(BackendProtocolError, match="no token probabilities"):
            await backend.continue_prompt(Prompt("The king"), 4, 5)
        info = await backend.check()
    finally:
        await backend.aclose()
    assert not info.probabilities
    assert "no token probabilities" in info.detail


@pytest.mark.parametrize(
    ("stub_name", "protocol", "server"),
    [
        ("vllm_stub", "openai", "vLLM"),
        ("openai_legacy_stub", "openai", "OpenAI"),
        ("openai_chat_stub", "openai-chat", "OpenAI"),
        ("ollama_stub", "ollama", "Ollama"),
    ],
)
async def test_auto_detects_each_protocol(
    request: pytest.FixtureRequest, openai_key: str, stub_name: str, protocol: str, server: str
) -> None:
    stub = request.getfixturevalue(stub_name)
    backend = create_backend(_settings(stub.url, key=True))
    try:
        info = await backend.check()
    finally:
        await backend.aclose()
    assert (info.protocol, info.probabilities) == (protocol, True)
    assert server in info.detail
    assert info.model == stub.model
