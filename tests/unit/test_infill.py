"""Weaving with the text after the cursor in view (issue 20, part 4), without a server: every
prompt of a weave carries it as its suffix, the step memory keeps answers per suffix, and the
llama.cpp backend's ``/infill`` body and its once-per-server "no FIM" memory
(lloom_lsp/backends/infill.py).  Against the real server:
tests/backends/test_infill_real_server.py."""

from __future__ import annotations

from collections.abc import AsyncIterator

import attrs
import pytest
from scripted import StreamingSource

from lloom_lsp.backends.errors import (
    BackendAuthError,
    BackendContextError,
    BackendError,
    BackendHTTPError,
    BackendProtocolError,
    BackendUnavailable,
)
from lloom_lsp.backends.infill import InfillSupport, infill_body
from lloom_lsp.backends.llamacpp import completion_body
from lloom_lsp.config import WeaveSettings
from lloom_lsp.engine import Continuation, Prompt, Step, Weave, split_story
from lloom_lsp.engine.memory import StepMemory, remembering

WORDS = {1: b" red", 2: b" blue", 3: b" sky", 7: b"."}
STORY = "The colour was"
AFTER = " and the sea was calm"
SETTINGS = WeaveSettings(
    strategy="chain", max_depth=3, top_n=3, cutoff=0.25, stop_strings=(".",), max_suggestions=50
)
URL = "http://127.0.0.1:1"


def table(ids: tuple[int, ...]) -> list[tuple[int, float]]:
    if ids and ids[-1] == 7:
        return [(7, 1.0)]
    return [(1 + len(ids) % 2, 0.5), (3, 0.3), (7, 0.2)]


class _Recording(StreamingSource):
    """The scripted source, keeping every prompt it was sent."""

    def __init__(self) -> None:
        super().__init__(WORDS, table)
        self.prompts: list[Prompt] = []

    async def continue_prompt(self, prompt: Prompt, max_tokens: int, top_n: int) -> Continuation:
        self.prompts.append(prompt)
        return await super().continue_prompt(prompt, max_tokens, top_n)

    def stream_steps(self, prompt: Prompt, max_tokens: int, top_n: int) -> AsyncIterator[Step]:
        self.prompts.append(prompt)
        return super().stream_steps(prompt, max_tokens, top_n)


async def test_every_prompt_of_a_weave_carries_the_text_after_the_cursor() -> None:
    source = _Recording()
    result = await Weave(source, STORY, SETTINGS, after=AFTER).run()
    assert result.beams and source.prompts
    assert {p.suffix for p in source.prompts} == {AFTER}
    off = _Recording()
    await Weave(off, STORY, attrs.evolve(SETTINGS, after_cursor=False), after=AFTER).run()
    assert off.prompts and {p.suffix for p in off.prompts} == {""}


async def test_the_memory_answers_a_weave_only_with_the_suffix_it_was_asked_with() -> None:
    source = _Recording()
    memory = StepMemory()
    await Weave(remembering(source, memory), STORY, SETTINGS, after=AFTER).run()
    asked = len(source.prompts)
    again = await Weave(remembering(source, memory), STORY, SETTINGS, after=AFTER).run()
    assert len(source.prompts) == asked and again.stats.requests == 0
    other = await Weave(remembering(source, memory), STORY, SETTINGS, after=" then").run()
    assert other.stats.requests > 0  # a model that fills in the middle answers otherwise
    assert {p.suffix for p in source.prompts[asked:]} == {" then"}


async def test_a_known_path_is_a_root_only_with_its_own_suffix() -> None:
    source = _Recording()
    memory = StepMemory()
    first = await Weave(remembering(source, memory), STORY, SETTINGS, after=AFTER).run()
    beam = next(b for b in first.beams if len(b.tokens) >= 2)
    story = split_story(STORY + "".join(t.text for t in beam.tokens[:2]))[0]
    root = memory.root_for(story, AFTER)
    assert root is not None and root.suffix == AFTER
    assert root.token_ids == tuple(t.token_id for t in beam.tokens[:2])
    assert memory.root_for(story) is None and memory.root_for(story, " then") is None


def test_the_infill_body_is_the_completion_body_with_the_prompt_as_prefix() -> None:
    prompt = Prompt("Once upon a time,", (12, 34), b" x", suffix=AFTER)
    completion = completion_body(prompt, 4, 5, stream=True, slot=1)
    body = infill_body(completion, prompt)
    assert body["input_prefix"] == ["Once upon a time,", 12, 34]  # the beam by its ids
    assert body["input_suffix"] == AFTER and "prompt" not in body
    assert {k: v for k, v in body.items() if not k.startswith("input_")} == {
        k: v for k, v in completion.items() if k != "prompt"
    }


@pytest.mark.parametrize("status", [404, 501])
def test_a_server_that_does_not_fill_in_the_middle_is_asked_once(status: int) -> None:
    support = InfillSupport()
    prompt = Prompt("story", suffix=AFTER)
    assert support.wanted(prompt) and not support.wanted(Prompt("story", suffix="  \n"))
    refusal = BackendHTTPError(URL, status, '{"error":{"message":"Infill is not supported"}}')
    assert support.refused(refusal, URL)
    assert support.supported is False and not support.wanted(prompt)
    support.forget()  # the server restarted, maybe with another model
    assert support.wanted(prompt)


@pytest.mark.parametrize(
    "error",
    [
        BackendHTTPError(URL, 400, '{"error":{"message":"\\"input_prefix\\" is required"}}'),
        BackendProtocolError(URL, "the stream carries no token probabilities"),
    ],
)
def test_an_older_servers_refusal_of_the_first_infill_is_a_no(error: BackendError) -> None:
    support = InfillSupport()
    assert support.refused(error, URL) and support.supported is False


@pytest.mark.parametrize(
    "error",
    [
        BackendHTTPError(URL, 500, "boom"),
        BackendUnavailable(URL, "refused"),
        BackendAuthError(URL, 401, "no key"),
        BackendContextError(URL, 400, "exceeds the context size", 2048, 4000),
    ],
)
def test_failures_completion_would_share_are_no_answer_about_fim(error: BackendError) -> None:
    support = InfillSupport()
    assert not support.refused(error, URL)
    assert support.supported is None
    support.answered(URL)
    assert support.supported is True
    # once it filled in the middle, only a 404 or 501 says otherwise
    assert not support.refused(BackendHTTPError(URL, 400, "bad"), URL)
    assert support.supported is True
