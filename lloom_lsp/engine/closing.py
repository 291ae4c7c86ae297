"""Closing a stream of steps so that a second cancellation cannot stop it halfway.

A weave cancels its chains, and then the weave itself is often cancelled too (a newer
request), while the chains are still closing.  A cancellation that lands inside a nested
``aclose()`` stops it there: the generators below are never closed, the HTTP response at
the bottom stays open, and its socket is left to the garbage collector (pytest reported the
ResourceWarning in 1 run of 4).  So the close runs in a task of its own that a cancellation
does not interrupt; the cancellation still goes on up at once.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["aclose_fully"]

_closing: set[asyncio.Future[Any]] = set()


async def aclose_fully(iterator: object) -> None:
    """``await iterator.aclose()`` (if it has one), to the end even when cancelled."""
    aclose = getattr(iterator, "aclose", None)
    if aclose is None:
        return
    closer = asyncio.ensure_future(aclose())
    try:
        await asyncio.shield(closer)
    except asyncio.CancelledError:
        _closing.add(closer)  # kept until it is done; its outcome is retrieved
        closer.add_done_callback(_closing.discard)
        closer.add_done_callback(lambda t: t.cancelled() or t.exception())
        raise
