"""The HTTP plumbing under every backend, against a raw local TCP server that misbehaves in
the two ways a real llama-server does: it closes a kept-alive connection it will not answer
on, and its streams are cancelled by the weave at any moment, the connection set-up included.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from lloom_lsp.backends import BackendError, BackendUnavailable
from lloom_lsp.backends.http import RETRY_ATTEMPTS, HttpTransport

SSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
    b'data: {"content": "a"}\n\n'
)


def _json(body: bytes) -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )


Handler = Callable[[int, bytes, asyncio.StreamWriter], Awaitable[bool]]


@contextlib.asynccontextmanager
async def raw_server(handler: Handler) -> AsyncIterator[tuple[str, list[int]]]:
    """A server that reads each request and lets ``handler`` answer; ``handler`` gets how
    many requests came before on this connection and the request's head, and says whether
    to keep the connection open.
    Yields the URL and the per-connection request counts, in the order connections came."""
    counts: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        index = len(counts)
        counts.append(0)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                await reader.readexactly(length)
                keep = await handler(counts[index], head, writer)
                counts[index] += 1
                if not keep:
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass  # the client left, or the test is over
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", counts
    finally:
        server.close()


async def read_all(http: HttpTransport) -> None:
    """One streamed /completion, read to its end."""
    async with http.post_sse("/completion", {"prompt": "x"}) as events:
        async for _ in events:
            pass


async def test_a_kept_alive_connection_the_server_closed_unanswered_is_sent_again() -> None:
    """llama-server (cpp-httplib) closes an idle kept-alive connection after 5 s, httpx keeps
    one 5 s: a request sent as it closes gets 'Server disconnected without sending a response'.
    Nothing was processed, so the transport sends it again, once, on a new connection."""

    async def handler(before: int, head: bytes, w: asyncio.StreamWriter) -> bool:
        if before >= 1:
            return False  # the second request on a connection: closed, never answered
        stream = b"text/event-stream" in head.lower()  # the Accept header httpx-sse sends
        w.write(SSE if stream else _json(b'{"ok": true}'))
        await w.drain()
        return not stream

    async with raw_server(handler) as (url, counts):
        http = HttpTransport(url, timeout=5.0, concurrency=1)
        try:
            assert await http.get_json("/props") == {"ok": True}
            assert await http.post_json("/completion", {"prompt": "x"}) == {"ok": True}
            async with http.post_sse("/completion", {"prompt": "x"}) as events:
                assert [e.data async for e in events] == ['{"content": "a"}']
        finally:
            await http.aclose()
    # each later request: one unanswered try on the kept connection, then a new connection
    assert counts == [2, 2, 1]


async def test_a_server_that_never_answers_is_one_clear_error_naming_the_url() -> None:
    async def handler(before: int, head: bytes, w: asyncio.StreamWriter) -> bool:
        return False

    async with raw_server(handler) as (url, counts):
        http = HttpTransport(url, timeout=5.0, concurrency=1)
        try:
            with pytest.raises(BackendUnavailable) as caught:
                await http.post_json("/completion", {"prompt": "x"})
        finally:
            await http.aclose()
    assert f"{url}/completion" in str(caught.value)
    assert "disconnected" in str(caught.value)
    assert counts == [1] * RETRY_ATTEMPTS  # sent again a bounded number of times, then reported


async def test_streams_cancelled_at_any_moment_leave_the_pool_usable() -> None:
    """The weave cancels chains all the time, also while their connection is being set up.
    httpcore then leaves the connection in its pool for good (encode/httpcore#1093); each
    stream on llama-server gets a new connection, so the pool filled up and every later
    request waited for its pool timeout. Cancelled anywhere, the pool must stay usable."""

    async def handler(before: int, head: bytes, w: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(0.01)
        w.write(SSE)
        await w.drain()
        return False

    async with raw_server(handler) as (url, _):
        http = HttpTransport(url, timeout=2.0, concurrency=1)  # a pool of 3 connections

        try:
            for yields in range(16):  # cancelled after 0..15 turns of the event loop
                for _ in range(3):
                    tasks = [asyncio.create_task(read_all(http)) for _ in range(3)]
                    for _ in range(yields):
                        await asyncio.sleep(0)
                    for task in tasks:
                        task.cancel()
                    await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.wait_for(read_all(http), 5.0)  # no PoolTimeout
        finally:
            await http.aclose()


async def test_streams_cancelled_again_while_closing_leave_the_pool_usable() -> None:
    """A chain's task is cancelled mid-stream, and again while httpcore cleans up after the
    interrupted read (the weave ends while its chains close).  httpcore's shield is anyio's,
    which asyncio's second cancel goes through: the connection stayed busy for good."""

    async def handler(before: int, head: bytes, w: asyncio.StreamWriter) -> bool:
        w.write(SSE)
        for _ in range(200):
            w.write(b'data: {"content": "a"}\n\n')
            await w.drain()
            await asyncio.sleep(0.002)
        return False

    async with raw_server(handler) as (url, _):
        http = HttpTransport(url, timeout=2.0, concurrency=1)  # a pool of 3 connections

        try:
            for turns in range(1, 6):
                tasks = [asyncio.create_task(read_all(http)) for _ in range(3)]
                await asyncio.sleep(0.02)  # streaming now
                for task in tasks:
                    task.cancel()
                for _ in range(turns):
                    await asyncio.sleep(0)
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            events = []
            async with http.post_sse("/completion", {"prompt": "x"}) as stream:
                async for event in stream:
                    events.append(event)
                    break
            assert events  # no PoolTimeout
        finally:
            await http.aclose()


def test_our_own_pool_timeout_is_not_called_the_backend_being_down() -> None:
    from lloom_lsp.backends.http import translate_errors

    with pytest.raises(BackendError) as caught, translate_errors("http://x/completion"):
        raise httpx.PoolTimeout("no connection available")
    assert not isinstance(caught.value, BackendUnavailable)
    assert "own pool" in str(caught.value) and "lloom.backend.concurrency" in str(caught.value)


async def test_abandoned_requests_still_count_against_concurrency() -> None:
    """A weave cancelled while its requests were being sent used to leave them running in
    the background while the next weave's requests started beside them: the server saw more
    than ``concurrency`` at once.  An abandoned request now keeps its place until it has
    ended, and one cancelled before its first byte went out is never sent."""
    active, peak, seen = 0, 0, 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal active, peak, seen
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            writer.close()
            return
        seen += 1
        active += 1
        peak = max(peak, active)
        left = asyncio.ensure_future(reader.read(1))  # b"" once the client closed
        try:
            done, _ = await asyncio.wait({left}, timeout=0.03)
            if not done:
                writer.write(SSE)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            left.cancel()
            active -= 1
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    http = HttpTransport(url, timeout=2.0, concurrency=2)
    try:
        started = 0
        for yields in range(16):  # cancelled after 0..15 turns of the event loop
            tasks = [asyncio.create_task(read_all(http)) for _ in range(4)]
            started += len(tasks)
            for _ in range(yields):
                await asyncio.sleep(0)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        cancelled_seen = seen
        await asyncio.wait_for(asyncio.gather(*(read_all(http) for _ in range(4))), 5.0)
        assert peak <= 2
        assert cancelled_seen < started  # the ones still waiting for a place were never sent
        assert seen == cancelled_seen + 4
    finally:
        await http.aclose()
        server.close()


async def test_waiting_for_a_place_ends_with_a_clear_error_naming_the_url() -> None:
    async def handler(before: int, head: bytes, w: asyncio.StreamWriter) -> bool:
        w.write(SSE)
        for _ in range(10):  # holds the only place past the timeout, never idle that long
            await asyncio.sleep(0.1)
            w.write(b'data: {"content": "a"}\n\n')
            await w.drain()
        return False

    async with raw_server(handler) as (url, _):
        http = HttpTransport(url, timeout=0.3, concurrency=1)
        try:
            first = asyncio.create_task(read_all(http))
            await asyncio.sleep(0.05)
            with pytest.raises(BackendError) as caught:
                await read_all(http)
            assert f"{url}/completion" in str(caught.value)
            assert "lloom.backend.concurrency" in str(caught.value)
            first.cancel()
            await asyncio.gather(first, return_exceptions=True)
        finally:
            await http.aclose()


async def test_a_request_cancelled_as_its_place_comes_free_is_not_sent() -> None:
    """``asyncio.wait_for`` drops a cancellation that comes as the awaited thing ends: a
    weave cancelled just as a place came free went on sending requests for a story nobody
    wanted any more."""

    async def handler(before: int, head: bytes, w: asyncio.StreamWriter) -> bool:
        w.write(SSE)
        await w.drain()
        return False

    async with raw_server(handler) as (url, counts):
        http = HttpTransport(url, timeout=2.0, concurrency=1)
        try:
            await http._permits.acquire()  # the only place, held by "another request"
            late = asyncio.create_task(read_all(http))
            for _ in range(3):
                await asyncio.sleep(0)  # waiting for the place now
            http._permits.release()
            late.cancel()  # in the same turn
            await asyncio.gather(late, return_exceptions=True)
            await asyncio.sleep(0.1)
            assert late.cancelled()
            assert counts == []  # nothing went out
            await read_all(http)  # and the place is free again
        finally:
            await http.aclose()
