"""What follows the cursor (issue 20, part 4) against the real llama-server on the bigram test
model: the score of the next words after a beam is the model's own probability of them, a
weave ranks by it and demotes beams that repeat them, the setting turns it off, and backends
that cannot score (the protocol fixtures of vLLM, OpenAI and Ollama) rank without it."""

from __future__ import annotations

import math

import attrs
import pytest
from backend_helpers import CHAT_WEAVE

from lloom_lsp.backends import LlamaCppBackend, create_backend
from lloom_lsp.config import BackendSettings, WeaveSettings
from lloom_lsp.engine import Prompt, weave
from lloom_lsp.engine.beam import NOTE_REPEATS_NEXT, rank_beams
from lloom_lsp.engine.suffix import LEAD_TOKENS, lead_text

STORY = "Once upon a time, "
#: LLooM's rules at its original cutoff: the bigram model's sharp distributions give a few
#: beams, the same ones on every run.
EXACT = WeaveSettings(strategy="chain", cutoff=0.2)


async def _tokens(backend: LlamaCppBackend, text: str) -> list[int]:
    answer = await backend.http.post_json("/tokenize", {"content": text})
    return list(answer["tokens"])


async def test_the_next_words_score_is_the_models_probability_of_them(
    llama_server_url: str,
) -> None:
    backend = LlamaCppBackend(llama_server_url)
    try:
        prompt = Prompt("Once upon a time, there was a")
        text = " little girl walked"
        scored = await backend.suffix_logprobs(prompt, text, LEAD_TOKENS)
        ids = (await _tokens(backend, text))[:LEAD_TOKENS]
        assert scored is not None and len(scored) == len(ids) > 1
        # each token's probability, read among a plain request's alternatives after the
        # tokens before it (the bigram vocabulary has 512 tokens: all of them)
        for i, token in enumerate(ids):
            cont = await backend.continue_prompt(Prompt(prompt.text, tuple(ids[:i])), 1, 512)
            prob = next(c.prob for c in cont.steps[0].top if c.token_id == token)
            assert math.exp(scored[i]) == pytest.approx(prob, rel=1e-3, abs=1e-6)
        # after a beam continued by token ids, as the weave sends it
        beam_ids = tuple((await _tokens(backend, " there was a"))[:3])
        after_beam = await backend.suffix_logprobs(Prompt("Once upon a time,", beam_ids), text, 2)
        assert after_beam == pytest.approx(scored[:2], rel=1e-3, abs=1e-6)
    finally:
        await backend.aclose()


async def test_a_weave_ranks_by_the_lead_into_the_text_after_the_cursor(
    llama_server_url: str,
) -> None:
    backend = LlamaCppBackend(llama_server_url)
    after = "and the end of it all"
    try:
        result = await weave(backend, STORY, EXACT, fold=True, after=after)
        plain = await weave(backend, STORY, EXACT, fold=True)
    finally:
        await backend.aclose()
    assert len(result.beams) > 3
    assert all(b.lead for b in result.beams)  # every beam scored, by its own lead text
    assert all(len(b.lead) <= LEAD_TOKENS for b in result.beams)
    assert result.stats.requests > plain.stats.requests  # one request a finished beam
    # within a tier, ranked as if each beam went on into the next words
    for above, below in zip(result.beams, result.beams[1:]):
        assert (above.tier, -above.rank_value(EXACT.rank)) <= (
            below.tier,
            -below.rank_value(EXACT.rank),
        )
    # the leads decide: without them the same beams rank as the weave without the text after
    unled = rank_beams(
        [attrs.evolve(b, lead=()) for b in result.beams],
        EXACT.rank,
        story=STORY,
        repeats=EXACT.repeats,
        fold=True,
        after=after,
    )
    assert {b.text for b in unled} == {b.text for b in plain.beams}


async def test_a_beam_that_repeats_the_next_words_is_demoted(llama_server_url: str) -> None:
    backend = LlamaCppBackend(llama_server_url)
    try:
        plain = await weave(backend, STORY, EXACT, fold=True)
        first = plain.beams[0]
        after = first.text.strip()  # the writer already wrote what the first beam says
        result = await weave(backend, STORY, EXACT, fold=True, after=after)
    finally:
        await backend.aclose()
    moved = next(b for b in result.beams if b.text == first.text)
    assert moved.note == NOTE_REPEATS_NEXT and moved.repeats_next
    assert result.beams[0].text != first.text
    assert result.beams.index(moved) > [b.text for b in plain.beams].index(first.text)
    kept = [b for b in result.beams if not b.repeats_next and not b.repeats_story]
    assert kept and result.beams[: len(kept)] == kept  # every repeat below every other beam


async def test_after_cursor_off_weaves_as_without_text_after_the_cursor(
    llama_server_url: str,
) -> None:
    backend = LlamaCppBackend(llama_server_url)
    off = WeaveSettings(strategy="chain", cutoff=0.2, after_cursor=False)
    try:
        plain = await weave(backend, STORY, off, fold=True)
        first = plain.beams[0].text.strip()
        result = await weave(backend, STORY, off, fold=True, after=first)
    finally:
        await backend.aclose()
    assert [b.text for b in result.beams] == [b.text for b in plain.beams]
    assert result.stats.requests == plain.stats.requests  # nothing scored
    assert not any(b.lead or b.repeats_next for b in result.beams)


@pytest.mark.parametrize("stub_name", ["vllm_stub", "ollama_stub", "openai_chat_stub"])
async def test_a_backend_that_cannot_score_ranks_without_it(
    request: pytest.FixtureRequest, llama_server_url: str, stub_name: str
) -> None:
    stub = request.getfixturevalue(stub_name)
    backend = create_backend(BackendSettings(url=stub.url))
    # a chat model answers the story as a message: the chat fixture's own settings
    settings = CHAT_WEAVE if stub_name == "openai_chat_stub" else EXACT
    try:
        plain = await weave(backend, STORY, settings, fold=True)
        after = plain.beams[0].text.strip()
        result = await weave(backend, STORY, settings, fold=True, after=after)
    finally:
        await backend.aclose()
    assert not any(b.lead for b in result.beams)  # no score: no ranking by it
    # no scoring: a ranking by the lead would add one request per finished beam; 4 requests
    # in flight may end a weave a few requests apart from run to run
    # (here 14 beams on the completion fixtures, 238 on the chat one)
    assert len(result.beams) > 4
    assert result.stats.requests <= plain.stats.requests + 3
    # the demotion is a rule on text: it still applies
    assert next(b for b in result.beams if b.text == plain.beams[0].text).repeats_next


def test_the_lead_is_the_next_words_as_they_follow_the_beam() -> None:
    assert lead_text(" there was", "a little girl walked") == " a little girl"
