"""Per document, the newest wins (server/newest.py): one mechanism for debounced requests
and running weaves."""

from __future__ import annotations

import asyncio

import pytest

from lloom_lsp.server.newest import Newest


async def test_a_newer_request_cancels_the_older_one_of_its_document_only() -> None:
    requests = Newest.of_tasks()
    gate = asyncio.Event()

    async def request(uri: str) -> str:
        with requests.request(uri):
            await gate.wait()
        return uri

    first = asyncio.ensure_future(request("a"))
    other = asyncio.ensure_future(request("b"))
    await asyncio.sleep(0)
    second = asyncio.ensure_future(request("a"))
    await asyncio.sleep(0)
    gate.set()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await second == "a" and await other == "b"
    assert requests.items() == []  # each request forgot itself when it ended


def test_take_stops_only_live_work_other_than_itself() -> None:
    stopped: list[str] = []
    live = {"w1": True, "w2": False, "w3": True}
    newest: Newest[str] = Newest(live=lambda w: live[w], stop=stopped.append)
    assert not newest.take("doc", "w1")
    assert not newest.take("doc", "w1")  # the same work again: joined, not stopped
    assert newest.take("doc", "w3") and stopped == ["w1"]
    newest.release("doc", "w1")  # an older one ending does not forget the newest
    assert newest.get("doc") == "w3"
    live["w3"] = False
    assert not newest.take("doc", "w2") and stopped == ["w1"]  # done work is not stopped
    newest.release("doc", "w2")
    assert newest.get("doc") is None
