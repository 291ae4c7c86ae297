"""Session fixtures shared by every suite: the bigram test model and a real llama-server.

The GGUF is cached under ``<repo>/.cache`` with a content hash of its sources in the file name,
so it is rebuilt only when the corpus, the build script or the default sharpen changes.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lloom_lsp.backends.process import LlamaServerNotFound, LlamaServerProcess

REPO_ROOT = Path(__file__).resolve().parents[1]
CACHE_DIR = REPO_ROOT / ".cache"


def _test_model_file(name: str = "test-model") -> Path:
    # numpy and gguf are optional ("demo") dependencies: import only when a test needs the model.
    from lloom_lsp.testmodel import build

    digest = hashlib.sha256()
    for source in (Path(build.__file__), build.CORPUS_PATH):
        digest.update(source.read_bytes())
    digest.update(repr(build.DEFAULT_SHARPEN).encode())
    return CACHE_DIR / f"{name}-{digest.hexdigest()[:16]}.gguf"


def missing_real_part(why: str) -> None:
    """Skip a test whose real part (llama-server, a model) is missing here; under CI, fail.

    CI installs every real part (``scripts/setup.sh``), so a missing one there is a broken
    install step, not a reason to pass.
    """
    if os.environ.get("CI") or os.environ.get("LLOOM_REQUIRE_REAL"):
        pytest.fail(f"a real part is missing under CI: {why}")
    pytest.skip(why)


@pytest.fixture(scope="session")
def real_part_missing() -> Callable[[str], None]:
    """``missing_real_part`` as a fixture, for conftests below this one (which cannot import it)."""
    return missing_real_part


def _cached_model(name: str, *, fim: bool = False) -> Path:
    """The bigram test model ``name`` under ``.cache``, built at most once per source change;
    its builds for older sources are removed."""
    from lloom_lsp.testmodel import build_model

    path = _test_model_file(name)
    if not path.is_file():
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        for stale in CACHE_DIR.glob(f"{name}-*.gguf"):
            stale.unlink(missing_ok=True)
        build_model(path, fim=fim)  # writes a temp file and renames: safe with parallel sessions
    return path


def _serve(
    model: Path, name: str, tmp_path_factory: pytest.TempPathFactory, *extra_args: str
) -> Iterator[LlamaServerProcess]:
    """A llama-server on ``model`` for the session, logging under a temporary ``name``."""
    log_path = tmp_path_factory.mktemp(name) / "llama-server.log"
    try:
        server = LlamaServerProcess(model, extra_args=extra_args, log_path=log_path)
    except LlamaServerNotFound as exc:
        missing_real_part(str(exc))
    with server:
        yield server


@pytest.fixture(scope="session")
def test_model_path() -> Path:
    """Path of the bigram test model GGUF (built at most once per source change)."""
    return _cached_model("test-model")


@pytest.fixture(scope="session")
def llama_server(
    test_model_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LlamaServerProcess]:
    """A running ``LlamaServerProcess`` serving the test model, shared by the session.
    ``--metrics``: tests read what the server really evaluated and generated (counters)."""
    yield from _serve(test_model_path, "llama-server", tmp_path_factory, "--metrics")


@pytest.fixture(scope="session")
def llama_server_url(llama_server: LlamaServerProcess) -> str:
    """Base URL (``http://127.0.0.1:PORT``) of the session's llama-server."""
    return llama_server.url


@pytest.fixture(scope="session")
def fim_test_model_path() -> Path:
    """Path of the bigram test model's fill-in-the-middle variant (``build_model(fim=True)``:
    the same tokens and table, with FIM tokens named), built at most once per source change."""
    return _cached_model("fim-test-model", fim=True)


@pytest.fixture(scope="session")
def fim_llama_server_url(
    fim_test_model_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Base URL of a llama-server on the FIM variant of the test model, shared by the session."""
    for server in _serve(fim_test_model_path, "llama-server-fim", tmp_path_factory):
        yield server.url
