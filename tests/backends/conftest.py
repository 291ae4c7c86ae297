"""Fixtures for the backend suite: protocol fixtures (stubs) in front of the real llama-server,
and the environment variable that holds their API key.

The stubs in ``tests/fixtures/protocol_stubs.py`` are protocol fixtures, not the servers they
imitate; see that module's docstring.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from backend_helpers import KEY_ENV, TEST_KEY

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for `fixtures.*`

from fixtures.protocol_stubs import (
    NoLogprobsStub,
    OllamaStub,
    OpenAIChatStub,
    OpenAILegacyStub,
    VLLMStub,
)


@pytest.fixture
def openai_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(KEY_ENV, TEST_KEY)
    return KEY_ENV


def _started(stub: Any) -> Iterator[Any]:
    stub.start()
    try:
        yield stub
    finally:
        stub.stop()


@pytest.fixture(scope="session")
def vllm_stub(llama_server_url: str) -> Iterator[VLLMStub]:
    yield from _started(VLLMStub(llama_server_url))


@pytest.fixture(scope="session")
def openai_legacy_stub(llama_server_url: str) -> Iterator[OpenAILegacyStub]:
    yield from _started(OpenAILegacyStub(llama_server_url, api_key=TEST_KEY))


@pytest.fixture(scope="session")
def openai_chat_stub(llama_server_url: str) -> Iterator[OpenAIChatStub]:
    yield from _started(OpenAIChatStub(llama_server_url))


@pytest.fixture(scope="session")
def ollama_stub(llama_server_url: str) -> Iterator[OllamaStub]:
    yield from _started(OllamaStub(llama_server_url))


@pytest.fixture(scope="session")
def no_logprobs_stub(llama_server_url: str) -> Iterator[NoLogprobsStub]:
    yield from _started(NoLogprobsStub(llama_server_url))
