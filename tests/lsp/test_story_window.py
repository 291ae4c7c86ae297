"""The story is sized to what the backend holds, and said once when it had to shrink.

A real llama-server started with a small ``-c`` (``/props`` says its per-slot ``n_ctx``),
and protocol fixtures for the servers that cannot run here: vLLM (``max_model_len`` in
``/v1/models``, and its 400 for a prompt that does not fit), an OpenAI-compatible server
that names no size (only its 400 teaches it), and Ollama (``num_ctx`` from ``/api/show``;
Ollama cuts a long prompt without an error, so nothing may be sent that does not fit).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import URI, end_of, open_doc, start
from lsprotocol import types
from pytest_lsp import LanguageClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for `fixtures.*`
from fixtures.protocol_stubs import OllamaStub, VLLMStub

from lloom_lsp.backends.process import LlamaServerProcess

WORDS = "the miller walked down to river every morning and his daughter sang".split()
#: 30,000 characters: longer than any small server's context, shorter than the default window
#: only in characters.
LONG = " ".join(WORDS[i % len(WORDS)] + ("." if i % 9 == 8 else "") for i in range(5200))


def said_shrunk(client: LanguageClient) -> list[str]:
    return [m.message for m in client.log_messages if "the story window is" in m.message]


def errors_shown(client: LanguageClient) -> list[str]:
    return [m.message for m in client.messages if m.type == types.MessageType.Error]


async def complete(client: LanguageClient, text: str) -> list[types.CompletionItem]:
    result = await client.text_document_completion_async(
        types.CompletionParams(types.TextDocumentIdentifier(URI), end_of(text))
    )
    assert isinstance(result, types.CompletionList)
    return result.items


def change_to(client: LanguageClient, text: str, *, version: int) -> None:
    """The whole document becomes ``text`` (a didChange at ``version``)."""
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            types.VersionedTextDocumentIdentifier(version=version, uri=URI),
            [types.TextDocumentContentChangeWholeDocument(text=text)],
        )
    )


def options(url: str, backend_type: str = "auto", **backend: Any) -> dict[str, Any]:
    return {
        "lloom": {
            "backend": {"url": url, "type": backend_type, **backend},
            "weave": {"strategy": "chain", "cutoff": 0.2},
            "completion": {"debounceMs": 0},
        }
    }


async def token_count(url: str, text: str) -> int:
    async with httpx.AsyncClient(timeout=30) as http:
        answer = (await http.post(f"{url}/tokenize", json={"content": text})).json()
    return len(answer["tokens"])


# -- a real llama-server with a small context ----------------------------------------------


@pytest.fixture(scope="module")
def small_server(test_model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """llama-server on the test model with one 1,024-token slot."""
    log = tmp_path_factory.mktemp("small-llama-server") / "llama-server.log"
    with LlamaServerProcess(
        test_model_path, extra_args=("-c", "1024", "-np", "1"), log_path=log
    ) as server:
        yield server.url


async def test_a_small_llama_server_gets_a_story_it_holds_and_it_is_said_once(
    bare_client: LanguageClient, small_server: str
) -> None:
    await start(bare_client, options(small_server, "llamacpp"))
    open_doc(bare_client, LONG)
    assert await complete(bare_client, LONG), errors_shown(bare_client)
    text = LONG + " and the river"
    change_to(bare_client, text, version=2)
    assert await complete(bare_client, text)
    assert errors_shown(bare_client) == []
    (line,) = said_shrunk(bare_client)  # once, not once a weave
    assert "lloom.story.maxContextChars 16000" in line and "1024 tokens" in line
    # the window the log names fits the slot with room for the beams
    chars = int(line.split("the story window is ")[1].split()[0])
    assert 1000 < chars < 16000
    assert await token_count(small_server, LONG[-chars:]) <= 1024 - 48


# -- protocol fixtures ------------------------------------------------------------------------


@pytest.fixture
def vllm_small(llama_server_url: str) -> Iterator[VLLMStub]:
    stub = VLLMStub(llama_server_url, max_model_len=1024).start()
    yield stub
    stub.stop()


@pytest.fixture
def unnamed_small(llama_server_url: str) -> Iterator[VLLMStub]:
    """An OpenAI-compatible server that names no context size (llama-cpp-python, say)."""
    stub = VLLMStub(llama_server_url, max_model_len=1024, lists_length=False).start()
    yield stub
    stub.stop()


async def test_vllm_max_model_len_sizes_the_story_before_anything_is_sent(
    bare_client: LanguageClient, vllm_small: VLLMStub
) -> None:
    await start(bare_client, options(vllm_small.url, "openai"))
    open_doc(bare_client, LONG)
    assert await complete(bare_client, LONG), errors_shown(bare_client)
    assert len(said_shrunk(bare_client)) == 1
    assert [m for m in bare_client.log_messages if "too long" in m.message] == []  # no 400


async def test_a_server_that_names_no_size_teaches_it_with_its_error(
    bare_client: LanguageClient, unnamed_small: VLLMStub
) -> None:
    await start(bare_client, options(unnamed_small.url, "openai"))
    open_doc(bare_client, LONG)
    assert await complete(bare_client, LONG), errors_shown(bare_client)
    assert errors_shown(bare_client) == []
    assert [m for m in bare_client.log_messages if "too long for" in m.message]
    # the next weave is sized from what the error said: no second refusal
    unnamed_small.clear()
    text = LONG + " and the river"
    change_to(bare_client, text, version=2)
    assert await complete(bare_client, text)
    assert len([m for m in bare_client.log_messages if "too long for" in m.message]) == 1


async def test_ollama_num_ctx_sizes_the_story(
    bare_client: LanguageClient, llama_server_url: str
) -> None:
    stub = OllamaStub(llama_server_url)
    stub.num_ctx = 1024
    stub.start()
    try:
        await start(bare_client, options(stub.url, "ollama"))
        open_doc(bare_client, LONG)
        assert await complete(bare_client, LONG), errors_shown(bare_client)
        prompts = [body["prompt"] for body in stub.posted("/api/generate")]
        longest = max(prompts, key=len)
        # Ollama would have cut the prompt's start silently: nothing longer was sent
        assert await token_count(llama_server_url, longest) <= 1024
        assert len(said_shrunk(bare_client)) == 1
    finally:
        stub.stop()
