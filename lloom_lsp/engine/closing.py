"""Work that must end although its caller was cancelled: kept, and never cancelled twice.

A cancellation that lands inside a nested ``aclose()``, an HTTP exchange or a request to the
client stops it halfway: a weave cancels its chains, and then the weave itself is often
cancelled too (a newer request) while the chains are still closing; the generators below are
then never closed, the HTTP response at the bottom stays open, and its socket is left to the
garbage collector (pytest reported the ResourceWarning in 1 run of 4).  So such work runs in
a task of its own (:func:`shielded`) that the caller's cancellation does not interrupt; the
cancellation still goes on up at once, and the task is held in a :class:`BackgroundTasks`
until it is done, its outcome retrieved so that nothing logs "exception was never
retrieved".  This is the one place the project does that: the engine's closes, the server's
progress requests and the HTTP transport's exchanges all use it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterator
from typing import Any, TypeVar

__all__ = ["BackgroundTasks", "aclose_fully", "shielded"]

T = TypeVar("T")


class BackgroundTasks:
    """Tasks that go on after their caller left, held until they are done."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Future[Any]] = set()

    def keep(self, task: asyncio.Future[Any]) -> None:
        """Hold on to ``task`` until it is done, and retrieve its outcome then."""
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(lambda t: t.cancelled() or t.exception())

    def __len__(self) -> int:
        return len(self._tasks)

    def __iter__(self) -> Iterator[asyncio.Future[Any]]:
        return iter(list(self._tasks))

    async def aclose(self, timeout: float) -> None:
        """Let the tasks end within ``timeout`` seconds, then cancel those still running."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def shielded(work: Awaitable[T], kept: BackgroundTasks, *, cancel_once: bool = False) -> T:
    """``await work`` in a task of its own.  Cancelled, the caller returns at once and the
    task goes on in ``kept`` (cancelled there once first, when ``cancel_once``)."""
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        if cancel_once:
            task.cancel()
        kept.keep(task)
        raise


_closing = BackgroundTasks()


async def aclose_fully(iterator: object) -> None:
    """``await iterator.aclose()`` (if it has one), to the end even when cancelled."""
    aclose = getattr(iterator, "aclose", None)
    if aclose is None:
        return
    await shielded(aclose(), _closing)
