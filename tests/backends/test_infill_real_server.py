"""Weaving with the text after the cursor in view (issue 20, part 4): llama-server's ``/infill``
on the FIM variant of the bigram test model, and the fall back to ``/completion`` on the
default test model, which has no FIM tokens (the server answers 501).

The bigram model makes ``/infill`` exact: the server generates the middle after its
``FIM_MID`` token, so the first step of every ``/infill`` answer is that token's row of the
table (a lone space: "One", "A", "N" ...), where ``/completion`` gives the row of the
prompt's last token."""

from __future__ import annotations

import httpx
import pytest

from lloom_lsp.backends import LlamaCppBackend
from lloom_lsp.config import WeaveSettings
from lloom_lsp.engine import Prompt, weave
from lloom_lsp.engine.source import Step
from lloom_lsp.testmodel import FIM_TOKEN_IDS, train

STORY = "Once upon a time,"
AFTER = " the king was sad"
#: LLooM's rules at its original cutoff: a few beams, the same on every run.
EXACT = WeaveSettings(strategy="chain", cutoff=0.2)


class _Recording(httpx.AsyncBaseTransport):
    """The real transport, noting the path of every request."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.paths: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def _row_of(step: Step, token_id: int) -> None:
    """``step``'s alternatives are the bigram table's row after ``token_id``, exactly."""
    probs = train().next_probs(token_id)
    top = sorted(range(len(probs)), key=lambda j: -probs[j])[: len(step.top)]
    assert {c.token_id for c in step.top} == set(top)
    for cand in step.top:
        assert cand.token_id is not None
        assert cand.prob == pytest.approx(probs[cand.token_id], rel=1e-3, abs=1e-6)


async def test_a_prompt_with_a_suffix_goes_to_infill_where_the_model_fills_in_the_middle(
    fim_llama_server_url: str,
) -> None:
    recording = _Recording()
    backend = LlamaCppBackend(fim_llama_server_url, transport=recording)
    try:
        middle = await backend.continue_prompt(Prompt(STORY, suffix=AFTER), 2, 3)
        plain = await backend.continue_prompt(Prompt(STORY), 2, 3)
        info = await backend.check()
    finally:
        await backend.aclose()
    assert backend.infill.supported is True
    assert recording.paths.count("/infill") == 2  # the weave's, and lloom-lsp check's
    assert "fills in the middle" in info.detail
    _row_of(middle.steps[0], FIM_TOKEN_IDS["mid"])  # the middle starts after FIM_MID
    _row_of(plain.steps[0], train().tokenizer.encode(STORY)[-1])  # the story's last token


async def test_a_beam_goes_to_infill_by_its_token_ids_after_the_story(
    fim_llama_server_url: str,
) -> None:
    tokenizer = train().tokenizer
    beam = tuple(tokenizer.encode(" there was a"))
    prompt = Prompt(STORY, beam, suffix=AFTER)
    backend = LlamaCppBackend(fim_llama_server_url)
    try:
        steps = [s async for s in backend.stream_steps(prompt, 2, 3)]
        # the same body, its answer read whole: how many tokens the server put together
        body = backend._body(prompt, 1, 1, stream=False, slot=None, path="/infill")
        answer = await backend.http.post_json("/infill", body)
    finally:
        await backend.aclose()
    assert len(steps) == 2
    _row_of(steps[0], FIM_TOKEN_IDS["mid"])
    assert body["input_prefix"] == [STORY, *beam] and body["input_suffix"] == AFTER
    # [FIM_PRE] story beam [FIM_SUF] suffix [FIM_MID]: the beam's ids are in the prompt
    parts = (tokenizer.encode(STORY), beam, tokenizer.encode(AFTER))
    assert answer["tokens_evaluated"] == sum(map(len, parts)) + 3


async def test_a_weave_with_the_text_after_the_cursor_fills_in_the_middle(
    fim_llama_server_url: str,
) -> None:
    backend = LlamaCppBackend(fim_llama_server_url)
    try:
        middle = await weave(backend, STORY, EXACT, after=AFTER)
        plain = await weave(backend, STORY, EXACT)
    finally:
        await backend.aclose()
    row = train().next_probs(FIM_TOKEN_IDS["mid"])
    assert middle.beams and plain.beams
    # every beam starts with one of FIM_MID's likely tokens: the weave asked /infill
    assert all(row[b.tokens[0].token_id] >= EXACT.cutoff for b in middle.beams if b.tokens)
    assert {b.text for b in middle.beams} != {b.text for b in plain.beams}
    # the beams were woven with the next words in view: no lead requests after them
    assert not any(b.lead for b in middle.beams)


async def test_a_model_without_fim_tokens_weaves_as_before_and_is_asked_once(
    llama_server_url: str,
) -> None:
    recording = _Recording()
    backend = LlamaCppBackend(llama_server_url, transport=recording)
    try:
        first = [s async for s in backend.stream_steps(Prompt(STORY, suffix=AFTER), 3, 3)]
        plain = [s async for s in backend.stream_steps(Prompt(STORY), 3, 3)]
        again = await backend.continue_prompt(Prompt(STORY, suffix=AFTER), 3, 3)
        result = await weave(backend, STORY + " ", EXACT, after=AFTER)
        info = await backend.check()
    finally:
        await backend.aclose()
    assert backend.infill.supported is False
    assert "no fill-in-the-middle" in info.detail
    assert recording.paths.count("/infill") == 1  # the 501, learnt once
    assert [s.chosen.token_id for s in first] == [s.chosen.token_id for s in plain]
    assert [s.chosen.token_id for s in again.steps] == [s.chosen.token_id for s in plain]
    for step, same in zip(first, plain):
        assert [c.prob for c in step.top] == pytest.approx([c.prob for c in same.top])
    assert result.beams and all(b.lead for b in result.beams)  # ranked by the lead instead
