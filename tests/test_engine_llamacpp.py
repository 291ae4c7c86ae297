"""The engine against the real llama-server: LLooM's rules, chain == token, concurrency,
cancellation and UTF-8."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import attrs
import httpx
import pytest

from lloom_lsp.backends import LlamaCppBackend, llamacpp
from lloom_lsp.backends.process import counters
from lloom_lsp.config import WeaveSettings
from lloom_lsp.engine import Continuation, Prompt, split_story, weave

PROMPTS = ["Once upon a time,", "The old man", "She opened the door and", "The cat sat"]


class Counting:
    """Wraps the real backend to count requests in flight and cancellations."""

    def __init__(self, inner: LlamaCppBackend) -> None:
        self.inner = inner
        self.in_flight = 0
        self.max_in_flight = 0
        self.cancelled = 0
        self.requests = 0

    async def continue_prompt(self, prompt: Prompt, max_tokens: int, top_n: int) -> Continuation:
        self.requests += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self.inner.continue_prompt(prompt, max_tokens, top_n)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.in_flight -= 1


@pytest.fixture
async def backend(llama_server_url: str) -> AsyncIterator[LlamaCppBackend]:
    b = LlamaCppBackend(llama_server_url)
    yield b
    await b.aclose()


def settings(**kw: object) -> WeaveSettings:
    """LLooM's rules (``chain``), exact on the bigram model; ``best`` has tests of its own."""
    return attrs.evolve(WeaveSettings(strategy="chain"), **kw)  # type: ignore[arg-type]


CONFIGS = [
    {},
    {"max_depth": 6, "cutoff": 0.1},
    {"auto_stop": False, "max_depth": 5, "split_limit": 0, "cutoff": 0.15},
    {"multiplier": 0.9, "max_depth": 8, "top_n": 5},
    {"rank": "joint", "stop_strings": (".",), "max_depth": 10},
]


@pytest.mark.parametrize("config", CONFIGS)
async def test_chain_and_token_agree_with_fewer_requests(
    backend: LlamaCppBackend, config: dict
) -> None:
    base = settings(max_suggestions=1000, **config)
    total_token = total_chain = 0
    for prompt in PROMPTS:
        token = await weave(backend, prompt, attrs.evolve(base, strategy="token"))
        chain = await weave(backend, prompt, attrs.evolve(base, strategy="chain"))
        assert [(b.text, round(b.score, 6)) for b in chain.beams] == [
            (b.text, round(b.score, 6)) for b in token.beams
        ], prompt
        total_token += token.stats.requests
        total_chain += chain.stats.requests
    assert total_chain < total_token


async def test_max_depth_is_exact(backend: LlamaCppBackend) -> None:
    result = await weave(backend, "Once upon a time,", settings(auto_stop=False, max_depth=5))
    assert result.beams
    assert all(len(b.tokens) == 5 or b.finish == "eos" for b in result.beams)


async def test_auto_stop_ends_at_a_stop_string(backend: LlamaCppBackend) -> None:
    result = await weave(backend, "Once upon a time,", settings(max_depth=20))
    stopped = [b for b in result.beams if b.finish == "stop"]
    assert stopped
    for beam in stopped:
        assert beam.text.endswith((".", ","))
        assert beam.text[:-1].strip(" .,")  # some other text before the stop


async def settled_counters(url: str) -> dict[str, float]:
    """The server's counters once nothing is generating: a stream an earlier test closed
    may still be decoding the token the server had begun."""
    last = await counters(url)
    for _ in range(40):
        await asyncio.sleep(0.05)
        now = await counters(url)
        if now["tokens_predicted_total"] == last["tokens_predicted_total"]:
            return now
        last = now
    return last


async def test_the_server_stops_a_chain_at_its_stop_string(
    backend: LlamaCppBackend, llama_server_url: str
) -> None:
    """A beam with text asks llama-server to stop at "." and ",": the stream ends with the
    stopping token, spelt in full, and the server generates nothing after it (its own
    counters, which count what a closed stream cost too).  Without, it runs on to the limit."""
    for stop, expected in (((".", ","), 2), ((), 24)):
        before = await settled_counters(llama_server_url)
        steps = [s async for s in backend.stream_steps(Prompt("The old man", stop=stop), 24, 3)]
        after = await counters(llama_server_url)
        assert len(steps) == expected
        assert after["tokens_predicted_total"] - before["tokens_predicted_total"] == expected
        assert b"".join(s.chosen.data for s in steps).startswith(b" said,")
        assert not any(s.chosen.is_end for s in steps)


async def test_a_weave_is_the_same_whether_the_server_or_the_engine_stops_a_chain(
    backend: LlamaCppBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    stopped = [
        await weave(backend, p, settings(max_depth=12, cutoff=0.2, max_suggestions=1000))
        for p in PROMPTS
    ]
    monkeypatch.setattr(llamacpp, "server_stops", lambda stops: [])
    engine_only = [
        await weave(backend, p, settings(max_depth=12, cutoff=0.2, max_suggestions=1000))
        for p in PROMPTS
    ]
    for ours, theirs in zip(stopped, engine_only):  # the same beams (in finishing order)
        assert sorted((b.text, b.finish, round(b.score, 6)) for b in ours.beams) == sorted(
            (b.text, b.finish, round(b.score, 6)) for b in theirs.beams
        )
    finishes = {b.finish for r in stopped for b in r.beams}
    assert "stop" in finishes and "limit" not in finishes  # every beam whole: no race


async def test_split_limit_and_cutoff_widen_and_narrow(backend: LlamaCppBackend) -> None:
    base = settings(auto_stop=False, max_depth=4, max_suggestions=1000)
    narrow = await weave(backend, "The old man", attrs.evolve(base, cutoff=0.5))
    default = await weave(backend, "The old man", base)
    wide = await weave(backend, "The old man", attrs.evolve(base, split_limit=0, cutoff=0.05))
    assert len(narrow.beams) < len(default.beams) < len(wide.beams)


async def test_concurrency_is_bounded_and_used(llama_server_url: str) -> None:
    inner = LlamaCppBackend(llama_server_url)
    source = Counting(inner)
    try:
        await weave(
            source, "Once upon a time,", settings(strategy="token", max_depth=6), concurrency=3
        )
    finally:
        await inner.aclose()
    assert source.max_in_flight == 3


async def test_cancelling_cancels_in_flight_requests(llama_server_url: str) -> None:
    inner = LlamaCppBackend(llama_server_url)
    source = Counting(inner)
    big = settings(
        strategy="token",
        max_depth=200,
        max_suggestions=1000,
        split_limit=0,
        cutoff=0.02,
        auto_stop=False,
    )
    task = asyncio.ensure_future(weave(source, "Once upon a time,", big))
    try:
        while source.requests < 20 or not source.in_flight:
            await asyncio.sleep(0)
        task.cancel()  # no await since the check: those requests are still in flight
        with pytest.raises(asyncio.CancelledError):
            await task
        assert source.cancelled >= 1
        assert source.in_flight == 0
        requests = source.requests
        await asyncio.sleep(0.2)
        assert source.requests == requests  # nothing new was sent after the cancel
    finally:
        await inner.aclose()
    async with httpx.AsyncClient() as client:
        assert (await client.get(llama_server_url + "/health")).status_code == 200


@pytest.mark.parametrize("prompt", ["Le café", "猫 and the 山", "🍎 The moon 🌙", "naïve"])
@pytest.mark.parametrize("depth", [1, 2, 3, 5])
async def test_no_beam_ends_inside_a_utf8_character(
    backend: LlamaCppBackend, prompt: str, depth: int
) -> None:
    result = await weave(
        backend, prompt, settings(auto_stop=False, max_depth=depth, split_limit=0, cutoff=0.05)
    )
    for beam in result.beams:
        assert "\ufffd" not in beam.text
        assert beam.text.encode().decode() == beam.text


async def test_beams_start_where_the_story_ends(backend: LlamaCppBackend) -> None:
    result = await weave(backend, "Once upon a time, ", settings())
    assert result.prompt == "Once upon a time,"
    assert result.held == " "
    for beam in result.beams:
        if beam.text.startswith(" "):
            assert beam.insert_text == beam.text[1:]


async def test_a_long_story_goes_as_token_ids_and_weaves_the_same(
    llama_server_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # llama-server tokenises a prompt's text on every request; a long story is tokenised
    # once (by the warm-up, here) and sent as ids: the same tokens, so the same cache and
    # beams as the text.
    story = " ".join(
        ["The keeper climbed the stairs and lit the lamp, as he did every night."] * 40
    )
    assert len(story) >= llamacpp.STORY_IDS_CHARS
    sent: list[object] = []

    async def record(request: httpx.Request) -> None:
        if request.url.path == "/completion" and b'"n_probs"' in request.content:
            sent.append(json.loads(request.content)["prompt"])

    by_ids = LlamaCppBackend(llama_server_url)
    by_ids.http.client.event_hooks["request"].append(record)
    try:
        await by_ids.warm(split_story(story)[0])  # every slot holds the story, by its text
        first = await weave(by_ids, story, settings(max_depth=6))
        second = await weave(by_ids, story, settings(max_depth=6))
    finally:
        await by_ids.aclose()
    monkeypatch.setattr(llamacpp, "STORY_IDS_CHARS", 10**9)
    by_text = LlamaCppBackend(llama_server_url)
    try:
        reference = await weave(by_text, story, settings(max_depth=6))
    finally:
        await by_text.aclose()
    # the warm-up tokenised the story: every request of the weave, its first included, is ids
    assert sent and all(isinstance(p, list) and all(isinstance(t, int) for t in p) for p in sent)
    texts = [b.text for b in reference.beams]
    assert [b.text for b in first.beams] == [b.text for b in second.beams] == texts
    # the ids are the tokens the slots hold: only the beams' own tokens are evaluated
    assert second.stats.prompt_tokens <= second.stats.requests * 6
