"""Beam labels (lloom_lsp.server.labels): short, one line, and different where beams differ."""

from __future__ import annotations

import itertools
import random

import pytest

from lloom_lsp.server.labels import (
    ELIDE_AFTER,
    ELLIPSIS,
    HEAD_CHARS,
    MAX_LABEL,
    beam_labels,
    one_line,
)

STEPS = "She had to climb the hundred and twelve steps to the top."
STAIRS = "She had to climb the hundred and twelve stairs, counting."

#: A weave of the bigram test model ("She opened the door and", cutoff 0.2), as insert_text.
WEAVE = [
    " the cat was a little girl walked to the old man said",
    " the cat was a little girl walked to the cat was a",
    " the cat was a little girl walked up the old man said",
    " the cat was a little girl walked up the cat was a",
    " the cat was a little boy was a little girl walked to",
    " the cat was a little boy was a little girl walked up",
    " the cat was a little boy was a little boy was a",
    " the cat was a little boy was a time,",
    " the cat was a time,",
    " the old man said,",
]


def text_length(label: str) -> int:
    """Characters of beam text in ``label``: ellipses at either end not counted."""
    return len(label.removeprefix(ELLIPSIS).removesuffix(ELLIPSIS))


def assert_distinct(texts: list[str], labels: list[str]) -> None:
    for (a, la), (b, lb) in itertools.combinations(zip(texts, labels), 2):
        if one_line(a) != one_line(b):
            assert la != lb, (a, b)


def test_a_long_shared_start_is_elided_down_to_a_word_of_context() -> None:
    assert beam_labels([STEPS, STAIRS]) == [
        "She had to … twelve steps to the top.",
        "She had to … twelve stairs, counting.",
    ]


def test_beams_that_share_nothing_keep_their_plain_text() -> None:
    texts = ["A door opened.", "Nobody came.", " the wind rose"]
    assert beam_labels(texts) == ["A door opened.", "Nobody came.", "the wind rose"]
    assert beam_labels(["only one beam"]) == ["only one beam"]
    assert beam_labels([]) == []


def test_a_short_shared_start_is_shown_not_elided() -> None:
    texts = ["there was a cat.", "there was a dog."]
    assert beam_labels(texts) == texts
    assert len("there was a ") <= ELIDE_AFTER


def test_a_real_weave_gets_short_distinct_labels() -> None:
    labels = beam_labels(WEAVE)
    assert labels == [
        "the cat was … to the old man said",
        "the cat was … to the cat was a",
        "the cat was … up the old man said",
        "the cat was … up the cat was a",
        "the cat was … walked to",
        "the cat was … walked up",
        "the cat was … little boy was a",
        "the cat was a little boy was a time,",
        "the cat was a time,",
        "the old man said,",
    ]
    assert_distinct(WEAVE, labels)


def test_beams_that_differ_only_in_punctuation_differ_in_their_labels() -> None:
    start = "and so she walked on through the long grey afternoon"
    texts = [start + ".", start + ",", start + "!", start]
    labels = beam_labels(texts)
    assert labels == [
        "and so she … long grey afternoon.",
        "and so she … long grey afternoon,",
        "and so she … long grey afternoon!",
        "and so she … long grey afternoon",
    ]


def test_a_clash_between_labels_is_resolved_with_more_context() -> None:
    # Each pair diverges at "little"/"time", so both pairs would read "…was a little".
    texts = [
        "there was a little girl walked to the cat was a little",
        "there was a little girl walked to the cat was a time",
        "there was a little boy was a little boy was a little",
        "there was a little boy was a little boy was a time",
    ]
    assert beam_labels(texts) == [
        "there was a … cat was a little",
        "there was a … cat was a time",
        "there was a … boy was a little",
        "there was a … boy was a time",
    ]


def test_a_clash_that_context_cannot_resolve_falls_back_to_the_whole_text() -> None:
    # One long word follows two different starts: the end of it reads the same in all, and
    # the heads tell the starts apart.
    word = "x" * 80
    texts = ["a " + word + "1", "a " + word + "2", "b " + word + "1", "b " + word + "2"]
    assert beam_labels(texts) == [f"{t[0]} {ELLIPSIS} {'x' * 24}{t[-1]}" for t in texts]
    assert beam_labels(texts[:2]) == [f"a {ELLIPSIS} {'x' * 24}1", f"a {ELLIPSIS} {'x' * 24}2"]
    # Same head, same end: only the whole text tells them apart.
    texts = ["a b c " + word + " q 1", "a b c " + word + " r 1"]
    labels = beam_labels(texts)
    assert labels[0] != labels[1] and all(len(label) < 100 for label in labels)


def test_multi_line_beams_stay_on_one_line_and_differences_after_a_newline_show() -> None:
    texts = [
        "\nChapter Two\nThe rain had stopped by the time they reached the gate.",
        "\nChapter Two\nThe rain had stopped by noon.",
        "\r\nChapter Two\r\nIt rained.",
        "then\tshe left.\u2028Or not.",
    ]
    labels = beam_labels(texts)
    for label in labels:
        assert label.splitlines() == [label]
    # the head and the divergence fit in the label: nothing is elided
    assert labels[0] == "⏎Chapter Two⏎The rain had stopped by the time they reached…"
    assert labels[1] == "⏎Chapter Two⏎The rain had stopped by noon."
    assert labels[2] == "⏎Chapter Two⏎It rained."
    assert labels[3] == "then⇥she left.⏎Or not."
    assert one_line("\r\nx\r") == "⏎x⏎"


def test_very_long_beams_are_bounded_and_keep_the_divergence() -> None:
    shared = "The caravan wound its way across the desert for many days and nights, "
    a = shared + "until at last the towers of the city rose out of the haze, " * 3
    b = shared + "and the water ran out long before the mountains came into sight, " * 3
    labels = beam_labels([a, b])
    assert labels == [
        "The caravan wound … nights, until at last the towers of the city rose out of the…",
        "The caravan wound … nights, and the water ran out long before the mountains came…",
    ]
    assert all(text_length(label) <= HEAD_CHARS + MAX_LABEL + 3 for label in labels)
    (plain,) = beam_labels(["word " * 40])
    assert plain.endswith(ELLIPSIS) and text_length(plain) <= MAX_LABEL
    assert plain.startswith("word word")


def test_one_very_long_word_cannot_push_the_divergence_out_of_the_label() -> None:
    word = "ab" * 100
    labels = beam_labels([word + "X and more", word + "Y and more"])
    assert labels[0] != labels[1]
    assert all(text_length(label) <= MAX_LABEL for label in labels)
    assert "X" in labels[0] and "Y" in labels[1]


def test_utf8_text_is_cut_between_characters_never_inside_one() -> None:
    start = "Die Straße führte über die Brücke, vorbei an der alten Mühle, "
    texts = [start + "wo Zoë wartete. 🌧️", start + "wo niemand war. 👩‍👧"]
    labels = beam_labels(texts)
    assert labels == [
        "Die Straße führte … Mühle, wo Zoë wartete. 🌧️",
        "Die Straße führte … Mühle, wo niemand war. 👩‍👧",
    ]
    # Decomposed "é" (e + U+0301): a cut that would leave the accent without its e, or
    # the e without its accent, moves before the e.
    accented = "e\u0301" * 40
    for label in beam_labels([accented + "eX", accented + "eY"]):
        head, rest = label.split(f" {ELLIPSIS} ")
        assert head.startswith("e\u0301") and head.endswith("\u0301"), ascii(label)
        assert rest.startswith("e\u0301"), ascii(label)
    (label,) = beam_labels(["a" + "e\u0301" * 50])
    assert label.endswith("e\u0301" + ELLIPSIS), ascii(label)
    # Nor is an emoji cut from the one a zero-width joiner ties it to.
    family = "👩\u200d👧"
    (label,) = beam_labels(["x" * 57 + family + "y" * 30])
    assert label == "x" * 57 + family + ELLIPSIS
    for xs in (58, 59):
        (label,) = beam_labels(["x" * xs + family + "y" * 30])
        assert label == "x" * xs + ELLIPSIS, (xs, label)


def test_labels_depend_on_the_set_of_texts_not_their_order() -> None:
    texts = [*WEAVE, STEPS, STAIRS, WEAVE[0]]
    expected = dict(zip(texts, beam_labels(texts)))
    rng = random.Random(7)
    for _ in range(20):
        shuffled = texts[:]
        rng.shuffle(shuffled)
        assert dict(zip(shuffled, beam_labels(shuffled))) == expected
    # A duplicate shares its twin's label and does not change the others'.
    assert beam_labels(texts) == [*beam_labels(texts[:-1]), expected[WEAVE[0]]]


@pytest.mark.parametrize("seed", range(30))
def test_distinct_texts_always_get_distinct_bounded_one_line_labels(seed: int) -> None:
    rng = random.Random(seed)
    words = ["the", "cat", "was", "a", "little", "girl", ",", ".", "\n", "é", "Zoë", "x" * 30]
    texts = {" ".join(rng.choice(words) for _ in range(rng.randint(1, 30))) for _ in range(25)}
    ordered = sorted(texts)
    labels = beam_labels(ordered)
    assert_distinct(ordered, labels)
    for text, label in zip(ordered, labels):
        assert label and label.splitlines() == [label]
        shown = one_line(text)
        assert label.removeprefix(ELLIPSIS).removesuffix(ELLIPSIS).strip() in shown
