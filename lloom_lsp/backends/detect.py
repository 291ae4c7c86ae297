"""``auto``: find out once which server answers at the URL, then speak its protocol.

Probes, in order, stopping at the first that identifies the server:

1. ``GET /props`` with llama-server's settings        -> ``llamacpp`` (native ``/completion``)
2. ``GET /api/version`` with a version                 -> ``ollama``
3. ``GET /v1/models``, by ``owned_by`` (or the host)   -> ``llamacpp``, ``ollama``,
   ``openai-chat`` (OpenAI chat models) or ``openai`` (vLLM, TabbyAPI, llama-cpp-python,
   OpenAI's instruct models, any other OpenAI-compatible server)

The backend for the protocol found is built by the builder it is given
(:mod:`.factory`'s, which made the :class:`DetectingBackend` itself).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import attrs
import httpx

from ..config import BackendSettings
from ..engine.batching import BatchTokenSource
from ..engine.source import Continuation, Prompt, Step
from .base import (
    OPENAI_HOST,
    Backend,
    BackendInfo,
    api_base,
    api_key_from_env,
    auth_message,
    server_name,
)
from .errors import (
    BackendAuthError,
    BackendHTTPError,
    BackendProtocolError,
)
from .http import HttpTransport
from .streaming import closing, stream_steps

if TYPE_CHECKING:
    from .managed import BuildBackend

__all__ = ["DetectingBackend", "Detection", "detect"]

log = logging.getLogger("lloom_lsp.backends")

_OPENAI_OWNERS = {"openai", "system", "openai-internal"}
# OpenAI models that still serve the legacy /v1/completions endpoint; the rest are chat-only.
_COMPLETION_MODEL = re.compile(r"instruct|davinci|babbage|^text-", re.IGNORECASE)


@attrs.frozen
class Detection:
    """What the probes found."""

    protocol: str  # llamacpp | openai | openai-chat | ollama
    server: str  # the software, in words
    evidence: str  # which probe said so


async def _try_get(http: HttpTransport, path: str, refusals: list[BackendAuthError]) -> Any:
    """The JSON at ``path``, or None when this server does not have it.

    Refusals are kept: they only become the answer when no probe identifies the server.
    Nothing answering at all (BackendUnavailable) ends the detection at once.
    """
    try:
        return await http.get_json(path)
    except BackendAuthError as exc:
        refusals.append(exc)
    except (BackendHTTPError, BackendProtocolError):
        pass
    return None


async def detect(http: HttpTransport, model: str = "", api_key_env: str = "") -> Detection:
    """Probe the server behind ``http`` once (see the module docstring for the order)."""
    refusals: list[BackendAuthError] = []
    is_openai = urlsplit(http.base_url).hostname == OPENAI_HOST
    if not is_openai:
        props = await _try_get(http, "/props", refusals)
        if isinstance(props, Mapping) and (
            "default_generation_settings" in props or "total_slots" in props
        ):
            return Detection("llamacpp", "llama.cpp llama-server", "GET /props")
        version = await _try_get(http, "/api/version", refusals)
        if isinstance(version, Mapping) and version.get("version"):
            return Detection("ollama", f"Ollama {version['version']}", "GET /api/version")
    models = await _try_get(http, "/v1/models", refusals)
    data = models.get("data") if isinstance(models, Mapping) else None
    if isinstance(data, list) and data and isinstance(data[0], Mapping):
        entry = next((m for m in data if isinstance(m, Mapping) and m.get("id") == model), data[0])
        owned_by = str(entry.get("owned_by", ""))
        evidence = f"owned_by {owned_by!r} in GET /v1/models"
        name = server_name(owned_by, http.base_url)
        if owned_by == "llamacpp":
            return Detection("llamacpp", name, evidence)
        if owned_by in ("library", "ollama"):
            return Detection("ollama", name, evidence)
        if is_openai or owned_by in _OPENAI_OWNERS:
            chosen = model or str(entry.get("id", ""))
            if _COMPLETION_MODEL.search(chosen):
                return Detection("openai", name, f"{evidence}; {chosen} is a completion model")
            return Detection("openai-chat", name, f"{evidence}; {chosen} is a chat model")
        return Detection("openai", name, evidence)
    if refusals:
        last = refusals[-1]  # /v1/models where it was asked: the one that needs the key
        message = auth_message(api_key_env, api_key_from_env(api_key_env), last.body)
        raise BackendAuthError(last.url, last.status, message) from None
    raise BackendProtocolError(
        http.base_url,
        "cannot tell which server this is (no llama-server GET /props, no Ollama "
        "GET /api/version, no GET /v1/models): set lloom.backend.type (--backend)",
    )


class DetectingBackend:
    """Probes lazily on first use (or in :meth:`check`), then delegates every call."""

    def __init__(
        self,
        settings: BackendSettings,
        build: BuildBackend,
        *,
        url: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.url = api_base(url or settings.url)
        self._build = build
        self.protocol = "auto"  # until the probes have spoken, then the delegate's
        self.detection: Detection | None = None
        self._transport = transport
        self._delegate: Backend | None = None
        self._lock = asyncio.Lock()

    async def resolve(self) -> Backend:
        """The backend for the server at the URL, probing on the first call only."""
        if self._delegate is not None:
            return self._delegate
        async with self._lock:
            if self._delegate is None:
                http = HttpTransport(
                    self.url,
                    timeout=min(self.settings.timeout_seconds, 10.0),
                    api_key=api_key_from_env(self.settings.api_key_env),
                    transport=self._transport,
                )
                try:
                    found = await detect(http, self.settings.model, self.settings.api_key_env)
                finally:
                    await http.aclose()
                log.info(
                    "%s: found %s (%s); using the %s protocol",
                    self.url,
                    found.server,
                    found.evidence,
                    found.protocol,
                )
                self.detection = found
                self._delegate = self._build(self.settings, found.protocol, self.url)
                self.protocol = self._delegate.protocol
        return self._delegate

    async def continue_prompt(self, prompt: Prompt, max_tokens: int, top_n: int) -> Continuation:
        return await (await self.resolve()).continue_prompt(prompt, max_tokens, top_n)

    @property
    def max_batch(self) -> int:
        return int(getattr(self._delegate, "max_batch", 1))

    async def continue_prompts(
        self, prompts: Sequence[Prompt], max_tokens: int, top_n: int
    ) -> list[Continuation]:
        """Batched where the detected server takes a list of prompts, else one by one."""
        delegate = await self.resolve()
        if isinstance(delegate, BatchTokenSource):
            return await delegate.continue_prompts(prompts, max_tokens, top_n)
        return [await delegate.continue_prompt(p, max_tokens, top_n) for p in prompts]

    async def stream_steps(
        self, prompt: Prompt, max_tokens: int, top_n: int
    ) -> AsyncIterator[Step]:
        async with closing(stream_steps(await self.resolve(), prompt, max_tokens, top_n)) as stream:
            async for step in stream:
                yield step

    async def warm(self, story: str) -> int:
        """The detected backend's warm-up (0 when it has none)."""
        warm = getattr(await self.resolve(), "warm", None)
        return int(await warm(story)) if warm is not None else 0

    async def context_tokens(self) -> int | None:
        """The detected backend's context per request (None where it cannot say)."""
        method = getattr(await self.resolve(), "context_tokens", None)
        return await method() if method is not None else None

    async def suffix_logprobs(
        self, prompt: Prompt, text: str, max_tokens: int
    ) -> tuple[float, ...] | None:
        """The detected backend's score of ``text`` after ``prompt`` (None where it cannot
        score: engine/suffix.py)."""
        method = getattr(await self.resolve(), "suffix_logprobs", None)
        return await method(prompt, text, max_tokens) if method is not None else None

    async def count_tokens(self, text: str) -> int | None:
        """The detected backend's token count of ``text`` (None where it cannot count)."""
        method = getattr(await self.resolve(), "count_tokens", None)
        return await method(text) if method is not None else None

    async def check(self) -> BackendInfo:
        info = await (await self.resolve()).check()
        assert self.detection is not None
        found = f"auto-detected {self.detection.server} by {self.detection.evidence}"
        return attrs.evolve(info, detail=f"{found}; {info.detail}" if info.detail else found)

    async def aclose(self) -> None:
        if self._delegate is not None:
            await self._delegate.aclose()
