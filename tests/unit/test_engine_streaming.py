"""The chain walker on a streaming source: branching before a chain ends, closing streams
the weave no longer needs, cancelling chains in flight at the limit, and the frontier."""

from __future__ import annotations

import asyncio

import attrs
from scripted import ScriptedSource, StreamingSource, fixed

from lloom_lsp.config import WeaveSettings
from lloom_lsp.engine import Weave, weave

WORDS = {1: b" red", 2: b" blue", 3: b" green", 6: b",", 7: b"."}


def settings(**kw: object) -> WeaveSettings:
    """The defaults under LLooM's rules (``chain``; the default ``best`` prunes nothing)."""
    return attrs.evolve(WeaveSettings(strategy="chain"), **kw)  # type: ignore[arg-type]


async def test_an_alternative_starts_before_its_parent_chain_ends() -> None:
    source = StreamingSource(WORDS, fixed([(1, 0.6), (2, 0.4)]), step_delay=0.001)
    await weave(
        source, "A", settings(auto_stop=False, max_depth=4, split_limit=2, max_suggestions=1000)
    )
    # The root's alternative at position 1 (" blue") starts while the root still streams.
    assert source.events.index("start (2,)") < source.events.index("end ()")


async def test_a_chain_that_reaches_a_stop_closes_its_stream() -> None:
    chain = {(): [(1, 0.9)], (1,): [(7, 0.9)]}  # " red." then more words the beam never needs
    source = StreamingSource(WORDS, lambda ids: chain.get(ids, [(3, 0.9)]))
    result = await weave(source, "A", settings(max_depth=12))
    assert [b.text for b in result.beams] == [" red."]
    assert source.streamed == [2]  # two steps handed over of the twelve asked for
    assert source.closed_early == 1
    assert result.stats.decoded_tokens == 2


async def test_a_leading_stop_does_not_close_the_stream() -> None:
    chain = {(): [(6, 0.9)], (6,): [(1, 0.9)], (6, 1): [(7, 0.9)]}
    source = StreamingSource(WORDS, lambda ids: chain.get(ids, [(3, 0.9)]))
    result = await weave(source, "A", settings(max_depth=12))
    assert [b.text for b in result.beams] == [", red."]
    assert source.streamed == [3]


async def test_a_beam_with_text_asks_the_backend_to_stop_at_the_stop_strings() -> None:
    # The root may start with a stop string, which does not end it (autoStop's rule): no
    # stop for it.  Its alternatives (" blue", ",") start from one token of their own: the
    # one with text ends at any stop string that comes next, the one without does not.
    chain = {(): [(1, 0.5), (2, 0.3), (6, 0.2)], (1,): [(7, 0.9)], (2,): [(7, 0.9)]}
    source = StreamingSource(WORDS, lambda ids: chain.get(ids, [(3, 0.9)]))
    await weave(source, "A", settings(max_depth=3, cutoff=0.1, max_suggestions=10))
    assert source.stops[()] == ()
    assert source.stops[(2,)] == (".", ",")
    assert source.stops[(6,)] == ()
    no_stop = StreamingSource(WORDS, lambda ids: chain.get(ids, [(3, 0.9)]))
    await weave(no_stop, "A", settings(max_depth=3, max_suggestions=10, auto_stop=False))
    assert set(no_stop.stops.values()) == {()}


async def test_the_limit_cancels_chains_in_flight_and_ends_every_open_beam() -> None:
    source = StreamingSource(WORDS, fixed([(1, 0.5), (2, 0.5)]), step_delay=0.001)
    result = await weave(
        source, "A", settings(auto_stop=False, max_depth=8, split_limit=2, max_suggestions=5)
    )
    leaves = result.tree.leaves()
    # The limit is checked after each position, so the last split may pass it by one.
    assert 5 <= len(leaves) <= 6
    assert {leaf.finish for leaf in leaves} <= {"limit", "depth"}
    assert source.closed_early >= 1  # the chains in flight were cut, not run to depth 8
    assert sum(source.streamed) < 8 * len(source.streamed)
    assert result.stats.decoded_tokens == sum(source.streamed)


async def test_streamed_and_answered_chains_weave_the_same_tree() -> None:
    table = {(): [(1, 0.5), (2, 0.3), (3, 0.2)], (2,): [(3, 0.7), (1, 0.3)]}
    kw = {"auto_stop": False, "max_depth": 3, "split_limit": 3, "max_suggestions": 1000}
    streamed = await weave(
        StreamingSource(WORDS, lambda ids: table.get(ids, [(6, 1.0)])), "A", settings(**kw)
    )
    answered = await weave(
        ScriptedSource(WORDS, lambda ids: table.get(ids, [(6, 1.0)])), "A", settings(**kw)
    )
    assert [(b.text, b.joint) for b in streamed.beams] == [
        (b.text, b.joint) for b in answered.beams
    ]


async def test_a_shared_limiter_bounds_requests_across_weaves() -> None:
    source = StreamingSource(WORDS, fixed([(1, 0.5), (2, 0.5)]), step_delay=0.002)
    in_flight = 0
    most = 0
    inner = source.stream_steps

    async def counting(*args: object):  # type: ignore[no-untyped-def]
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        try:
            async for step in inner(*args):  # type: ignore[arg-type]
                yield step
        finally:
            in_flight -= 1

    source.stream_steps = counting  # type: ignore[method-assign]
    limiter = asyncio.Semaphore(2)
    s = settings(auto_stop=False, max_depth=4, max_suggestions=1000)
    await asyncio.gather(
        *(Weave(source, story, s, limiter=limiter).run() for story in ("A", "B", "C"))
    )
    assert most == 2


async def test_the_frontier_is_empty_when_the_weave_ends() -> None:
    source = StreamingSource(WORDS, fixed([(1, 0.5), (2, 0.5)]))
    w = Weave(source, "A", settings(auto_stop=False, max_depth=5, max_suggestions=7))
    result = await w.run()
    assert len(w.frontier) == 0
    assert 7 <= len(result.tree.leaves()) <= 8
    assert result.stats.tree_tokens == sum(1 for n in result.tree.nodes() if n.candidate)
