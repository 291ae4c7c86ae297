"""Per document, the newest wins.

Writers type on while a weave runs, and completion engines ask on every keystroke, so
for each document only the newest of a kind of work is worth finishing: a newer one
stops the one before it.  One mechanism for all of them:

* the completion and inline features' debounced requests (:meth:`Newest.request`: a newer
  request for the document cancels the older one, answered -32800);
* :class:`~.weaving.WeaveService`'s running weaves (a weave of another story stops the
  document's previous weave, unless it is the same weave, which it joins).

Warm-ups are not this: one that evaluates runs on while the newest waits behind it
(:meth:`.weaving.WeaveService.warm_soon`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

__all__ = ["Newest"]

W = TypeVar("W")


class Newest(Generic[W]):
    """The newest work of each document.  ``live``: whether a piece of work can still be
    stopped (not done, not stopping); ``stop``: stop it."""

    def __init__(self, *, live: Callable[[W], bool], stop: Callable[[W], object]) -> None:
        self._live = live
        self._stop = stop
        self._by_uri: dict[str, W] = {}

    @classmethod
    def of_tasks(cls) -> Newest[asyncio.Task[Any]]:
        """For asyncio tasks: live until done, stopped by cancelling."""
        return Newest(live=lambda task: not task.done(), stop=lambda task: task.cancel())

    def get(self, uri: str) -> W | None:
        return self._by_uri.get(uri)

    def take(self, uri: str, work: W) -> bool:
        """``work`` is now the newest of ``uri``: stop the one before it, if it is live and
        another.  Whether one was stopped."""
        previous = self._by_uri.get(uri)
        self._by_uri[uri] = work
        if previous is not None and previous is not work and self._live(previous):
            self._stop(previous)
            return True
        return False

    def release(self, uri: str, work: W) -> None:
        """``work`` ended: forget it, unless a newer one has taken its place."""
        if self._by_uri.get(uri) is work:
            del self._by_uri[uri]

    def items(self) -> list[tuple[str, W]]:
        return list(self._by_uri.items())

    @contextmanager
    def request(self: Newest[asyncio.Task[Any]], uri: str) -> Iterator[None]:
        """The current task is the newest request of ``uri`` while the block runs: an older
        one is cancelled, and a newer one cancels it."""
        this = asyncio.current_task()
        if this is None:  # not in a task: nothing to cancel it by
            yield
            return
        self.take(uri, this)
        try:
            yield
        finally:
            self.release(uri, this)
