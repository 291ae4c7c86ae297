"""Backends: one adapter per wire protocol, all behind :class:`Backend`.

They know nothing of LSP.  :func:`create_backend` turns settings into a backend.
"""

from __future__ import annotations

import os

import httpx

from ..config import BackendSettings
from .base import Backend, BackendInfo
from .errors import (
    BackendAuthError,
    BackendError,
    BackendHTTPError,
    BackendProtocolError,
    BackendUnavailable,
)
from .llamacpp import LlamaCppBackend

__all__ = [
    "Backend",
    "BackendAuthError",
    "BackendError",
    "BackendHTTPError",
    "BackendInfo",
    "BackendProtocolError",
    "BackendUnavailable",
    "LlamaCppBackend",
    "api_key",
    "create_backend",
]


def api_key(settings: BackendSettings) -> str | None:
    """The API key from the environment variable that ``apiKeyEnv`` names."""
    return os.environ.get(settings.api_key_env) or None if settings.api_key_env else None


def create_backend(
    settings: BackendSettings, *, transport: httpx.AsyncBaseTransport | None = None
) -> Backend:
    """The backend the settings ask for."""
    if settings.type in ("auto", "llamacpp"):
        return LlamaCppBackend(
            settings.url,
            timeout=settings.timeout_seconds,
            concurrency=settings.concurrency,
            transport=transport,
        )
    raise BackendError(settings.url, f"backend type {settings.type!r} is not available yet")
