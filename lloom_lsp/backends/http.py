"""HTTP plumbing shared by every backend: one pooled client, one error boundary."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx
from httpx_sse import EventSource, ServerSentEvent, SSEError

from .errors import (
    BackendAuthError,
    BackendError,
    BackendHTTPError,
    BackendProtocolError,
    BackendUnavailable,
)

__all__ = ["HttpTransport", "translate_errors"]


@contextmanager
def translate_errors(url: str) -> Iterator[None]:
    """Turn httpx and JSON failures into BackendError, naming the URL and the cause."""
    try:
        yield
    except BackendError:
        raise
    except httpx.ConnectError as exc:
        raise BackendUnavailable(url, f"cannot connect ({_reason(exc)})") from exc
    except httpx.TimeoutException as exc:
        raise BackendUnavailable(url, f"timed out ({type(exc).__name__})") from exc
    except httpx.HTTPStatusError as exc:
        status = exc.response.status_code
        body = exc.response.text
        cls = BackendAuthError if status in (401, 403) else BackendHTTPError
        raise cls(url, status, body) from exc
    except httpx.HTTPError as exc:
        raise BackendUnavailable(url, f"{type(exc).__name__}: {_reason(exc)}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BackendProtocolError(url, f"malformed JSON in the answer ({exc})") from exc


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


class HttpTransport:
    """A base URL, headers and one keep-alive ``httpx.AsyncClient`` for all requests."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 60.0,
        api_key: str | None = None,
        concurrency: int = 4,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        limits = httpx.Limits(
            max_connections=max(concurrency, 1) + 2, max_keepalive_connections=max(concurrency, 1)
        )
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            headers=headers,
            limits=limits,
            transport=transport,
        )

    def url(self, path: str) -> str:
        return self.base_url + path

    async def get_json(self, path: str) -> Any:
        url = self.url(path)
        with translate_errors(url):
            response = await self.client.get(url)
            response.raise_for_status()
            return response.json()

    async def post_json(self, path: str, body: Mapping[str, Any]) -> Any:
        url = self.url(path)
        with translate_errors(url):
            response = await self.client.post(url, json=body)
            response.raise_for_status()
            return response.json()

    @asynccontextmanager
    async def post_lines(
        self, path: str, body: Mapping[str, Any]
    ) -> AsyncIterator[AsyncIterator[str]]:
        """Stream the answer's lines (SSE or NDJSON), errors translated."""
        url = self.url(path)
        with translate_errors(url):
            async with self.client.stream("POST", url, json=body) as response:
                if response.is_error:
                    await response.aread()
                    response.raise_for_status()
                yield response.aiter_lines()

    @asynccontextmanager
    async def post_sse(
        self, path: str, body: Mapping[str, Any]
    ) -> AsyncIterator[AsyncIterator[ServerSentEvent]]:
        """Stream the answer's server-sent events (parsed by httpx-sse), errors translated.

        Leaving the block closes the connection, which is how a streamed generation is
        stopped early: llama-server, vLLM and Ollama all cancel a request whose client left.
        """
        url = self.url(path)
        with translate_errors(url):
            async with self.client.stream("POST", url, json=body) as response:
                if response.is_error:
                    await response.aread()
                    response.raise_for_status()
                try:
                    yield EventSource(response).aiter_sse()
                except SSEError as exc:
                    raise BackendProtocolError(url, f"expected server-sent events ({exc})") from exc

    async def aclose(self) -> None:
        await self.client.aclose()
