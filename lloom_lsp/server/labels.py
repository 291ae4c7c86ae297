"""Short, one-line labels that tell the beams of one weave apart.

Beams of a weave often share a long start ("She had to climb the hundred and twelve
st…"), and a list of items that all begin alike hides where they differ; a list of their
ends alone hides how each begins.  Each beam's label therefore shows its first few words,
then " … " for the shared middle, then a few words before the point where it parts from
the beam most like it, and what follows:

    She had to climb the hundred and twelve steps to the top.
        ->  She had to … twelve steps to the top.
    She had to climb the hundred and twelve stairs, counting.
        ->  She had to … twelve stairs, counting.
    A door opened.  ->  A door opened.

The rule, for each beam's text ``t`` (after :func:`one_line`):

1. ``d``: the longest prefix ``t`` shares with any other beam's text.  Cut it back to
   the start of the word it ends in: that word is where the beams part ("st" of
   "steps" and "stairs" is shown whole).
2. Keep whole words of context before that word: at least :data:`CONTEXT_CHARS`
   characters, at most :data:`CONTEXT_WORDS` words (and :data:`MAX_CONTEXT` characters
   in all, so one very long word cannot hide the divergence).
3. Elide what comes before the context only when that is more than :data:`ELIDE_AFTER`
   characters: a short shared start is cheaper to read than an ellipsis.  The elided part
   starts after the beam's head (its first :data:`HEAD_WORDS` words, at most
   :data:`HEAD_CHARS` characters), which the label shows before the " … ".
4. Show at most :data:`MAX_LABEL` characters from there, cut at the end of a word where
   one is near, with "…" after.  The divergence always stays inside the label: the
   context is shorter than the label.
5. If two different texts still get the same label (a beam can share its *start*
   with one beam and its *end* with another: "…was a little" for both "…cat was a
   little" and "…boy was a little"), their labels take one more word of context at a
   time, and once nothing is elided, their whole text, until they differ.  Labels of
   texts that are shown differently are therefore always different, and only such
   clashes make a label longer than the limit.

Gotchas:
* Texts are compared as shown: spaces and tabs at either end are dropped and every line
  break (``\\n``, ``\\r\\n``, ``\\r`` and the rest of ``str.splitlines``' set) becomes "⏎",
  tabs "⇥", so a label is one line.  Two texts that differ only in spaces at their ends
  get the same label; the item's documentation shows the full text.
* Lengths are Python characters (code points), not UTF-16 units or bytes; a cut never
  falls before a combining mark, a variation selector or around a zero-width joiner, so
  "é" written as e + U+0301 stays whole (flag emoji, which are pairs of letters, may not).
* A label depends on the *set* of texts only: not on their order, nor on duplicates.
  Clients that filter items as the user types do not recompute it, so a remaining
  item's label may still elide a start it shared with an item filtered away.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from itertools import pairwise

__all__ = [
    "ELIDED",
    "HEAD_CHARS",
    "HEAD_WORDS",
    "CONTEXT_CHARS",
    "CONTEXT_WORDS",
    "ELIDE_AFTER",
    "ELLIPSIS",
    "MAX_CONTEXT",
    "MAX_LABEL",
    "beam_labels",
    "one_line",
]

ELLIPSIS = "…"
#: What stands for the elided middle, between the head and the rest.
ELIDED = f" {ELLIPSIS} "
#: The head: a label's first words, shown however much is elided after them ...
HEAD_WORDS = 3
#: ... at most this many characters of them.
HEAD_CHARS = 20
#: A shared start at most this long (after the context is kept) is shown, not elided.
ELIDE_AFTER = 16
#: Context before the divergence: whole words until it is at least this long ...
CONTEXT_CHARS = 6
#: ... but no more than this many words ...
CONTEXT_WORDS = 3
#: ... and no more than this many characters up to the divergence.
MAX_CONTEXT = 24
#: Characters of beam text in a label, ellipses not counted.
MAX_LABEL = 60
#: How far back from :data:`MAX_LABEL` a cut may move to end on a whole word.
_WORD_SLACK = 12

NEWLINE = "⏎"
TAB = "⇥"
EMPTY = "∅"  # the label of a text with nothing to show
# str.splitlines() breaks at these; a label shows each as one NEWLINE.
_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_ONE_LINE = str.maketrans(dict.fromkeys(_BREAKS, NEWLINE) | {"\t": TAB})
_JOINER = "\u200d"


def one_line(text: str) -> str:
    """``text`` as a label shows it: one line, without spaces or tabs at either end."""
    return text.strip(" \t").replace("\r\n", "\n").translate(_ONE_LINE)


def beam_labels(texts: Sequence[str]) -> list[str]:
    """A label for each text (beam ``insert_text``), in order: see the module docstring."""
    shown = [one_line(text) for text in texts]
    shared = _longest_shared_prefixes(shown)
    windows = [_window(s, d) for s, d in zip(shown, shared)]
    labels = [_render(s, w) for s, w in zip(shown, windows)]
    while True:
        texts_by_label: dict[str, set[str]] = {}
        for label, s in zip(labels, shown):
            texts_by_label.setdefault(label, set()).add(s)
        changed = False
        for i, (label, s) in enumerate(zip(labels, shown)):
            if len(texts_by_label[label]) > 1:
                widened = _widen(s, windows[i])
                changed |= widened != windows[i]
                windows[i] = widened
        if not changed:
            return labels
        labels = [_render(s, w) for s, w in zip(shown, windows)]


def _longest_shared_prefixes(shown: Sequence[str]) -> list[int]:
    """For each text, the length of the longest prefix it shares with another (different) text.

    In sorted order the text sharing the longest prefix with a text is next to it.
    """
    distinct = sorted(set(shown))
    best: dict[str, int] = {}
    for a, b in pairwise(distinct):
        n = _common_prefix(a, b)
        best[a] = max(best.get(a, 0), n)
        best[b] = max(best.get(b, 0), n)
    return [best.get(s, 0) for s in shown]


def _common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def _is_space(ch: str) -> bool:
    return ch.isspace() or ch in (NEWLINE, TAB)


def _word_start(s: str, i: int) -> int:
    """The start of the word that ``s[:i]`` ends in (``i`` if it ends in a space).

    Only ``s[:i]`` is read, so texts that share that prefix get the same answer.
    """
    while i > 0 and not _is_space(s[i - 1]):
        i -= 1
    return i


def _previous_word(s: str, i: int) -> int:
    """The start of the word before position ``i`` (0 if there is none)."""
    while i > 0 and _is_space(s[i - 1]):
        i -= 1
    while i > 0 and not _is_space(s[i - 1]):
        i -= 1
    return i


def _attached(s: str, i: int) -> bool:
    """Whether a cut at ``i`` would split a character from a mark or joiner attached to it."""
    if i <= 0 or i >= len(s):
        return False
    ch = s[i]
    return (
        unicodedata.category(ch).startswith("M")
        or "\ufe00" <= ch <= "\ufe0f"
        or "\U0001f3fb" <= ch <= "\U0001f3ff"  # emoji skin tones
        or ch == _JOINER
        or s[i - 1] == _JOINER
    )


def _window(s: str, shared: int) -> tuple[int, int]:
    """The part of ``s`` its label shows, given the length of the longest prefix it shares."""
    start = 0
    if shared:
        parting = _word_start(s, shared)
        start, words = parting, 0
        # Everything here reads s[:shared] only: a text and the one it shares most with
        # get the same start, so their labels line up.
        while start > 0 and words < CONTEXT_WORDS and parting - start < CONTEXT_CHARS:
            start = _previous_word(s, start)
            words += 1
        if shared - start > MAX_CONTEXT:
            start = shared - MAX_CONTEXT
        while _attached(s, start):
            start -= 1
        start = _elided_from(s, start)
    end = len(s)
    if end - start > MAX_LABEL:
        end = start + MAX_LABEL
        # End on a whole word when one ends near the limit, after the divergence.
        for cut in range(end, max(start + MAX_LABEL - _WORD_SLACK, shared + 1), -1):
            if not _is_space(s[cut - 1]) and _is_space(s[cut]):
                end = cut
                break
        while _attached(s, end):
            end -= 1
    return start, end


def _widen(s: str, window: tuple[int, int]) -> tuple[int, int]:
    """One more word of context before the window; once it starts at 0, the whole text."""
    start, end = window
    if start == 0:
        return 0, len(s)
    start = _previous_word(s, start)
    while _attached(s, start):
        start -= 1
    return _elided_from(s, start), end


def _head(s: str) -> int:
    """Where the head of ``s`` ends: after its first words, within :data:`HEAD_CHARS`."""
    end = 0
    for _ in range(HEAD_WORDS):
        i = end
        while i < len(s) and _is_space(s[i]):
            i += 1
        while i < len(s) and not _is_space(s[i]):
            i += 1
        if i > HEAD_CHARS and end:
            break
        end = i
    end = min(end, HEAD_CHARS)
    while _attached(s, end):
        end -= 1
    return end


def _elided_from(s: str, start: int) -> int:
    """``start``, or 0 when what it would elide after the head is too short to hide."""
    return 0 if start - _head(s) <= ELIDE_AFTER else start


def _render(s: str, window: tuple[int, int]) -> str:
    start, end = window
    text = s[start:end]
    if not text:
        return EMPTY
    if start > 0:
        head = s[: _head(s)].rstrip()
        text = (head + ELIDED if head else ELLIPSIS) + text.lstrip()
    if end < len(s):
        text = text.rstrip() + ELLIPSIS
    return text
