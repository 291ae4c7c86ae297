"""What follows the cursor (issue 20): which text after the cursor a weave reads, beams
that repeat it demoted, and beams ranked by how well they lead into it where the source can
score given text.  The scoring source here is a table; the real llama-server's scoring is
tested in tests/backends/test_suffix_real_server.py and on Gemma in tests/realmodel."""

from __future__ import annotations

import asyncio
import math

import pytest
from scripted import ScriptedSource

from lloom_lsp.config import WeaveSettings
from lloom_lsp.engine.beam import NOTE_REPEATS_NEXT, Beam, BeamToken, rank_beams
from lloom_lsp.engine.prose import repeats_next
from lloom_lsp.engine.source import Prompt
from lloom_lsp.engine.suffix import after_cursor, lead_text, score_leads
from lloom_lsp.engine.weave import Weave


def beam(text: str, score: float, **kw: object) -> Beam:
    return Beam(
        text=text,
        insert_text=text,
        tokens=(BeamToken(text, 0.5, 7),),
        score=score,
        joint=score / 10,
        mean_logprob=math.log(score / 10),
        finish="stop",
        **kw,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("text", "after", "expected"),
    [
        (" the door.", "the door opened slowly", True),  # begins with the next words
        (" The", "the door", True),  # a one-word beam that is the next word
        (" to the door of the house.", "toward the door, and", True),  # holds "the door"
        (" slowly, the door opened.", "the door opened and", True),
        (" “The door", "the door opened", True),  # quotes and case aside
        (" in the middle of the road.", "of the house was dark", False),  # "of the" is too common
        (" and walked away.", "toward the door", False),
        (" a cat", "the door", False),
        (" anything", "", False),
    ],
)
def test_a_beam_repeats_the_next_words(text: str, after: str, expected: bool) -> None:
    assert repeats_next(text, after) is expected


def test_the_text_after_the_cursor_ends_with_its_paragraph() -> None:
    assert after_cursor(" to the door.\n\nNext paragraph.") == " to the door."
    assert after_cursor(" to the door.\r\n\r\nNext.") == " to the door."
    assert after_cursor("\n\nA new paragraph after the cursor.") == ""  # the cursor ends one
    assert after_cursor("   ") == ""
    long = "word " * 200
    cut = after_cursor(long, max_chars=42)
    assert len(cut) <= 42 and cut.endswith("word") and long.startswith(cut)


def test_the_lead_joins_the_beam_as_a_writer_would() -> None:
    after = "to the door, and he left"
    assert lead_text(" walked", after) == " to the door,"  # the writer adds the space
    assert lead_text(" walked\n", after) == "to the door,"
    assert lead_text(" walked", ", and then he") == ", and then"
    assert lead_text(" said,", after) == " to the door,"
    assert lead_text(' "Go,"', after) == " to the door,"  # a quote closes; a bracket opens
    assert lead_text(" (", after) == "to the door,"
    assert lead_text(" walked", " to the door") == " to the door"


def test_repeats_of_the_next_words_are_demoted_and_say_so() -> None:
    beams = [beam(" the door opened.", 3.0), beam(" and waited.", 1.0)]
    ranked = rank_beams(beams, "lloom", story="He stood there", repeats="demote", after=" the door")
    assert [b.text for b in ranked] == [" and waited.", " the door opened."]
    assert ranked[1].note == NOTE_REPEATS_NEXT and ranked[1].repeats_next
    dropped = rank_beams(beams, "lloom", story="He stood", repeats="drop", after=" the door")
    assert [b.text for b in dropped] == [" and waited."]
    kept = rank_beams(beams, "lloom", story="He stood", repeats="keep", after=" the door")
    assert [b.text for b in kept] == [" the door opened.", " and waited."]


@pytest.mark.parametrize("rank", ["lloom", "joint", "mean", "norm"])
def test_a_lead_into_the_next_words_can_outrank_a_better_beam(rank: str) -> None:
    better = beam(" and sat down.", 0.9, lead=(math.log(0.01),))
    leads = beam(" and turned.", 0.8, lead=(math.log(0.9),))
    ranked = rank_beams([better, leads], rank)
    assert [b.text for b in ranked] == [" and turned.", " and sat down."]
    # without leads, the order is the beams' own
    plain = rank_beams([beam(" and sat down.", 0.9), beam(" and turned.", 0.8)], rank)
    assert [b.text for b in plain] == [" and sat down.", " and turned."]


class _Scorer:
    def __init__(self, table: dict[bytes, tuple[float, ...] | None]) -> None:
        self.table = table
        self.asked: list[tuple[Prompt, str, int]] = []

    async def suffix_logprobs(
        self, prompt: Prompt, text: str, max_tokens: int
    ) -> tuple[float, ...] | None:
        self.asked.append((prompt, text, max_tokens))
        return self.table.get(prompt.tail)


def test_leads_are_scored_one_request_per_beam_with_the_beam_in_the_prompt() -> None:
    scorer = _Scorer({b" a": (-1.0,), b" b": (-2.0,)})
    beams = [beam(" a", 1.0), beam(" b", 1.0)]

    def prompt_of(b: Beam) -> Prompt:
        return Prompt("story", (7,), b.text.encode())

    scored = asyncio.run(
        score_leads(scorer, beams, prompt_of, " next words go", asyncio.Semaphore(2))
    )
    assert [b.lead for b in scored] == [(-1.0,), (-2.0,)]
    assert [(p.tail, text) for p, text, _ in scorer.asked] == [
        (b" a", " next words go"),
        (b" b", " next words go"),
    ]


def test_one_unscored_beam_leaves_every_beam_unscored() -> None:
    scorer = _Scorer({b" a": (-1.0,)})  # the server failed for " b"
    beams = [beam(" a", 1.0), beam(" b", 1.0)]
    scored = asyncio.run(
        score_leads(
            scorer, beams, lambda b: Prompt("s", (), b.text.encode()), "x y", asyncio.Semaphore(1)
        )
    )
    assert [b.lead for b in scored] == [(), ()]


# A scripted model: after the story, " the" (1) 0.6 or " a" (2) 0.4; then " door" (3), then ".".
_VOCAB = {1: b" the", 2: b" a", 3: b" door", 4: b"."}


def _table(ids: tuple[int, ...]) -> list[tuple[int, float]]:
    if not ids:
        return [(1, 0.6), (2, 0.4)]
    if len(ids) == 1:
        return [(3, 1.0)]
    return [(4, 1.0)]


class _ScoringScripted(ScriptedSource):
    """Scores the next words as improbable after a beam that begins with " the"."""

    def __init__(self) -> None:
        super().__init__(_VOCAB, _table)
        self.scored: list[tuple[int, ...]] = []

    async def suffix_logprobs(
        self, prompt: Prompt, text: str, max_tokens: int
    ) -> tuple[float, ...] | None:
        self.scored.append(prompt.token_ids)
        return (math.log(0.01),) if prompt.token_ids[:1] == (1,) else (math.log(0.5),)


def _weave(source: ScriptedSource, after: str, **settings: object) -> list[str]:
    weave_settings = WeaveSettings(strategy="chain", stop_strings=(".",), **settings)  # type: ignore[arg-type]
    result = asyncio.run(Weave(source, "He opened", weave_settings, after=after).run())
    return [b.text for b in result.beams]


def test_a_weave_ranks_by_the_lead_into_the_text_after_the_cursor() -> None:
    assert _weave(_ScoringScripted(), "") == [" the door.", " a door."]
    source = _ScoringScripted()
    assert _weave(source, " and went in.") == [" a door.", " the door."]
    assert sorted(source.scored) == [(1, 3, 4), (2, 3, 4)]  # continued by token ids


def test_a_weave_demotes_a_beam_that_repeats_the_next_words() -> None:
    assert _weave(ScriptedSource(_VOCAB, _table), " the door and went in") == [
        " a door.",
        " the door.",
    ]


def test_after_cursor_off_reads_nothing_after_the_cursor() -> None:
    source = _ScoringScripted()
    assert _weave(source, " the door and went in.", after_cursor=False) == [
        " the door.",
        " a door.",
    ]
    assert source.scored == []
