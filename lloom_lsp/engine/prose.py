"""How beams read as prose: where a beam ends at a natural point, and which beams are
near-duplicates of a better one.

Both are pure rules over a beam's text, used by :func:`.beam.rank_beams`:

* A beam **ends naturally** after a sentence or clause mark (``. , ; : ! ? …``, with any
  closing quotes or brackets after it), at a line break, or at the model's end of
  sequence; never with a quotation it opened and did not close.  "…had ever seen a" and
  "He said, \\"I" do not.
* Two beams are **near-duplicates** when they have the same number of words (runs of
  non-space) and differ in exactly one of them, and they share at least
  :data:`NEAR_SHARED_WORDS` words: "in the year 2000," and "in the year 2020,"; "…the middle
  of the forest" and "…the middle of the ocean".  The better one stays in the list; the
  others become its ``variants`` (the word each one has in that place), so the list is
  not filled with one phrase in five spellings.
* A beam **repeats the next words** when the text after the cursor already says it: it
  begins with the words that follow the cursor ("the door" before "the door opened"); it
  holds a pair of the next :data:`NEXT_PAIRS_FROM` words with a word of 4 letters or more in
  it ("to the door of the house" before "toward the door", but not "of the" before "of the
  night"); or at least half of its word 3-grams occur after the cursor.  Ranked as a repeat
  of the story is.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

__all__ = [
    "NEAR_SHARED_WORDS",
    "NEXT_NGRAM",
    "ends_naturally",
    "near_duplicate_word",
    "repeats_next",
    "words",
]

#: Words two beams must share (besides the one they differ in) to be near-duplicates:
#: two one-word beams, or "a dog" and "a cat", are different suggestions.
NEAR_SHARED_WORDS = 2

#: Word n-grams a beam shares with the text after the cursor, to repeat it (shorter than the
#: story's 4: the next words are a sentence or two, not a story).
NEXT_NGRAM = 3
#: A beam that begins with this many of the next words (all of it, when shorter) repeats them.
NEXT_WORDS = 2
#: The word pairs a beam must not hold come from this many of the next words.
NEXT_PAIRS_FROM = 4

_MARKS = ".,;:!?…"
_CLOSERS = "\"')]}»*_\u201d\u2019"  # and the closing curly quotes
#: What may open a word: quotes, brackets, dashes (the curly ones as escapes).
_OPENING = "\"'([{\u201c\u2018\u00ab-\u2014\u2013"
_OPENERS = {"“": "”", "«": "»", "(": ")"}


def ends_naturally(text: str, finish: str = "") -> bool:
    """Whether ``text`` (a beam's text; ``finish``: why it ended) stops at a natural point."""
    if _opens_quote(text):
        return False
    if finish == "eos" or text.rstrip(" \t").endswith(("\n", "\r")):
        return True
    end = text.rstrip()
    core = end.rstrip(_CLOSERS)
    return bool(core) and core[-1] in _MARKS


def _opens_quote(text: str) -> bool:
    """Whether ``text`` opens a quotation it does not close."""
    if any(text.count(o) > text.count(c) for o, c in _OPENERS.items()):
        return True
    # A straight quote opens after a space, or at the start before a word (the story may
    # have ended with the space), and closes otherwise.
    depth = 0
    for i, ch in enumerate(text):
        if ch == '"':
            if i == 0:
                opening = text[1:2].isalnum()
            else:
                opening = text[i - 1].isspace() or text[i - 1] in "([{-\u2013\u2014"  # or a dash
            depth = depth + 1 if opening and depth == 0 else max(0, depth - 1)
    return depth > 0


def words(text: str) -> list[str]:
    return text.split()


def near_duplicate_word(a: Sequence[str], b: Sequence[str]) -> int | None:
    """Where word lists ``a`` and ``b`` differ, when they are near-duplicates (see the
    module docstring); else None."""
    if len(a) != len(b) or len(a) < NEAR_SHARED_WORDS + 1:
        return None
    differ = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
    return differ[0] if len(differ) == 1 else None


def repeats_next(text: str, after: str) -> bool:
    """Whether a beam's ``text`` repeats ``after``, the text just after the cursor (see the
    module docstring).  Words compare without case and the punctuation around them."""
    own, next_words = _bare_words(text), _bare_words(after)
    if not own or not next_words:
        return False
    k = min(NEXT_WORDS, len(own))
    if own[:k] == next_words[:k]:
        return True
    pairs = set(itertools.pairwise(own))
    first = next_words[:NEXT_PAIRS_FROM]
    if any(p in pairs and max(map(len, p)) >= 4 for p in itertools.pairwise(first)):
        return True
    if len(own) < NEXT_NGRAM:
        return False
    grams = _grams(own)
    known = set(_grams(next_words))
    return sum(gram in known for gram in grams) * 2 >= len(grams)


def _bare_words(text: str) -> list[str]:
    bare = (w.strip(_MARKS + _CLOSERS + _OPENING).lower() for w in text.split())
    return [w for w in bare if w]


def _grams(seq: list[str]) -> list[tuple[str, ...]]:
    return [tuple(seq[i : i + NEXT_NGRAM]) for i in range(len(seq) - NEXT_NGRAM + 1)]
