"""The backends' one exception tree.

::

    BackendError                  every failure talking to a backend; names the URL
    ├── BackendUnavailable        refused connection, DNS failure, timeout
    ├── BackendHTTPError          a non-2xx answer (status and body kept)
    │   └── BackendAuthError      401/403: API key missing or wrong
    └── BackendProtocolError      malformed JSON, or an answer without token probabilities

Foreign exceptions (httpx, json) are translated in exactly one place,
:func:`lloom_lsp.backends.http.translate_errors`.
"""

from __future__ import annotations

__all__ = [
    "BackendAuthError",
    "BackendError",
    "BackendHTTPError",
    "BackendProtocolError",
    "BackendUnavailable",
]


class BackendError(Exception):
    """A backend request failed.  ``str()`` names the URL and the cause."""

    def __init__(self, url: str, cause: str) -> None:
        super().__init__(f"{url}: {cause}")
        self.url = url
        self.cause = cause


class BackendUnavailable(BackendError):
    """Nothing answered at the URL (refused, unreachable, or timed out)."""


class BackendHTTPError(BackendError):
    """The server answered with an error status."""

    def __init__(self, url: str, status: int, body: str) -> None:
        snippet = " ".join(body.split())[:300]
        super().__init__(url, f"HTTP {status}: {snippet}" if snippet else f"HTTP {status}")
        self.status = status
        self.body = body


class BackendAuthError(BackendHTTPError):
    """The server refused our credentials."""


class BackendProtocolError(BackendError):
    """The server answered, but not in a shape we can use."""
