"""The managed backend against the real ``llama-server`` binary: start, serve, restart after
the process dies, stop; and leaving a server that already answers alone."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from pathlib import Path

import httpx
import pytest

from lloom_lsp.backends import (
    BackendUnavailable,
    LlamaCppBackend,
    ManagedBackend,
    create_backend,
    stream_steps,
)
from lloom_lsp.backends.process import LlamaServerNotFound, LlamaServerProcess, find_llama_server
from lloom_lsp.config import BackendSettings
from lloom_lsp.engine import Prompt

PROMPT = Prompt("The king")


@pytest.fixture(scope="module", autouse=True)
def _needs_binary() -> None:
    try:
        find_llama_server()
    except LlamaServerNotFound as exc:
        pytest.skip(str(exc))


def _silent_url() -> str:
    """A URL where nothing listens (a port that was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _kill(process: LlamaServerProcess) -> None:
    # LlamaServerProcess keeps its Popen private; a test may reach in to play the crash.
    popen = process._proc
    assert popen is not None
    os.kill(popen.pid, signal.SIGKILL)
    popen.wait()


def _restarts(caplog: pytest.LogCaptureFixture) -> int:
    return sum("restarting" in r.getMessage() for r in caplog.records)


async def test_starts_restarts_and_stops_its_own_server(
    test_model_path: Path, llama_server_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="lloom_lsp.backends")
    settings = BackendSettings(url=_silent_url(), model_path=str(test_model_path))
    backend = create_backend(settings)
    assert isinstance(backend, ManagedBackend)
    reference = LlamaCppBackend(llama_server_url)
    try:
        expected = await reference.continue_prompt(PROMPT, 6, 5)
        assert await backend.continue_prompt(PROMPT, 6, 5) == expected
        process = backend.process
        assert process is not None and process.alive
        url = process.url
        assert url != settings.url

        info = await backend.check()
        assert info.protocol == "llamacpp" and info.probabilities
        assert "managed llama-server" in info.detail

        # Dead before the request: noticed up front, restarted on the same port, and the
        # slot pool forgets what the dead process held.
        delegate = backend._delegate
        assert isinstance(delegate, LlamaCppBackend)
        pool = await delegate.slots()
        assert pool is not None and len(pool) > 1
        for slot in pool.slots:
            slot.story = PROMPT.text  # as if every slot had served this story
        _kill(process)
        assert not process.alive
        assert await backend.continue_prompt(PROMPT, 6, 5) == expected
        assert process.alive and process.url == url
        assert _restarts(caplog) == 1
        assert [s.story for s in pool.slots].count(PROMPT.text) == 1  # only the retry's slot

        # Dead under four requests at once: one restart, every request answered.
        _kill(process)
        answers = await asyncio.gather(*(backend.continue_prompt(PROMPT, 6, 5) for _ in range(4)))
        assert answers == [expected] * 4
        assert _restarts(caplog) == 2

        # A stream retries too, when nothing has been handed out yet.
        _kill(process)
        streamed = [step async for step in stream_steps(backend, PROMPT, 6, 5)]
        assert tuple(streamed) == expected.steps
        assert _restarts(caplog) == 3
    finally:
        await backend.aclose()
        await reference.aclose()
    assert backend.process is None and not process.alive
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(url + "/health")


async def test_recovers_when_the_request_is_what_finds_the_server_dead(
    test_model_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The process dies between the liveness check and the request: the request fails to
    connect, the failure finds the process dead, and the request is retried once."""
    caplog.set_level(logging.INFO, logger="lloom_lsp.backends")
    backend = create_backend(BackendSettings(url=_silent_url(), model_path=str(test_model_path)))
    assert isinstance(backend, ManagedBackend)
    try:
        first = await backend.continue_prompt(PROMPT, 3, 3)
        process = backend.process
        assert process is not None
        delegate = backend._delegate
        assert delegate is not None
        original = delegate.continue_prompt

        kills: list[int] = []

        async def dies_first(prompt: Prompt, max_tokens: int, top_n: int):  # type: ignore[no-untyped-def]
            if not kills:
                kills.append(1)
                _kill(process)
            return await original(prompt, max_tokens, top_n)

        delegate.continue_prompt = dies_first  # type: ignore[method-assign]
        assert await backend.continue_prompt(PROMPT, 3, 3) == first
        assert _restarts(caplog) == 1 and process.alive
    finally:
        await backend.aclose()


async def test_uses_a_server_that_already_answers(
    test_model_path: Path, llama_server_url: str
) -> None:
    backend = create_backend(BackendSettings(url=llama_server_url, model_path=str(test_model_path)))
    assert isinstance(backend, ManagedBackend)
    try:
        info = await backend.check()
    finally:
        await backend.aclose()
    assert backend.process is None
    assert info.protocol == "llamacpp"
    assert "already answers" in info.detail


async def test_a_missing_binary_or_model_is_a_clear_error(
    test_model_path: Path, tmp_path: Path
) -> None:
    cases = [
        BackendSettings(
            url=_silent_url(),
            model_path=str(test_model_path),
            server_command=str(tmp_path / "no-llama-server"),
        ),
        BackendSettings(url=_silent_url(), model_path=str(tmp_path / "missing.gguf")),
    ]
    for settings, needle in zip(cases, ["no-llama-server", "missing.gguf"]):
        backend = create_backend(settings)
        try:
            with pytest.raises(BackendUnavailable, match="did not start") as caught:
                await backend.continue_prompt(PROMPT, 1, 1)
        finally:
            await backend.aclose()
        assert needle in str(caught.value)
