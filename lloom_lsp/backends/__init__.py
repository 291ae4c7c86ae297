"""Backends: one adapter per wire protocol, all behind :class:`Backend`.

They know nothing of LSP.  :func:`create_backend` turns settings into a backend.
"""

from __future__ import annotations

from ..config import BackendSettings
from .base import Backend, BackendInfo, api_key_from_env
from .detect import DetectingBackend
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
from .factory import create_backend
from .llamacpp import LlamaCppBackend
from .managed import ManagedBackend
from .ollama import OllamaBackend
from .openai import OpenAIBackend
from .openai_chat import OpenAIChatBackend
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
    return api_key_from_env(settings.api_key_env)
