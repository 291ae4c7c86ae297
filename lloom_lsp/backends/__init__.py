"""Backends: one adapter per wire protocol, all behind :class:`Backend`.

They know nothing of LSP.  :func:`create_backend` turns settings into a backend.
"""

from __future__ import annotations

import os

import httpx

from ..config import BackendSettings
from .base import Backend, BackendInfo
from .detect import DetectingBackend, backend_for
from .errors import (
    BackendAuthError,
    BackendBusy,
    BackendContextError,
    BackendError,
    BackendGatewayError,
    BackendHTTPError,
    BackendProtocolError,
    BackendUnavailable,
)
from .llamacpp import LlamaCppBackend
from .managed import ManagedBackend
from .ollama import OllamaBackend
from .openai import OpenAIBackend
from .openai_chat import OpenAIChatBackend
from .process import context_args
from .streaming import stream_steps

__all__ = [
    "Backend",
    "BackendAuthError",
    "BackendBusy",
    "BackendContextError",
    "BackendError",
    "BackendGatewayError",
    "BackendHTTPError",
    "BackendInfo",
    "BackendProtocolError",
    "BackendUnavailable",
    "DetectingBackend",
    "LlamaCppBackend",
    "ManagedBackend",
    "OllamaBackend",
    "OpenAIBackend",
    "OpenAIChatBackend",
    "api_key",
    "create_backend",
    "stream_steps",
]


def api_key(settings: BackendSettings) -> str | None:
    """The API key from the environment variable that ``apiKeyEnv`` names."""
    return os.environ.get(settings.api_key_env) or None if settings.api_key_env else None


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
    if settings.model_path:

        def build(settings: BackendSettings, protocol: str, url: str) -> Backend:
            return backend_for(settings, protocol, url=url, transport=transport)

        sizing = context_args(context_chars, slots=settings.concurrency)
        return ManagedBackend(settings, build, transport=transport, extra_args=sizing)
    return backend_for(settings, settings.type, transport=transport)
