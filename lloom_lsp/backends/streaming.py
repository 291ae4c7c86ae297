"""Per-token streaming: SSE and NDJSON framing, and Steps released as they arrive.

Every streaming backend turns its wire chunks into :data:`Chunk` pairs (the steps a chunk
carried, and whether the stream finished and how); :func:`release_steps` turns those into
Steps.  :func:`stream_steps` is the one entry point for callers: it streams where the
backend can and falls back to one plain request where it cannot.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Protocol, TypeVar

from httpx_sse import ServerSentEvent

from ..engine.closing import aclose_fully
from ..engine.source import Continuation, Prompt, Step
from .base import as_end, end_continuation
from .errors import BackendProtocolError

__all__ = [
    "Chunk",
    "StepStreamer",
    "closing",
    "collect",
    "ndjson_objects",
    "release_steps",
    "sse_data",
    "stream_steps",
]

T = TypeVar("T")

#: What one wire chunk carried: its steps, and ``None`` while the stream goes on, else
#: ``True`` when it ended at end of sequence and ``False`` when it stopped for another reason.
Chunk = tuple[Iterable[Step], "bool | None"]


@asynccontextmanager
async def closing(iterator: AsyncIterator[T]) -> AsyncIterator[AsyncIterator[T]]:
    """Close ``iterator`` when the block ends, however it ends.

    ``async for`` leaves an unfinished async generator to the garbage collector, which may
    close it after its event loop is gone; a stream closed early (the weave has what it
    needs) must close every layer beneath it at once, down to the HTTP response.  This is
    :func:`contextlib.aclosing` for anything that may or may not have ``aclose``.
    """
    try:
        yield iterator
    finally:
        await aclose_fully(iterator)  # to the end, even when cancelled again meanwhile


class StepStreamer(Protocol):
    def stream_steps(self, prompt: Prompt, max_tokens: int, top_n: int) -> AsyncIterator[Step]: ...


async def sse_data(events: AsyncIterator[ServerSentEvent], url: str) -> AsyncIterator[Any]:
    """The JSON payload of each SSE ``data:`` event, up to ``data: [DONE]`` if there is one.

    Events come parsed by httpx-sse (multi-line ``data:`` included).  llama-server reports a
    failure mid-stream as an ``error`` event or a ``data: {"error": ...}`` payload.
    """
    seen = False
    async with closing(events) as stream:
        async for event in stream:
            if event.event == "error":
                raise BackendProtocolError(
                    url, f"the server failed mid-stream: {event.data.strip()}"
                )
            payload = event.data.strip()
            if payload == "[DONE]":
                return
            if not payload:
                continue
            seen = True
            data = json.loads(payload)
            if isinstance(data, Mapping) and data.get("error") and len(data) == 1:
                raise BackendProtocolError(url, f"the server failed mid-stream: {data['error']}")
            yield data
    if not seen:
        # e.g. a server that ignores `stream` and answers with one JSON document
        raise BackendProtocolError(url, "expected server-sent events, got none")


async def ndjson_objects(lines: AsyncIterator[str], url: str) -> AsyncIterator[Mapping[str, Any]]:
    """One JSON object per line (Ollama); an ``{"error": ...}`` line is a failure."""
    async with closing(lines) as stream:
        async for line in stream:
            if not line.strip():
                continue
            obj = json.loads(line)
            if not isinstance(obj, Mapping):
                raise BackendProtocolError(url, "expected one JSON object per line")
            if obj.get("error"):
                raise BackendProtocolError(url, f"the server failed mid-stream: {obj['error']}")
            yield obj


async def release_steps(chunks: AsyncIterator[Chunk], url: str) -> AsyncIterator[Step]:
    """Each step as soon as it is known, the end-of-sequence token marked as such.

    A step with an empty token might be the end-of-sequence token (llama-server reports it
    so), which only the finish reason of a later chunk tells; only such a step waits.
    """
    held: Step | None = None
    done = False
    async with closing(chunks) as stream:
        async for steps, finished in stream:
            for step in steps:
                if held is not None:
                    yield held
                    held = None
                if step.chosen.data:
                    yield step
                else:
                    held = step
            if finished is not None:
                done = True
                if held is not None:
                    yield Step(as_end(held.chosen), held.top) if finished else held
                    held = None
    if held is not None:
        yield held
    if not done:
        raise _cut_short(url)


async def collect(chunks: AsyncIterator[Chunk], url: str) -> Continuation:
    """Every chunk gathered into one Continuation (for servers that only stream)."""
    steps: list[Step] = []
    ended: bool | None = None
    async with closing(chunks) as stream:
        async for chunk_steps, finished in stream:
            steps.extend(chunk_steps)
            if finished is not None:
                ended = finished
    if ended is None:
        raise _cut_short(url)
    return end_continuation(steps, ended)


def _cut_short(url: str) -> BackendProtocolError:
    return BackendProtocolError(url, "the answer ended before the server said it was done")


async def stream_steps(
    backend: object, prompt: Prompt, max_tokens: int, top_n: int
) -> AsyncIterator[Step]:
    """Steps as the server generates them, from any backend.

    Backends with their own ``stream_steps`` use it; any other TokenSource answers in
    one piece.
    """
    own = getattr(backend, "stream_steps", None)
    if own is not None:
        async with closing(own(prompt, max_tokens, top_n)) as stream:
            async for step in stream:
                yield step
    else:
        continuation = await backend.continue_prompt(prompt, max_tokens, top_n)  # type: ignore[attr-defined]
        for step in continuation.steps:
            yield step
