"""Beams that read as prose (issue 22): natural endings first, the order the scores shown
give or a note saying why not, near-duplicates folded, and never more than maxSuggestions."""

from __future__ import annotations

import itertools

import pytest
from lsprotocol import types

from lloom_lsp.engine.beam import (
    NOTE_CUT,
    NOTE_MID_PHRASE,
    NOTE_REPEATS,
    Beam,
    BeamToken,
    rank_beams,
)
from lloom_lsp.engine.prose import ends_naturally, near_duplicate_word
from lloom_lsp.server.convert import beam_detail, to_lsp_token_hover, token_details
from lloom_lsp.server.woven_spans import TokenSpan
from lloom_lsp.server.woven_tokens import Alternative


def beam(text: str, score: float, finish: str = "depth", **kw: object) -> Beam:
    return Beam(
        text=text,
        insert_text=text,
        tokens=(BeamToken(text, 0.5, None),),
        score=score,
        joint=score / 10,
        mean_logprob=-1.0,
        finish=finish,
        **kw,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    "text",
    [" in a cave.", " in the year 2000,", ' he said. "Go!"', " (or not.)", " and then\n", " so…"],
)
def test_a_sentence_or_clause_mark_or_a_line_break_is_a_natural_end(text: str) -> None:
    assert ends_naturally(text)


@pytest.mark.parametrize(
    "text",
    [" the boat had ever seen a", ' He said, "I', ' He said, "Go.', " “Go.", " (or maybe not."],
)
def test_mid_phrase_and_an_open_quote_are_not(text: str) -> None:
    assert not ends_naturally(text)


def test_the_end_of_sequence_is_natural_unless_a_quote_is_open() -> None:
    assert ends_naturally(" the end", "eos")
    assert not ends_naturally(' "the end', "eos")


def test_tiers_put_natural_endings_first_and_every_demoted_beam_says_why() -> None:
    story = "The cat sat on the mat and looked out of the window."
    beams = [
        beam(" had ever seen a", 4.23),
        beam(" sat on the mat and looked out of the", 5.0),
        beam(" in a cave.", 0.18),
        beam(" the end", 9.0, finish="cut"),
        beam(" at noon.", 1.5),
    ]
    ranked = rank_beams(beams, "lloom", story=story, repeats="demote")
    assert [b.text for b in ranked] == [
        " at noon.",
        " in a cave.",
        " had ever seen a",
        " sat on the mat and looked out of the",
        " the end",
    ]
    assert [b.note for b in ranked] == ["", "", NOTE_MID_PHRASE, NOTE_REPEATS, NOTE_CUT]
    # Wherever a beam sits below one scored lower, its note says why.
    for above, below in itertools.pairwise(ranked):
        assert below.score <= above.score or below.tier > above.tier
        if below.tier > above.tier:
            assert below.note
    assert [b.to_dict()["note"] for b in ranked][2] == NOTE_MID_PHRASE
    assert beam_detail(ranked[3]).endswith("· repeats the story")


def test_the_count_respects_the_limit_after_cut_beams_are_added() -> None:
    beams = [beam(f" word{i}.", 1.0 + i) for i in range(25)]
    beams += [beam(f" cut{i}", 9.0, finish="cut") for i in range(3)]
    ranked = rank_beams(beams, "lloom", limit=25)
    assert len(ranked) == 25
    assert all(b.finish != "cut" for b in ranked)
    assert rank_beams(beams, "lloom", limit=0) == []


def test_near_duplicates_differ_in_one_word_and_share_at_least_two() -> None:
    assert near_duplicate_word("in the year 2000,".split(), "in the year 2020,".split()) == 3
    assert near_duplicate_word("of the desert".split(), "of the ocean".split()) == 2
    assert near_duplicate_word("a dog".split(), "a cat".split()) is None
    assert near_duplicate_word("in the year 2000,".split(), "in a year 2020,".split()) is None
    assert near_duplicate_word("in the year".split(), "in the year 2020,".split()) is None


def test_near_duplicates_are_folded_into_the_best_as_variants() -> None:
    beams = [
        beam(" in the year 2000,", 3.0),
        beam(" in the year 2020,", 2.9),
        beam(" in the year 2021,", 2.8),
        beam(" in the year 2010,", 2.7),
        beam(" in a small town,", 2.0),
        beam(" there was a dog.", 1.0),
    ]
    folded = rank_beams(beams, "lloom", fold=True)
    texts = [b.text for b in folded]
    assert texts == [" in the year 2000,", " in a small town,", " there was a dog."]
    assert folded[0].variants == ("2020,", "2021,", "2010,")
    assert folded[0].to_dict()["variants"] == ["2020,", "2021,", "2010,"]
    assert "also 2020,, 2021,, 2010," in beam_detail(folded[0])
    assert len(rank_beams(beams, "lloom")) == 6  # without fold, every beam


def test_token_details_read_as_the_tokens_not_as_escapes() -> None:
    digits = Beam(
        text='20\n\n"',
        insert_text='20\n\n"',
        tokens=(BeamToken("2", 0.56, 1), BeamToken("0", 0.71, 2), BeamToken('\n\n"', 0.93, 3)),
        score=2.2,
        joint=0.37,
        mean_logprob=-0.3,
        finish="depth",
    )
    assert token_details(digits) == '“2” 56% · “0” 71% · “⏎⏎"” 93%'


def test_hover_lists_the_alternatives_and_is_plain_text_where_asked() -> None:
    span = TokenSpan(
        (0, 3),
        (0, 6),
        " wet",
        0.5,
        (
            Alternative(" wet", 0.5, chosen=True),
            Alternative(" cold", 0.3),
            Alternative("", 0.1, True),
        ),
    )
    markdown = to_lsp_token_hover(span).contents
    assert isinstance(markdown, types.MarkupContent) and markdown.kind == "markdown"
    assert "|" not in markdown.value  # no table: Neovim 0.11 shows it raw
    assert "- ` cold` 0.300" in markdown.value and "◀" in markdown.value
    plain = to_lsp_token_hover(span, markdown=False).contents
    assert isinstance(plain, types.MarkupContent) and plain.kind == "plaintext"
    assert "`" not in plain.value and "**" not in plain.value
    assert "“ cold” 0.300" in plain.value and "“⏎ end” 0.100" in plain.value
