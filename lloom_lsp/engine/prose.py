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
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["NEAR_SHARED_WORDS", "ends_naturally", "near_duplicate_word", "words"]

#: Words two beams must share (besides the one they differ in) to be near-duplicates:
#: two one-word beams, or "a dog" and "a cat", are different suggestions.
NEAR_SHARED_WORDS = 2

_MARKS = ".,;:!?…"
_CLOSERS = "\"')]}»*_\u201d\u2019"  # and the closing curly quotes
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
