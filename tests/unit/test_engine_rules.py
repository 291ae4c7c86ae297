"""The LLooM rules, case by case, against an in-memory scripted source."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import attrs
import pytest
from scripted import BatchingSource, ScriptedSource, fixed

from lloom_lsp.backends import BackendUnavailable
from lloom_lsp.config import WeaveSettings
from lloom_lsp.engine import Prompt, Weave, WeaveResult, split_story, weave

WORDS = {1: b" red", 2: b" blue", 3: b" green", 4: b" grey", 5: b" gold", 6: b",", 7: b"."}


def settings(**kw: object) -> WeaveSettings:
    """The defaults under LLooM's rules (``chain``; the default ``best`` prunes nothing)."""
    return attrs.evolve(WeaveSettings(strategy="chain"), **kw)  # type: ignore[arg-type]


def texts(result: WeaveResult) -> set[str]:
    return {b.text for b in result.beams}


async def test_max_depth_is_exact_not_plus_one() -> None:
    source = ScriptedSource(WORDS, fixed([(1, 0.6), (2, 0.4)]))
    result = await weave(
        source, "Colours:", settings(auto_stop=False, max_depth=4, max_suggestions=1000)
    )
    assert result.beams
    assert {len(b.tokens) for b in result.beams} == {4}
    assert len(result.beams) == 16  # two ways at each of 4 positions


async def test_split_rule_first_always_then_cutoff_then_limit() -> None:
    dist = [(1, 0.3), (2, 0.25), (3, 0.2), (4, 0.15), (5, 0.1)]
    source = ScriptedSource(WORDS, fixed(dist))
    result = await weave(source, "A", settings(auto_stop=False, max_depth=1))
    assert texts(result) == {" red", " blue", " green"}  # p >= 0.2, at most 3

    low = ScriptedSource(WORDS, fixed([(1, 0.1), (2, 0.05)]))
    result = await weave(low, "A", settings(auto_stop=False, max_depth=1))
    assert texts(result) == {" red"}  # the first is taken even below the cutoff


async def test_split_limit_zero_is_unlimited() -> None:
    dist = [(i, 0.2) for i in range(1, 6)]
    source = ScriptedSource(WORDS, fixed(dist))
    limited = await weave(source, "A", settings(auto_stop=False, max_depth=1))
    unlimited = await weave(source, "A", settings(auto_stop=False, max_depth=1, split_limit=0))
    assert len(limited.beams) == 3
    assert len(unlimited.beams) == 5


async def test_multiplier_raises_cutoff_with_depth() -> None:
    source = ScriptedSource(WORDS, fixed([(1, 0.7), (2, 0.3)]))
    flat = await weave(source, "A", settings(auto_stop=False, max_depth=2, cutoff=0.2))
    steep = await weave(
        source, "A", settings(auto_stop=False, max_depth=2, cutoff=0.2, multiplier=2.0)
    )
    assert len(flat.beams) == 4
    # depth 0 uses cutoff 0.2 (split), depth 1 uses 0.4 (no split)
    assert texts(steep) == {" red red", " blue red"}


async def test_leading_stop_continues_and_later_stop_ends() -> None:
    vocab = {1: b",", 2: b" and", 3: b".", 4: b" more"}
    chain = {(): [(1, 0.9)], (1,): [(2, 0.9)], (1, 2): [(3, 0.9)]}
    source = ScriptedSource(vocab, lambda ids: chain.get(ids, [(4, 0.9)]))
    result = await weave(source, "A", settings(max_depth=8))
    assert [b.text for b in result.beams] == [", and."]
    assert result.beams[0].finish == "stop"


async def test_multi_character_stop_is_kept_whole() -> None:
    vocab = {1: b" The", 2: b" end", 3: b"\n", 4: b" again"}
    chain = {(): [(1, 0.9)], (1,): [(2, 0.9)], (1, 2): [(3, 0.9)], (1, 2, 3): [(3, 0.9)]}
    source = ScriptedSource(vocab, lambda ids: chain.get(ids, [(4, 0.9)]))
    result = await weave(source, "A", settings(max_depth=8, stop_strings=("\n\n",)))
    assert [b.text for b in result.beams] == [" The end\n\n"]


async def test_stop_inside_a_token_trims_after_the_stop() -> None:
    vocab = {1: b" The", 2: b" end. And", 3: b" more"}
    chain = {(): [(1, 0.9)], (1,): [(2, 0.9)]}
    source = ScriptedSource(vocab, lambda ids: chain.get(ids, [(3, 0.9)]))
    result = await weave(source, "A", settings(max_depth=8))
    assert [b.text for b in result.beams] == [" The end."]


async def test_max_suggestions_finishes_pending_beams_where_they_stand() -> None:
    source = ScriptedSource(WORDS, fixed([(1, 0.5), (2, 0.5)]))
    result = await weave(
        source, "A", settings(auto_stop=False, max_depth=6, max_suggestions=5, strategy="token")
    )
    # depth 1: 2 beams; depth 2: 4; at depth 3 the first beam's two children make 5 open
    # beams, which is the limit: they and the three beams not yet grown finish where they
    # stand.  (Checked once per level, all 8 beams grew a token first; on the real model,
    # maxSuggestions 25 gave 42 and 43.)
    assert len(result.beams) == 5
    assert sorted(len(b.tokens) for b in result.beams) == [2, 2, 2, 3, 3]
    assert {b.finish for b in result.beams} == {"limit"}


async def test_max_suggestions_bounds_the_chain_strategy_too() -> None:
    source = ScriptedSource(WORDS, fixed([(1, 0.5), (2, 0.5)]))
    result = await weave(source, "A", settings(auto_stop=False, max_depth=10, max_suggestions=5))
    assert 5 <= len(result.beams) < 2**10
    assert len(source.requests) < 20


async def test_end_of_sequence_ends_a_beam_without_text() -> None:
    vocab = {1: b" red", 9: b""}
    table = {(): [(1, 0.6), (9, 0.4)], (1,): [(9, 0.9)]}
    for strategy in ("token", "chain"):
        source = ScriptedSource(vocab, lambda ids: table[ids], end_id=9)
        result = await weave(source, "A", settings(strategy=strategy, max_depth=5))
        assert [(b.text, b.finish) for b in result.beams] == [(" red", "eos")]


async def test_beam_never_ends_inside_a_utf8_character() -> None:
    vocab = {1: b" caf", 2: b"\xc3", 3: b"\xa9"}
    table = {(): [(1, 0.9)], (1,): [(2, 0.9)], (1, 2): [(3, 0.9)]}
    source = ScriptedSource(vocab, lambda ids: table.get(ids, [(1, 0.9)]))
    cut = await weave(source, "A", settings(max_depth=2))
    whole = await weave(source, "A", settings(max_depth=3))
    assert [b.text for b in cut.beams] == [" caf"]
    assert [b.text for b in whole.beams] == [" café"]


async def test_stray_continuation_bytes_are_dropped_not_shown() -> None:
    vocab = {1: b"\xa9", 2: b" and"}
    table = {(): [(1, 0.9)], (1,): [(2, 0.9)]}
    source = ScriptedSource(vocab, lambda ids: table.get(ids, [(2, 0.9)]))
    result = await weave(source, "A", settings(max_depth=2, auto_stop=False))
    assert [b.text for b in result.beams] == [" and"]


async def test_trailing_whitespace_is_held_back_and_healed() -> None:
    source = ScriptedSource({1: b" there", 2: b"\nThen"}, fixed([(1, 0.5), (2, 0.5)]))
    result = await weave(source, "Once upon a time, ", settings(auto_stop=False, max_depth=1))
    assert result.prompt == "Once upon a time,"
    by_text = {b.text: b.insert_text for b in result.beams}
    assert by_text == {" there": "there", "\nThen": "\nThen"}


async def test_scores_and_ranks() -> None:
    # " red; red; red;" has the larger sum, " blue." the larger product; both end naturally.
    vocab = {1: b" red;", 2: b" blue", 3: b"."}
    table = {(): [(1, 0.5), (2, 0.5)], (2,): [(3, 0.8)]}
    source = ScriptedSource(vocab, lambda ids: table.get(ids, [(1, 0.45), (2, 0.1)]))
    lloom = await weave(source, "A", settings(max_depth=3))
    joint = await weave(source, "A", settings(max_depth=3, rank="joint"))
    mean = await weave(source, "A", settings(max_depth=3, rank="mean"))
    assert lloom.beams[0].text == " red; red; red;"
    assert joint.beams[0].text == " blue."
    assert mean.beams[0].text == " blue."
    best = lloom.beams[0]
    assert best.score == pytest.approx(0.5 + 0.45 + 0.45)
    assert best.joint == pytest.approx(0.5 * 0.45 * 0.45)
    assert best.probs == pytest.approx((0.5, 0.45, 0.45))


def _random_table(seed: int) -> ScriptedSource:
    rng = random.Random(seed)
    vocab = {i: f" w{i}".encode() for i in range(1, 9)} | {9: b".", 10: b","}
    cache: dict[tuple[int, ...], list[tuple[int, float]]] = {}

    def table(ids: tuple[int, ...]) -> list[tuple[int, float]]:
        if ids not in cache:
            weights = [rng.random() ** 3 for _ in vocab]
            total = sum(weights)
            cache[ids] = [(i, w / total) for i, w in zip(vocab, weights)]
        return cache[ids]

    return ScriptedSource(vocab, table)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(
    "kw",
    [
        {"cutoff": 0.2},  # LLooM's original default
        {"cutoff": 0.1, "max_depth": 6},
        {"auto_stop": False, "max_depth": 5, "split_limit": 0, "cutoff": 0.15},
        {"multiplier": 0.8, "max_depth": 6},  # at 7, up to 3**7 beams: the limit binds
    ],
)
async def test_chain_equals_token_with_fewer_requests(seed: int, kw: dict) -> None:
    source = _random_table(seed)
    base = settings(max_suggestions=1000, **kw)
    token = await weave(source, "A", attrs.evolve(base, strategy="token"))
    token_requests = len(source.requests)
    chain = await weave(source, "A", attrs.evolve(base, strategy="chain"))
    chain_requests = len(source.requests) - token_requests
    assert [(b.text, b.score) for b in chain.beams] == [(b.text, b.score) for b in token.beams]
    assert chain_requests <= token_requests
    if any(len(b.tokens) > 1 for b in token.beams):
        assert chain_requests < token_requests


async def test_concurrency_is_bounded() -> None:
    source = ScriptedSource(WORDS, fixed([(1, 0.5), (2, 0.5)]), delay=0.01)
    await weave(
        source, "A", settings(auto_stop=False, max_depth=4, max_suggestions=100), concurrency=2
    )
    assert source.max_in_flight == 2


async def test_cancelling_the_weave_cancels_in_flight_requests() -> None:
    source = ScriptedSource(WORDS, fixed([(1, 0.5), (2, 0.5)]), delay=30)
    task = asyncio.ensure_future(weave(source, "A", settings()))
    while not source.in_flight:
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert source.cancelled == 1
    assert source.in_flight == 0


async def test_stream_yields_beams_before_the_result() -> None:
    source = ScriptedSource(WORDS, fixed([(1, 0.5), (2, 0.3), (7, 0.2)]))
    items = [item async for item in Weave(source, "A", settings(max_depth=3)).stream()]
    *beams, result = items
    assert isinstance(result, WeaveResult)
    assert beams
    assert {b.text for b in beams} == texts(result)


async def test_tree_holds_every_taken_alternative() -> None:
    source = ScriptedSource(WORDS, fixed([(1, 0.6), (2, 0.4)]))
    result = await weave(source, "A", settings(auto_stop=False, max_depth=2))
    root = result.tree.root
    assert [c.candidate.data for c in root.children] == [b" red", b" blue"]  # type: ignore[union-attr]
    assert sum(1 for _ in result.tree.nodes()) == 1 + 2 + 4
    assert len(result.tree.leaves()) == 4
    as_json = result.tree.to_dict()
    assert as_json["root"]["children"][0]["prob"] == pytest.approx(0.6)


@pytest.mark.parametrize("strategy", ["token", "chain"])
async def test_batching_sends_several_beams_per_request_with_the_same_result(
    strategy: str,
) -> None:
    plain = _random_table(3)
    batching = BatchingSource(plain.vocab, plain.table, max_batch=4)
    s = settings(strategy=strategy, max_suggestions=1000, max_depth=6, cutoff=0.1)
    one = await weave(plain, "A", s)
    many = await weave(batching, "A", s)
    assert [(b.text, b.score) for b in many.beams] == [(b.text, b.score) for b in one.beams]
    assert max(batching.batches) > 1
    assert max(batching.batches) <= 4
    assert many.stats.requests == len(batching.batches) < one.stats.requests


class _OneFails(ScriptedSource):
    """The request for the beam " blue" fails at once; every other one takes a while."""

    async def continue_prompt(self, prompt: Prompt, max_tokens: int, top_n: int) -> Any:
        if prompt.token_ids == (2,):
            raise BackendUnavailable("http://scripted", "the server went away")
        return await super().continue_prompt(prompt, max_tokens, top_n)


async def test_a_failed_request_cancels_its_siblings_in_the_token_strategy() -> None:
    """``asyncio.gather`` re-raised the failure but left the level's other requests running."""
    source = _OneFails(WORDS, fixed([(1, 0.5), (2, 0.5)]), delay=5)
    source.delay = 0  # the root answers at once
    task = asyncio.ensure_future(
        weave(source, "A", settings(strategy="token", auto_stop=False, max_depth=3))
    )
    while not source.requests:
        await asyncio.sleep(0)
    source.delay = 5  # the level after it: " red" waits, " blue" fails
    with pytest.raises(BackendUnavailable):
        await asyncio.wait_for(task, 2)
    assert source.in_flight == 0 and source.cancelled == 1


@pytest.mark.parametrize(
    ("story", "prompt", "held"),
    [
        ("end.\n", "end.\n", ""),
        ("end.\r\n", "end.\r\n", ""),
        ("end.\n\n", "end.\n\n", ""),
        ("end. ", "end.", " "),
        ("end.\n\t ", "end.\n", "\t "),
    ],
)
def test_only_spaces_and_tabs_are_held_back_never_a_line_break(
    story: str, prompt: str, held: str
) -> None:
    assert split_story(story) == (prompt, held)


async def test_the_model_sees_the_paragraph_break_and_the_beam_goes_on_the_new_line() -> None:
    """The story's "\\n" used to be held back: the model never saw the paragraph end, and its
    " The" was inserted at the start of the new line, space and all."""
    source = ScriptedSource({1: b"The", 2: b" The"}, fixed([(1, 0.6), (2, 0.4)]))
    result = await weave(source, "It ended.\n", settings(auto_stop=False, max_depth=1))
    assert result.prompt == "It ended.\n" and result.held == ""
    assert {b.insert_text for b in result.beams} == {"The", " The"}


async def test_two_beams_that_insert_the_same_text_are_one_item() -> None:
    """After a held space, " there" and "there" both insert "there": one suggestion, with
    both paths' probability, not two identical items."""
    source = ScriptedSource({1: b" there", 2: b"there"}, fixed([(1, 0.5), (2, 0.3)]))
    result = await weave(
        source, "Once upon a time, ", settings(auto_stop=False, max_depth=1, rank="joint")
    )
    assert [b.insert_text for b in result.beams] == ["there"]
    assert result.beams[0].joint == pytest.approx(0.8) and result.beams[0].paths == 2
