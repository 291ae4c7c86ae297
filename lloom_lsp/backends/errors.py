"""The backends' one exception tree.

::

    BackendError                  every failure talking to a backend; names the URL
    ├── BackendUnavailable        refused connection, DNS failure, timeout
    │   └── BackendBusy           connected, but no answer in time: running, not down
    ├── BackendHTTPError          a non-2xx answer (status and body kept)
    │   ├── BackendAuthError      401/403: API key missing or wrong
    │   ├── BackendContextError   the prompt is longer than the server's context
    │   └── BackendGatewayError   502/504 from a proxy: the server behind it did not answer
    │                             (a BackendUnavailable too)
    └── BackendProtocolError      malformed JSON, or an answer without token probabilities

Foreign exceptions (httpx, json) are translated in exactly one place,
:func:`lloom_lsp.backends.http.translate_errors`.
"""

from __future__ import annotations

import html
import json
import re

__all__ = [
    "BackendAuthError",
    "BackendBusy",
    "BackendContextError",
    "BackendError",
    "BackendGatewayError",
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


class BackendBusy(BackendUnavailable):
    """The server took the connection but did not answer in time: it is running, busy
    evaluating a long story, weaving for another client, or loading its model."""


class BackendHTTPError(BackendError):
    """The server answered with an error status."""

    def __init__(self, url: str, status: int, body: str, explained: str = "") -> None:
        snippet = explained or _readable(body)
        super().__init__(url, f"HTTP {status}: {snippet}" if snippet else f"HTTP {status}")
        self.status = status
        self.body = body


def _readable(body: str) -> str:
    """A body's words, at most 300 characters: an HTML error page (a proxy's) as its text."""
    if _HTML.match(body):
        body = _TITLE.sub(" ", body)  # the <h1> says it again
        body = html.unescape(_TAG.sub(" ", body))
    return " ".join(body.split())[:300]


_HTML = re.compile(r"\s*<(?:!doctype|html|head|body)\b", re.I)
_TITLE = re.compile(r"<title>.*?</title>", re.I | re.S)
_TAG = re.compile(r"<[^>]*>")


class BackendAuthError(BackendHTTPError):
    """The server refused our credentials."""


class BackendGatewayError(BackendHTTPError, BackendUnavailable):
    """A proxy between us and the server (nginx, a tunnel's front) answered 502 or 504: the
    server behind it closed the connection, is down, or took longer than the proxy waits."""

    def __init__(self, url: str, status: int, body: str) -> None:
        page = _readable(body)
        why = {
            502: "a proxy in front of the server got no answer from it, again and again: "
            "is the server behind the proxy running, at the address the proxy sends to?",
            504: "a proxy in front of the server waited longer for it than it allows: "
            "raise the proxy's read timeout (nginx: proxy_read_timeout)",
        }[status]
        super().__init__(url, status, body, f"{why} ({page})" if page else why)


class BackendContextError(BackendHTTPError):
    """The prompt does not fit the server's context.  ``n_ctx`` is the context the server
    said it has (tokens, per request), ``n_prompt`` the tokens the prompt came to; either is
    None where the answer did not say."""

    def __init__(
        self, url: str, status: int, body: str, n_ctx: int | None, n_prompt: int | None
    ) -> None:
        super().__init__(url, status, body)
        self.n_ctx = n_ctx
        self.n_prompt = n_prompt


#: How servers say a prompt is too long: llama-server's ``exceed_context_size_error``
#: (``n_ctx`` and ``n_prompt_tokens`` in the body); vLLM and OpenAI's "maximum context length
#: is N tokens ... (M in the messages|your prompt)".
_CONTEXT_WORDS = re.compile(
    r"exceed_context_size|exceeds the available context size|maximum context length", re.I
)
_OPENAI_CONTEXT = re.compile(r"maximum context length is (\d+) tokens", re.I)
_OPENAI_PROMPT = re.compile(r"\((\d+) in (?:the messages|your prompt)", re.I)


def http_error(url: str, status: int, body: str) -> BackendHTTPError:
    """The error for a non-2xx answer: the most specific class its status and body name."""
    if status in (401, 403):
        return BackendAuthError(url, status, body)
    if status in (502, 504):
        return BackendGatewayError(url, status, body)
    if status == 400 and _CONTEXT_WORDS.search(body):
        n_ctx = n_prompt = None
        try:
            error = json.loads(body).get("error", {})
            n_ctx, n_prompt = int(error["n_ctx"]), int(error["n_prompt_tokens"])
        except (ValueError, TypeError, KeyError, AttributeError):
            if found := _OPENAI_CONTEXT.search(body):
                n_ctx = int(found.group(1))
            if found := _OPENAI_PROMPT.search(body):
                n_prompt = int(found.group(1))
        return BackendContextError(url, status, body, n_ctx, n_prompt)
    return BackendHTTPError(url, status, body)


class BackendProtocolError(BackendError):
    """The server answered, but not in a shape we can use."""
