"""The story window stays put while the writer types, and moves only in coarse steps."""

from __future__ import annotations

import itertools
import random

import pytest

from lloom_lsp.engine.window import STEPS, window_start

WORDS = "the keeper climbed stairs lamp sea night boat rocks tower light wind bell".split()


def prose(chars: int, seed: int = 1) -> str:
    """Sentences and paragraphs of ``chars`` characters or more."""
    rng = random.Random(seed)
    out: list[str] = []
    size = 0
    while size < chars:
        sentence = " ".join(rng.choice(WORDS) for _ in range(rng.randrange(5, 15)))
        piece = sentence.capitalize() + "." + ("\n\n" if rng.random() < 0.15 else " ")
        out.append(piece)
        size += len(piece)
    return "".join(out)


def test_a_text_that_fits_is_all_story() -> None:
    assert window_start("Once upon a time", 16000) == 0
    text = prose(16000)[:16000]
    assert window_start(text, 16000) == 0


@pytest.mark.parametrize("max_chars", [500, 4000, 16000])
def test_the_window_never_exceeds_its_size_and_starts_at_a_boundary(max_chars: int) -> None:
    text = prose(5 * max_chars)
    for end in range(max_chars + 1, len(text), 97):
        before = text[:end]
        start = window_start(before, max_chars)
        assert len(before) - start <= max_chars
        # at least five eighths of the size: coarse, not wasteful
        assert len(before) - start >= max_chars * 5 // 8 - 40
        assert start == 0 or before[start - 1].isspace()  # never in the middle of a word


def test_typing_at_the_end_moves_the_start_only_once_a_step() -> None:
    """An hour of typing (20,000 characters, word by word) at the end of a long document
    moves the start a handful of times, not once a word."""
    max_chars = 16000
    text = prose(40000)
    typed = prose(20000, seed=2)
    starts = []
    for i in range(0, len(typed), 6):  # a word at a time
        starts.append(window_start(text + typed[:i], max_chars))
    moves = sum(1 for a, b in itertools.pairwise(starts) if a != b)
    assert moves <= 20000 // (max_chars // STEPS) + 1
    assert moves >= 1  # it does move, or the window would outgrow its size
    assert starts == sorted(starts)  # forward only


def test_weaving_in_the_middle_behaves_the_same() -> None:
    """The cursor in the middle of a document: the text after it plays no part, and typing
    at the cursor keeps the start."""
    text = prose(60000)
    cursor = 35000
    first = window_start(text[:cursor], 16000)
    for typed in ("The", "The wind", "The wind rose again"):
        assert window_start(text[:cursor] + " " + typed, 16000) == first


def test_an_edit_far_before_the_window_moves_the_start_by_at_most_its_length() -> None:
    """Text changed before the window shifts everything after it; the start follows to the
    same boundary or the next, not to a new place each time."""
    text = prose(50000)
    start = window_start(text, 16000)
    edited = "Title. " + text
    new = window_start(edited, 16000)
    assert edited[new:] == text[start:] or abs(new - (start + 7)) < 16000 // STEPS


def test_one_long_word_without_spaces_still_gives_a_window() -> None:
    text = "x" * 50000
    start = window_start(text, 16000)
    assert 0 < len(text) - start <= 16000
