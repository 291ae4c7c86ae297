"""Settings to a backend: the one place that knows which class speaks which protocol.

:func:`create_backend` is the public way in.  A :class:`ManagedBackend` (``modelPath``
set) and a :class:`DetectingBackend` (``type: auto``) decide the protocol later, once a
server has answered; they are handed the same builder, so every backend is made here.
"""

from __future__ import annotations

from typing import Any

import httpx

from ..config import BackendSettings
from .base import Backend
from .detect import DetectingBackend
from .errors import BackendError
from .llamacpp import LlamaCppBackend
from .managed import ManagedBackend
from .ollama import OllamaBackend
from .openai import OpenAIBackend
from .openai_chat import OpenAIChatBackend
from .process import context_args

__all__ = ["create_backend"]


def create_backend(
    settings: BackendSettings,
    *,
    context_chars: int = 16000,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Backend:
    """The backend the settings ask for.

    ``type`` picks the protocol (``auto`` probes the server on first use).  With
    ``modelPath`` set, the backend starts its own llama-server when nothing answers at
    ``url``; it gets one slot per request in flight (``concurrency``), each big enough for
    a story of ``context_chars`` characters (``lloom.story.maxContextChars``).
    """

    def build(settings: BackendSettings, protocol: str, url: str) -> Backend:
        """The backend that speaks ``protocol`` at ``url`` (``auto``: found out later)."""
        url = url or settings.url
        common: dict[str, Any] = {
            "timeout": settings.timeout_seconds,
            "concurrency": settings.concurrency,
            "transport": transport,
        }
        if protocol == "llamacpp":
            return LlamaCppBackend(url, **common)
        styled = {"model": settings.model, "api_key_env": settings.api_key_env, **common}
        if protocol == "openai":
            return OpenAIBackend(url, **styled)
        if protocol == "openai-chat":
            return OpenAIChatBackend(url, instruction=settings.chat_instruction, **styled)
        if protocol == "ollama":
            return OllamaBackend(url, **styled)
        if protocol == "auto":
            return DetectingBackend(settings, build, url=url, transport=transport)
        raise BackendError(url, f"unknown backend type {protocol!r}")

    if settings.model_path:
        sizing = context_args(context_chars, slots=settings.concurrency)
        return ManagedBackend(settings, build, transport=transport, extra_args=sizing)
    return build(settings, settings.type, settings.url)
