"""HTTP plumbing shared by every backend: one pooled client, one error boundary."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from typing import Any, TypeVar

import httpx
import stamina
import stamina.instrumentation
from httpx_sse import EventSource, ServerSentEvent, SSEError

from ..engine.closing import BackgroundTasks, shielded
from .deadline import within
from .errors import (
    BackendBusy,
    BackendError,
    BackendProtocolError,
    BackendUnavailable,
    http_error,
)

__all__ = ["HttpTransport", "translate_errors"]

log = logging.getLogger("lloom_lsp.backends")


def _log_retry(details: stamina.instrumentation.RetryDetails) -> None:
    """A retry, in our log at INFO; stamina's own hook warns on stderr, which the command
    line printed as a bare 'stamina.retry_scheduled' line per attempt."""
    log.info("retry %d in %.2f s after %s", details.retry_num, details.wait_for, details.caused_by)


stamina.instrumentation.set_on_retry_hooks([_log_retry])

T = TypeVar("T")

#: Attempts in all for a request that may be retried (see ``HttpTransport._send``).
RETRY_ATTEMPTS = 4
#: The longest wait between two attempts, whatever Retry-After asks.
RETRY_WAIT_MAX = 2.0
#: Statuses that mean "not now": too many requests, and llama-server loading its model; and
#: a proxy's 502, which is the closed kept-alive connection below (``_retry_after``) one
#: hop further: nginx reused one that llama-server was closing, and cannot send a POST again.
RETRY_STATUSES = frozenset({429, 502, 503})

#: Seconds an idle connection is kept.  Below the servers' own keep-alive timeouts
#: (llama-server's cpp-httplib closes after 5 s, which is also httpx's default), so that a
#: request is rarely sent on a connection the server is just closing.
KEEPALIVE_EXPIRY = 2.0

#: Seconds ``HttpTransport.aclose`` lets exchanges that are closing in the background end.
ORPHANS_CLOSE_S = 1.0


@contextmanager
def translate_errors(url: str) -> Iterator[None]:
    """Turn httpx and JSON failures into BackendError, naming the URL and the cause."""
    try:
        yield
    except BackendError:
        raise
    except httpx.ConnectError as exc:
        raise BackendUnavailable(url, f"cannot connect ({_reason(exc)})") from exc
    except httpx.PoolTimeout as exc:
        # our own connection limit, not the server: nothing was sent
        raise BackendError(
            url,
            "no free connection in lloom-lsp's own pool (concurrency + 2) within the timeout; "
            "the server was not asked (lower lloom.backend.concurrency or raise "
            "lloom.backend.timeoutSeconds)",
        ) from exc
    except (httpx.ReadTimeout, httpx.WriteTimeout) as exc:
        raise BackendBusy(url, f"timed out ({type(exc).__name__})") from exc
    except httpx.TimeoutException as exc:
        raise BackendUnavailable(url, f"timed out ({type(exc).__name__})") from exc
    except httpx.HTTPStatusError as exc:
        status = exc.response.status_code
        body = exc.response.text
        raise http_error(url, status, body) from exc
    except (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError) as exc:
        raise BackendUnavailable(
            url,
            f"the connection closed before the answer was complete ({_described(exc)}); is "
            "a proxy or tunnel between closing it, or did the server stop?",
        ) from exc
    except httpx.HTTPError as exc:
        raise BackendUnavailable(url, f"{type(exc).__name__}: {_reason(exc)}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BackendProtocolError(url, f"malformed JSON in the answer ({exc})") from exc


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _described(exc: BaseException) -> str:
    """``Name: text``, or the name alone where the text is empty or repeats it."""
    name, text = type(exc).__name__, str(exc)
    return name if not text or text == name else f"{name}: {text}"


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
        self.timeout = timeout
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        limits = httpx.Limits(
            max_connections=max(concurrency, 1) + 2,
            max_keepalive_connections=max(concurrency, 1),
            keepalive_expiry=KEEPALIVE_EXPIRY,
        )
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            headers=headers,
            limits=limits,
            transport=transport,
        )
        # exchanges that go on after their caller was cancelled: see "cancellation" below
        self._orphans = BackgroundTasks()
        #: One permit per exchange with the server, held until it has truly ended (an
        #: abandoned one included), so that no more than ``concurrency`` are ever open.
        self._permits = asyncio.Semaphore(max(concurrency, 1))

    def url(self, path: str) -> str:
        return self.base_url + path

    async def get_json(self, path: str) -> Any:
        return await self._json(self.client.build_request("GET", self.url(path)))

    async def post_json(self, path: str, body: Mapping[str, Any]) -> Any:
        return await self._json(self.client.build_request("POST", self.url(path), json=body))

    # -- cancellation ------------------------------------------------------------------
    #
    # The weave cancels requests all the time, and httpcore 1.0 does not survive every
    # cancellation: one delivered while a connection is being set up leaves the connection
    # in the pool for good (encode/httpcore#1093), and one delivered while httpcore cleans up
    # after an interrupted read (its shield is anyio's, which asyncio's Task.cancel() goes
    # through; encode/httpx#3782) leaves it busy for good.  Measured with the search
    # benchmark, 3-5% of weaves left a busy connection behind, and a language server runs
    # all day on one pool of concurrency + 2 connections: once they are all stuck, every
    # request waits out its pool timeout.  So every exchange runs in a task of its own that
    # this transport cancels at most once, and a caller cancelled any number of times
    # returns at once while that task finishes in the background (``_orphans``; the
    # mechanism is engine/closing.py's, shared with the engine's closes).

    async def _json(self, request: httpx.Request) -> Any:
        async def fetch() -> httpx.Response:
            response, permit = await self._send(request)
            try:
                await response.aread()
            finally:
                await response.aclose()
                permit.release()
            return response

        with translate_errors(str(request.url)):
            # cancelled once: the connection closes, the server stops
            response = await shielded(fetch(), self._orphans, cancel_once=True)
            response.raise_for_status()
            return response.json()

    @asynccontextmanager
    async def _stream(
        self,
        path: str,
        body: Mapping[str, Any],
        items: Callable[[httpx.Response], AsyncIterator[T]],
        accept: str | None = None,
    ) -> AsyncIterator[AsyncIterator[T]]:
        """The answer to a POST, its status checked, its body as ``items(response)``; closed
        (which stops a generation early) when the block is left.  The body is read by a
        task of its own (see above), whose items the caller takes from a queue."""
        headers = {"Accept": accept} if accept else None
        request = self.client.build_request("POST", self.url(path), json=body, headers=headers)
        response, permit = await self._send(request)
        queue: asyncio.Queue[tuple[bool, Any]] = asyncio.Queue()

        async def pump() -> None:
            try:
                if response.is_error:
                    await response.aread()
                    response.raise_for_status()
                async for item in items(response):
                    queue.put_nowait((True, item))
                queue.put_nowait((False, None))
            except asyncio.CancelledError:
                queue.put_nowait((False, httpx.StreamClosed()))  # closed under a reader
                raise
            except Exception as exc:
                queue.put_nowait((False, exc))

        async def taken() -> AsyncIterator[T]:
            while True:
                more, item = await queue.get()
                if more:
                    yield item
                elif item is None:
                    return
                else:
                    raise item

        async def finish() -> None:
            reader.cancel()  # once; a no-op once it is done
            try:
                await asyncio.gather(reader, return_exceptions=True)
                await response.aclose()
            finally:
                permit.release()

        reader = asyncio.ensure_future(pump())
        try:
            yield taken()
        finally:
            done = asyncio.ensure_future(finish())
            self._orphans.keep(done)
            await asyncio.shield(done)

    async def _send(self, request: httpx.Request) -> tuple[httpx.Response, _Permit]:
        """Send ``request`` and read the answer's head; the body is left to stream.  The
        caller releases the permit that comes with the answer once it is done with it.

        - **At most ``concurrency`` exchanges are open**, abandoned ones included: each
          holds one of the transport's permits until it has ended, so a cancelled weave's
          leftovers delay the next requests instead of running beside them.  A request
          that waits for a permit (or a connection) has sent nothing, and a cancelled one
          never will.
        - **Sent again at once on a stale connection.**  A server that closes a kept-alive
          connection instead of answering on it (``Server disconnected without sending a
          response``) processed nothing, so the request is sent again on a new connection
          (within the ``RETRY_ATTEMPTS`` below).
        - **Never cancelled while its connection is set up.**  httpcore leaves a connection
          cancelled in that window in its pool for good (encode/httpcore#1093).  A caller
          cancelled then returns at once, and the send goes on in the background only until
          the connection is ready: it is abandoned before its first byte goes out
          (``_Sending``).  One cancelled after its head went out is cancelled once, which
          closes the connection, and the server stops.
        - **Retried where that is safe**, at most ``RETRY_ATTEMPTS`` times in all and within
          the request timeout, with backoff (stamina): a refused connection (a server
          starting), and HTTP 429 and 503 (llama-server loading its model), waiting what
          ``Retry-After`` asks up to ``RETRY_WAIT_MAX``.  Nothing else is sent twice.
        """
        permit = _Permit(self._permits)
        try:
            await within(self.timeout, permit.acquire())
        except TimeoutError:
            raise BackendError(
                str(request.url),
                f"no free request slot in lloom-lsp within {self.timeout:g} s: "
                f"{len(self._orphans)} earlier requests are still closing (raise "
                "lloom.backend.concurrency or lloom.backend.timeoutSeconds)",
            ) from None
        try:
            return await self._attempts(request, permit), permit
        except BaseException:
            permit.release()  # a no-op when an abandoned send took it over
            raise

    async def _attempts(self, request: httpx.Request, permit: _Permit) -> httpx.Response:
        try:
            async for attempt in stamina.retry_context(
                on=_retry_after,
                attempts=RETRY_ATTEMPTS,
                timeout=self.timeout,
                wait_initial=0.05,  # a refused connection is reported within about 0.4 s
                wait_max=RETRY_WAIT_MAX,
                wait_jitter=0.05,
            ):
                with attempt:
                    sending = _Sending()
                    request.extensions["trace"] = sending.trace
                    send = asyncio.ensure_future(self.client.send(request, stream=True))
                    try:
                        response = await asyncio.shield(send)
                    except asyncio.CancelledError:
                        abandoned = asyncio.ensure_future(sending.abandon(send))
                        permit.hand_to(abandoned)
                        self._orphans.keep(abandoned)
                        raise
                    if response.status_code in RETRY_STATUSES:
                        try:
                            await response.aread()  # kept for the error, should it stay
                        finally:
                            await response.aclose()
                        raise _Busy(response)
                    return response
        except _Busy as busy:
            return busy.response  # still busy after every attempt: the caller reports it
        raise AssertionError("unreachable: the last attempt returns or raises")

    @asynccontextmanager
    async def post_lines(
        self, path: str, body: Mapping[str, Any]
    ) -> AsyncIterator[AsyncIterator[str]]:
        """Stream the answer's lines (SSE or NDJSON), errors translated."""
        with translate_errors(self.url(path)):
            async with self._stream(path, body, httpx.Response.aiter_lines) as lines:
                yield lines

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
            async with self._stream(path, body, _sse, accept="text/event-stream") as events:
                try:
                    yield events
                except SSEError as exc:
                    raise BackendProtocolError(url, f"expected server-sent events ({exc})") from exc

    async def aclose(self) -> None:
        # Exchanges still closing in the background finish first (closing an answer takes
        # a moment; cancelled halfway it leaves its socket to the garbage collector), and
        # only those that are still waiting after a second are cancelled.
        await self._orphans.aclose(ORPHANS_CLOSE_S)
        await self.client.aclose()


class _Busy(Exception):
    """A 429 or 503 answer, to be retried."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def _retry_after(exc: BaseException) -> bool | float:
    """stamina's backoff hook: whether to retry ``exc``, or how long to wait first."""
    if isinstance(exc, _Busy):
        if exc.response.status_code == 502:
            return 0.0  # at once, as below; a server that is down gets its 502s in a moment
        asked = exc.response.headers.get("Retry-After", "")
        try:
            return min(max(float(asked), 0.0), RETRY_WAIT_MAX)
        except ValueError:
            return True  # absent, or an HTTP date: the backoff decides
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)):
        # The connection closed before any byte of the answer came: a kept-alive connection
        # that the server, or a proxy or tunnel between, was closing as it was reused.  Sent
        # again at once, on a new one: nothing of it was answered.
        return 0.0
    return isinstance(exc, httpx.ConnectError)


def _sse(response: httpx.Response) -> AsyncIterator[ServerSentEvent]:
    return EventSource(response).aiter_sse()


class _Permit:
    """One of a transport's permits, released once: by the exchange's owner, or by the
    background task that an abandoned exchange was handed to, when that ends."""

    def __init__(self, permits: asyncio.Semaphore) -> None:
        self._permits = permits
        self._held = False
        self._handed = False

    async def acquire(self) -> None:
        await self._permits.acquire()
        self._held = True

    def hand_to(self, task: asyncio.Future[Any]) -> None:
        self._handed = True
        task.add_done_callback(lambda _: self._release())

    def release(self) -> None:
        if not self._handed:
            self._release()

    def _release(self) -> None:
        if self._held:
            self._held = False
            self._permits.release()


class _Abandoned(Exception):
    """Raised into httpcore to stop a send whose caller left, before its first byte."""


class _Sending:
    """Where one send is, from httpcore's ``trace`` extension, so that a send whose caller
    left can be stopped without cancelling it while its connection is set up."""

    def __init__(self) -> None:
        self.started = False  # the request's head is going out: the connection is ready
        self.abandoned = False

    async def trace(self, event: str, info: Mapping[str, Any]) -> None:
        if event.endswith(".send_request_headers.started"):
            if self.abandoned:
                raise _Abandoned  # nothing was sent; httpcore closes or keeps the connection
            self.started = True

    async def abandon(self, send: asyncio.Future[httpx.Response]) -> None:
        """Stop ``send`` as soon as that is safe, and close its answer should one come."""
        self.abandoned = True
        if self.started:
            send.cancel()  # once, past the connection's setup: it closes, the server stops
        try:
            response = await send
        except (Exception, asyncio.CancelledError):
            return  # stopped, or failed on its own: nobody is waiting for the error
        await response.aclose()  # a transport without trace events answered first
