"""Continue without starting over (lloom_lsp/engine/memory.py): steps answered once are
replayed, never asked again, and a replayed weave is the weave the backend would give."""

from __future__ import annotations

import pytest
from scripted import ScriptedSource, StreamingSource

from lloom_lsp.config import WeaveSettings
from lloom_lsp.engine import Weave, split_story
from lloom_lsp.engine.memory import StepMemory, remembering

WORDS = {1: b" red", 2: b" blue", 3: b" green", 4: b" sky", 5: b" sea", 7: b"."}
STORY = "The colour was"


def table(ids: tuple[int, ...]) -> list[tuple[int, float]]:
    """Depends on the whole context, so a replay that lost its place would show."""
    if ids and ids[-1] == 7:
        return [(7, 1.0)]
    if len(ids) >= 3:
        return [(7, 0.7), (4, 0.2), (5, 0.1)]
    shift = sum(ids) % 3
    return [(1 + shift, 0.5), (1 + (shift + 1) % 3, 0.3), (4, 0.2)]


def settings(strategy: str) -> WeaveSettings:
    return WeaveSettings(
        strategy=strategy,  # type: ignore[arg-type]
        max_depth=4,
        top_n=3,
        cutoff=0.25,
        max_suggestions=200,  # never binds: the order chains finish in cannot matter
        stop_strings=(".",),
    )


def texts(result: object) -> list[str]:
    return [b.text for b in result.beams]  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", [ScriptedSource, StreamingSource])
@pytest.mark.parametrize("strategy", ["chain", "token", "best"])
async def test_the_same_story_again_sends_no_request(kind: type, strategy: str) -> None:
    source = kind(WORDS, table)
    memory = StepMemory()
    first = await Weave(remembering(source, memory), STORY, settings(strategy)).run()
    asked = len(source.requests)
    assert asked > 0 and first.beams
    again = await Weave(remembering(source, memory), STORY, settings(strategy)).run()
    assert len(source.requests) == asked  # every step was known
    assert texts(again) == texts(first)
    assert again.stats.requests == 0 and again.stats.saved_requests > 0
    assert again.stats.reused_tokens > 0 and again.stats.decoded_tokens == 0


@pytest.mark.parametrize("kind", [ScriptedSource, StreamingSource])
async def test_after_an_accepted_beam_only_the_frontier_is_asked(kind: type) -> None:
    source = kind(WORDS, table)
    memory = StepMemory()
    first = await Weave(remembering(source, memory), STORY, settings("chain")).run()
    # accept the first two tokens of a beam that went on (the document now has them)
    beam = next(b for b in first.beams if len(b.tokens) >= 3)
    accepted = "".join(t.text for t in beam.tokens[:2])
    story = STORY + accepted
    root = memory.root_for(split_story(story)[0])
    assert root is not None and root.text == STORY
    assert root.token_ids == tuple(t.token_id for t in beam.tokens[:2])
    before = len(source.requests)
    onward = await Weave(remembering(source, memory), story, settings("chain"), root=root).run()
    reused = len(source.requests) - before
    # the same weave asked of the backend alone, continuing the same token ids
    plain_source = kind(WORDS, table)
    plain = await Weave(plain_source, story, settings("chain"), root=root).run()
    assert texts(onward) == texts(plain)
    # the backend generated only what was not known, in no more requests
    assert onward.stats.decoded_tokens < plain.stats.decoded_tokens
    assert reused <= len(plain_source.requests)
    assert onward.stats.reused_tokens > 0


def test_a_story_that_is_no_known_path_has_no_root() -> None:
    memory = StepMemory()
    assert memory.root_for("anything") is None
