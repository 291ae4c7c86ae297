"""The terminal commands behind ``weave``, ``check`` and ``demo``."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import attrs

from .backends import BackendError, create_backend
from .config import Settings
from .engine import Weave
from .terminal import format_result

__all__ = ["check_command", "demo_command", "weave_command"]


def _fail(message: str) -> int:
    print(f"lloom-lsp: error: {message}", file=sys.stderr)
    return 1


async def weave_command(story: str, settings: Settings, as_json: bool) -> int:
    backend = create_backend(settings.backend)
    try:
        weave = Weave(backend, story, settings.weave, concurrency=settings.backend.concurrency)
        result = await weave.run()
    except BackendError as exc:
        return _fail(f"{exc} (is llama-server running? set --url)")
    finally:
        await backend.aclose()
    if as_json:
        print(json.dumps(result.to_dict(), ensure_ascii=False))
    else:
        print(format_result(result, settings.weave.rank))
    return 0


async def check_command(settings: Settings, as_json: bool) -> int:
    backend = create_backend(settings.backend)
    try:
        info = await backend.check()
    except BackendError as exc:
        return _fail(str(exc))
    finally:
        await backend.aclose()
    if as_json:
        print(json.dumps(info.to_dict()))
    else:
        print(f"backend:       {info.url}")
        print(f"protocol:      {info.protocol}")
        print(f"model:         {info.model or '(unnamed)'}")
        print(f"probabilities: {'yes' if info.probabilities else 'NO: this server cannot weave'}")
        if info.detail:
            print(f"detail:        {info.detail}")
    return 0 if info.probabilities else 1


async def demo_command(story: str, settings: Settings, rounds: int) -> int:
    """Build the test model, run llama-server on it, weave and accept the best beam."""
    from .backends.process import LlamaServerProcess, find_llama_server
    from .testmodel import build_model

    cache = Path(tempfile.gettempdir()) / "lloom-lsp-demo"
    cache.mkdir(exist_ok=True)
    model = build_model(cache / "lloom-bigram-test.gguf")
    print(f"model: {model}", file=sys.stderr)
    server = LlamaServerProcess(
        model,
        binary=find_llama_server(settings.backend.server_command or None),
        log_path=cache / "llama-server.log",
    )
    async with server:
        print(f"llama-server: {server.url}", file=sys.stderr)
        settings = attrs.evolve(settings, backend=attrs.evolve(settings.backend, url=server.url))
        backend = create_backend(settings.backend)
        try:
            for round_no in range(1, rounds + 1):
                weave = Weave(
                    backend, story, settings.weave, concurrency=settings.backend.concurrency
                )
                result = await weave.run()
                print(f"\n── round {round_no} ──")
                print(format_result(result, settings.weave.rank, story))
                if not result.beams:
                    break
                story = story + result.beams[0].insert_text
            print(f"\nstory: {story}")
        finally:
            await backend.aclose()
    return 0
