"""The best-first strategy and the rules every strategy shares since: merging paths that
spell one text, and ranking beams cut short below finished ones."""

from __future__ import annotations

import math

import attrs
import pytest
from scripted import ScriptedSource, StreamingSource, fixed

from lloom_lsp.config import WeaveSettings
from lloom_lsp.engine import weave
from lloom_lsp.engine.beam import Beam, BeamToken, _ngrams, rank_beams, repeats_text

WORDS = {1: b" red", 2: b" blue", 3: b" green", 4: b" re", 5: b"d", 6: b",", 7: b"."}


def settings(**kw: object) -> WeaveSettings:
    return attrs.evolve(WeaveSettings(strategy="best"), **kw)  # type: ignore[arg-type]


async def test_it_finds_the_probable_beam_behind_an_improbable_token() -> None:
    # Greedy takes " red" (0.5) then a flat 0.3; " blue" (0.4) is followed by a sure 0.99.
    table = {(): [(1, 0.5), (2, 0.4), (3, 0.1)], (1,): [(3, 0.3), (2, 0.3), (6, 0.3)]}
    source = StreamingSource(WORDS, lambda ids: table.get(ids, [(7, 0.99), (6, 0.01)]))
    result = await weave(
        source, "A", settings(auto_stop=False, max_depth=2, rank="joint", cutoff=0.05)
    )
    assert result.beams[0].text == " blue."
    assert result.beams[0].joint == pytest.approx(0.4 * 0.99)


async def test_it_stops_at_max_suggestions_natural_beams_and_hands_back_no_stubs() -> None:
    source = StreamingSource(WORDS, fixed([(1, 0.4), (2, 0.35), (3, 0.25)]), step_delay=0.001)
    result = await weave(
        source, "A", settings(auto_stop=False, max_depth=4, max_suggestions=6, cutoff=0.05)
    )
    finished = [b for b in result.beams if b.finish != "cut"]
    assert len(finished) == len(result.beams) == 6  # the beams cut short do not add to 6
    assert all(len(b.tokens) == 4 for b in finished)  # every one full length: no stubs
    assert all(b.finish == "cut" for b in result.beams[len(finished) :])
    assert result.stats.requests <= 6 + 4  # about one request per beam, plus those cut


async def test_a_spent_budget_ranks_cut_beams_below_every_finished_one() -> None:
    source = StreamingSource(WORDS, fixed([(1, 0.5), (2, 0.5)]), step_delay=0.001)
    result = await weave(
        source,
        "A",
        settings(auto_stop=False, max_depth=6, max_suggestions=50, max_requests=3, cutoff=0.05),
    )
    kinds = [b.finish for b in result.beams]
    assert "depth" in kinds
    assert kinds == sorted(kinds, key=lambda k: k == "cut")
    assert result.stats.requests <= 3


async def test_two_paths_that_spell_one_text_are_one_suggestion_with_their_summed_joint() -> None:
    # " red" in one token (0.5) or as " re" + "d" (0.3 * 1.0): one suggestion, p = 0.8.
    table = {(): [(1, 0.5), (4, 0.3), (2, 0.2)], (4,): [(5, 1.0)]}
    source = ScriptedSource(WORDS, lambda ids: table.get(ids, [(7, 1.0)]))
    result = await weave(
        source,
        "A",
        WeaveSettings(strategy="chain", max_depth=4, cutoff=0.1, rank="joint"),
    )
    red = next(b for b in result.beams if b.text == " red.")
    assert red.joint == pytest.approx(0.5 + 0.3)
    assert red.paths == 2
    assert [b.text for b in result.beams].count(" red.") == 1


def _beam(text: str, joint: float, n: int, finish: str = "stop") -> Beam:
    tokens = tuple(BeamToken(w, joint ** (1 / n), None) for w in [text] * n)
    return Beam(text, text, tokens, 0.5 * n, joint, math.log(joint) / n, finish)


def test_a_beam_that_repeats_the_story_is_demoted_or_dropped() -> None:
    story = "She climbed the hundred and twelve steps to the lamp room every night."
    echo = _beam(" She climbed the hundred and twelve steps", 0.2, 8)
    fresh = _beam(" The storm had come early", 0.01, 6)
    assert [b.text for b in rank_beams([echo, fresh], "joint")] == [echo.text, fresh.text]
    demoted = rank_beams([echo, fresh], "joint", story=story, repeats="demote")
    assert [b.text for b in demoted] == [fresh.text, echo.text]
    assert demoted[1].repeats_story and not demoted[0].repeats_story
    dropped = rank_beams([echo, fresh], "joint", story=story, repeats="drop")
    assert [b.text for b in dropped] == [fresh.text]


def test_a_short_beam_repeats_the_story_only_if_it_occurs_there_whole() -> None:
    grams = _ngrams("the keeper lit the lamp at dusk")
    assert repeats_text(" the lamp", grams)
    assert repeats_text(" Dusk", grams)  # at the story's very end
    assert not repeats_text(" the storm", grams)
    assert not repeats_text(" lamp the", grams)  # its words, not in its order
    # A story shorter than the n-gram has none: nothing repeats it.
    assert not repeats_text(" the lamp", _ngrams("the lamp"))


def test_norm_rank_sits_between_joint_and_mean() -> None:
    short = _beam(" Yes.", 0.3, 2)  # p per token 0.55
    long = _beam(" The boat struck the rocks and broke apart.", 0.01, 9)  # 0.60 per token
    assert rank_beams([short, long], "joint")[0].text == short.text
    assert rank_beams([short, long], "mean")[0].text == long.text
    assert short.rank_value("norm") == pytest.approx(math.log(0.3) / 2**0.7)


# -- no pruning, and beams handed back in joint order --------------------------------------

# Root: " red" 0.5 leads to a flat " green" 0.4 / " grey" 0.3 and eight 0.0375 tails; " blue"
# 0.45 to a sure " gold" 0.9.  " gold" after " red" is improbable enough to fall below any cutoff.
TAILS = [(10 + k, 0.0375) for k in range(8)]
ORDER_WORDS = {**WORDS, 8: b" grey", 9: b" gold", **{i: f" t{i}".encode() for i, _ in TAILS}}
ORDER = {
    (): [(1, 0.5), (2, 0.45), (3, 0.05)],
    (1,): [(3, 0.4), (8, 0.3), *TAILS],
    (2,): [(9, 0.9), (3, 0.1)],
}


def _order_source() -> StreamingSource:
    return StreamingSource(ORDER_WORDS, lambda ids: ORDER.get(ids, [(7, 1.0)]), step_delay=0.001)


async def test_ended_alternatives_wait_their_turn_behind_more_probable_prefixes() -> None:
    """The first chain, " red green", also brings nine alternatives that end at once at the
    last position.  Counted as they came, they would fill maxSuggestions 3 and the weave
    would stop without trying " blue" (0.45), whose beam " blue gold" (0.405) beats them all.
    One chain at a time: concurrent chains also take the next prefixes (" green", 0.05)."""
    source = _order_source()
    result = await weave(
        source,
        "A",
        settings(auto_stop=False, max_depth=2, max_suggestions=3, rank="joint"),
        concurrency=1,
    )
    beams = [(b.text, round(b.joint, 4)) for b in result.beams if b.finish != "cut"]
    assert beams == [(" blue gold", 0.405), (" red green", 0.2), (" red grey", 0.15)]
    assert result.stats.requests == 2  # " red" chain, " blue" chain; the ends cost nothing


async def test_without_prune_every_top_alternative_can_grow_and_with_it_the_cutoff_prunes() -> None:
    # " green" (0.05) is below cutoff 0.1: pruned, its beam never exists.
    base = settings(auto_stop=False, max_depth=2, max_suggestions=6, rank="joint", cutoff=0.1)
    free = await weave(_order_source(), "A", base)
    pruned = await weave(_order_source(), "A", attrs.evolve(base, prune=True, split_limit=2))
    assert any(b.text.startswith(" green") for b in free.beams)
    assert not any(b.text.startswith(" green") for b in pruned.beams)
    # the split limit too: at most two alternatives per position, so no " t10" tails
    assert not any(" t1" in b.text for b in pruned.beams)


async def test_a_spent_budget_still_hands_back_the_ended_beams_in_joint_order() -> None:
    result = await weave(
        _order_source(),
        "A",
        settings(auto_stop=False, max_depth=2, max_suggestions=5, max_requests=1, rank="joint"),
        concurrency=1,
    )
    assert result.stats.requests == 1
    natural = [b.text for b in result.beams if b.finish == "depth"]
    # the one chain's end, then its queued alternatives, most probable first, up to 5
    assert natural[:2] == [" red green", " red grey"]
    assert len(natural) == 5


async def test_no_chain_starts_beside_chains_in_flight_that_make_max_suggestions() -> None:
    # Each chain ends in a suggestion of its own: with 2 wanted and 2 in flight, a third
    # would only be cut (its tokens decoded for nothing) and slow the two down.
    source = StreamingSource(WORDS, fixed([(1, 0.4), (2, 0.35), (3, 0.25)]), step_delay=0.01)
    result = await weave(
        source,
        "A",
        settings(auto_stop=False, max_depth=4, max_suggestions=2, max_requests=10),
        concurrency=4,
    )
    assert [b.finish for b in result.beams] == ["depth", "depth"]
    assert source.requests == [((), 4), ((2,), 3)]  # the greedy chain, then the best other
    assert source.streamed == [4, 3]  # each to its own end: nothing started only to be cut


async def test_a_chain_in_flight_that_repeats_a_text_lets_the_next_prefix_grow() -> None:
    # " re" + "d" spells " red": the chain in flight ends in a text already had, so the
    # search takes the next prefix after all, and still hands back 3 distinct texts.
    table = {(): [(1, 0.5), (4, 0.3), (2, 0.2)], (4,): [(5, 1.0)]}
    source = StreamingSource(WORDS, lambda ids: table.get(ids, [(7, 0.9), (6, 0.1)]))
    result = await weave(
        source,
        "A",
        settings(auto_stop=False, max_depth=2, max_suggestions=3, max_requests=10, cutoff=0.05),
        concurrency=4,
    )
    texts = [b.text for b in result.beams if b.finish != "cut"]
    assert len(texts) == len(set(texts)) == 3
