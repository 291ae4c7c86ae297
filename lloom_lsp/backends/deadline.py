"""Waiting with a deadline, without losing a cancellation: :func:`within`.

``asyncio.wait_for`` before 3.12 runs the awaited thing as a task of its own, and when that
task ends in the same turn as the waiting task is cancelled, it returns the result and drops
the cancellation: a weave cancelled just as a request slot came free went on sending
requests.  ``asyncio.timeout`` (3.11+) awaits in the caller's own task and has no such turn;
on 3.10 anyio's ``fail_after``, which works the same way, stands in for it.  (anyio comes
with httpx, and the VS Code extension bundles it; the ``async-timeout`` backport would have
been one more package to ship.)

This module imports nothing of lloom_lsp, so that its tests can load it by file path under
every Python the server supports.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable
from typing import TypeVar

__all__ = ["within"]

T = TypeVar("T")

if sys.version_info >= (3, 11):

    async def within(seconds: float, waiting: Awaitable[T]) -> T:
        """``await waiting``, or ``TimeoutError`` after ``seconds``; a cancellation always
        goes on."""
        async with asyncio.timeout(seconds):
            return await waiting

else:  # pragma: no cover - 3.10 (tests/unit/test_within.py runs it there)
    import anyio

    async def within(seconds: float, waiting: Awaitable[T]) -> T:
        """``await waiting``, or ``TimeoutError`` after ``seconds``; a cancellation always
        goes on."""
        # anyio raises the builtin TimeoutError, which asyncio's is not before 3.11
        with anyio.fail_after(seconds):
            return await waiting
