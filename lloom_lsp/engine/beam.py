"""Beams: what a finished path through the tree looks like to callers, and the
byte-level rules that decide where a beam ends (stop strings, UTF-8 boundaries) and
how it joins the story (whitespace healing).
"""

from __future__ import annotations

import codecs
import math
from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from .prose import ends_naturally, near_duplicate_word, repeats_next, words
from .source import Candidate

__all__ = [
    "Beam",
    "BeamToken",
    "complete_utf8_length",
    "find_stop",
    "heal_whitespace",
    "make_beam",
    "NOTE_CUT",
    "NOTE_MID_PHRASE",
    "NOTE_REPEATS",
    "NOTE_REPEATS_NEXT",
    "rank_beams",
    "split_story",
]

#: Probability used for log() when a backend reports exactly zero.
TINY_PROB = 1e-45
#: Length exponent of the ``norm`` rank.
NORM_ALPHA = 0.7
#: A beam repeats the story when at least this share of its word n-grams occur in it.
REPEAT_SHARE = 0.5
REPEAT_NGRAM = 4

#: Why a beam sits below beams scored higher than it (its ``note``); empty for the first tier.
NOTE_MID_PHRASE = "stops mid-phrase"
NOTE_REPEATS = "repeats the story"
NOTE_REPEATS_NEXT = "repeats the next words"  # the text after the cursor: a story repeat's tier
NOTE_CUT = "cut short"
_TIERS = ("", NOTE_MID_PHRASE, NOTE_REPEATS, NOTE_CUT)


@attrs.frozen
class BeamToken:
    """One token of a beam, as shown to the user."""

    text: str
    prob: float
    token_id: int | None


@attrs.frozen
class Beam:
    """A finished suggestion.

    ``text`` continues the prompt (the story with its trailing spaces and tabs held back);
    ``insert_text`` is what to insert at the cursor, whitespace healed.
    """

    text: str
    insert_text: str
    tokens: tuple[BeamToken, ...]
    score: float  # the seed's score: sum of token probabilities
    joint: float  # product of token probabilities
    mean_logprob: float
    finish: str  # depth | stop | eos | limit | cut
    paths: int = 1  # token paths that spell this text (merged into one suggestion)
    repeats_story: bool = False  # it mostly repeats text already in the story
    #: near-duplicates folded into this beam: the word each has where it differs
    variants: tuple[str, ...] = ()
    repeats_next: bool = False  # it repeats the text just after the cursor (engine/suffix.py)
    #: log-probabilities of the next words' first tokens after it (engine/suffix.py); empty:
    #: not scored (nothing follows the cursor, or the backend cannot score)
    lead: tuple[float, ...] = ()

    @property
    def ends_naturally(self) -> bool:
        return ends_naturally(self.text, self.finish)

    @property
    def note(self) -> str:
        """Why this beam is ranked below beams scored higher ("" when nothing demoted it):
        the tiers of :func:`rank_beams`, best first."""
        if self.finish == "cut":
            return NOTE_CUT
        if self.repeats_story:
            return NOTE_REPEATS
        if self.repeats_next:
            return NOTE_REPEATS_NEXT
        if not self.ends_naturally:
            return NOTE_MID_PHRASE
        return ""

    @property
    def tier(self) -> int:
        """0 for a beam nothing demoted, then one per note, worst last."""
        note = self.note
        return _TIERS.index(NOTE_REPEATS if note == NOTE_REPEATS_NEXT else note)

    @property
    def probs(self) -> tuple[float, ...]:
        return tuple(t.prob for t in self.tokens)

    def rank_value(self, rank: str) -> float:
        """The beam's score under ``rank``; with a ``lead``, as if the beam went on into the
        next words' tokens (the score of the beam and them together)."""
        lead = self.lead
        if rank == "lloom":
            return self.score + sum(math.exp(x) for x in lead)
        if rank == "joint":
            return self.joint * math.exp(sum(lead))
        log_joint = math.log(max(self.joint, TINY_PROB)) + sum(lead)
        length = len(self.tokens) + len(lead)
        if rank == "mean":
            if not lead:
                return self.mean_logprob
            return (self.mean_logprob * len(self.tokens) + sum(lead)) / max(1, length)
        # "norm": the joint's log over length**0.7 (GNMT's length penalty, without its +5):
        # between joint, which favours the shortest beams, and mean, which ignores length.
        return log_joint / max(1, length) ** NORM_ALPHA

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "insertText": self.insert_text,
            "score": self.score,
            "joint": self.joint,
            "meanLogprob": self.mean_logprob,
            "finish": self.finish,
            "paths": self.paths,
            "repeatsStory": self.repeats_story,
            "repeatsNext": self.repeats_next,
            "lead": list(self.lead),
            "note": self.note,
            "variants": list(self.variants),
            "tokens": [{"text": t.text, "prob": t.prob, "id": t.token_id} for t in self.tokens],
        }


def split_story(story: str) -> tuple[str, str]:
    """(prompt, held): the story without its trailing spaces and tabs, and those.

    BPE vocabularies glue a leading space to the next word, so a prompt that ends in
    a space asks the model for an unlikely token.  The held whitespace is matched
    against each beam's leading whitespace when it is inserted.  Line breaks stay in the
    prompt: they are the model's to see (a paragraph ends there), and a beam inserted after
    a held line break would start the new line with the space the model put before its word.
    """
    prompt = story.rstrip(" \t")
    return prompt, story[len(prompt) :]


def heal_whitespace(held: str, text: str) -> str:
    """Drop from ``text`` the leading whitespace the document already has.

    ``held`` is the whitespace between the prompt and the cursor.  Inserting the
    result at the cursor never doubles it; where the beam has less whitespace than the
    document, the document's stays (nothing the user typed is removed).
    """
    i = 0
    while i < len(held) and i < len(text) and held[i] == text[i]:
        i += 1
    return text[i:]


def complete_utf8_length(data: bytes) -> int:
    """Length of the longest prefix of ``data`` that does not end inside a UTF-8 character.

    The stdlib's incremental decoder holds back exactly the bytes of an unfinished last
    character (invalid bytes elsewhere are left for the caller to drop).
    """
    decoder = codecs.getincrementaldecoder("utf-8")(errors="ignore")
    decoder.decode(data, final=False)
    pending, _ = decoder.getstate()
    return len(data) - len(pending)


def find_stop(data: bytes, stops: Sequence[bytes]) -> int | None:
    """End offset of the first stop string that follows some non-stop text, or None.

    A beam that *starts* with a stop string (after whitespace) continues: the stop
    must come after other text.  At one offset the longest stop string wins, and the
    whole stop string is kept, whatever its length.
    """
    best: tuple[int, int] | None = None  # (start, -length)
    for stop in stops:
        start = data.find(stop)
        while start != -1:
            if has_text(data[:start], stops):
                key = (start, -len(stop))
                if best is None or key < best:
                    best = key
                break
            start = data.find(stop, start + 1)
    if best is None:
        return None
    return best[0] - best[1]


def has_text(prefix: bytes, stops: Sequence[bytes]) -> bool:
    """Whether ``prefix`` holds text besides stop strings and whitespace: a stop string after
    it ends a beam (:func:`find_stop`)."""
    for stop in sorted(stops, key=len, reverse=True):
        prefix = prefix.replace(stop, b"")
    return bool(prefix.strip())


def make_beam(path: Sequence[Candidate], data: bytes, held: str, finish: str) -> Beam:
    """Build the finished beam from its token path and its (possibly trimmed) bytes."""
    data = data[: complete_utf8_length(data)]
    # Bytes that are not UTF-8 at all (a stray continuation byte a small model emits
    # after a complete character) cannot be inserted as text: drop them, not show "\ufffd".
    text = data.decode("utf-8", errors="ignore")
    tokens = tuple(
        BeamToken(c.data.decode("utf-8", errors="replace"), c.prob, c.token_id)
        for c in path
        if not c.is_end
    )
    probs = [c.prob for c in path]
    logs = [math.log(max(p, TINY_PROB)) for p in probs]
    return Beam(
        text=text,
        insert_text=heal_whitespace(held, text),
        tokens=tokens,
        score=sum(probs),
        joint=math.exp(sum(logs)) if logs else 1.0,
        mean_logprob=sum(logs) / len(logs) if logs else 0.0,
        finish=finish,
    )


def rank_beams(
    beams: Iterable[Beam],
    rank: str,
    *,
    story: str = "",
    repeats: str = "keep",
    limit: int | None = None,
    fold: bool = False,
    after: str = "",
) -> list[Beam]:
    """Best first, at most ``limit`` of them: by tier (:attr:`Beam.note`: beams that end
    at a natural point, then those that stop mid-phrase, those that repeat the story, and
    those cut short), and within a tier by ``rank``.  A beam below one ranked lower
    therefore always says why in its note.

    One text, one beam: token paths that insert the same text are one suggestion, whose
    joint probability is the sum of the paths'.  The suggestion keeps the tokens and LLooM
    score of its best path by ``rank``; its mean log-probability follows the summed joint.
    With ``fold``, near-duplicates (:func:`.prose.near_duplicate_word`) are folded into
    the best of them, which lists their words as ``variants``.

    ``repeats`` handles a beam that only repeats the ``story`` (see :func:`repeats_text`):
    ``keep`` it in rank order, ``demote`` it below every beam that does not, or ``drop`` it.
    A beam that repeats ``after``, the text just after the cursor
    (:func:`.prose.repeats_next`), is handled alike.
    """
    groups: dict[str, list[Beam]] = {}  # by the text inserted, which is what the writer sees
    for beam in beams:
        if beam.text.strip():
            groups.setdefault(beam.insert_text, []).append(beam)
    merged = [_merge(group, rank) for group in groups.values()]
    if repeats != "keep" and story:
        grams = _ngrams(story)
        merged = [attrs.evolve(b, repeats_story=repeats_text(b.text, grams)) for b in merged]
    if repeats != "keep" and after:
        merged = [attrs.evolve(b, repeats_next=repeats_next(b.text, after)) for b in merged]
    if repeats == "drop":
        merged = [b for b in merged if not (b.repeats_story or b.repeats_next)]
    ranked = sorted(merged, key=lambda b: (b.tier, -b.rank_value(rank), b.text))
    ranked = _fold_near_duplicates(ranked) if fold else ranked
    return ranked if limit is None else ranked[: max(0, limit)]


def _fold_near_duplicates(ranked: list[Beam]) -> list[Beam]:
    """Each beam that is a near-duplicate of one ranked above it (and in the same tier)
    becomes a variant of that one."""
    kept: list[tuple[Beam, list[str], list[str]]] = []  # beam, its words, variants
    for beam in ranked:
        own = words(beam.insert_text)
        for best, best_words, variants in kept:
            if best.tier != beam.tier:
                continue
            where = near_duplicate_word(best_words, own)
            if where is not None:
                variants.append(own[where])
                break
        else:
            kept.append((beam, own, []))
    return [
        attrs.evolve(b, variants=(*b.variants, *variants)) if variants else b
        for b, _, variants in kept
    ]


def _words(text: str) -> list[str]:
    return text.lower().split()


def _ngrams(text: str, n: int = REPEAT_NGRAM) -> set[tuple[str, ...]]:
    """The word n-grams of ``text`` and, where it has any, every shorter run of its words:
    each of those lies inside some n-gram, so a beam shorter than n words repeats the story
    exactly when it is one of them (one set lookup, not a scan of every n-gram)."""
    words = _words(text)
    grams = {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}
    if grams:
        grams |= {tuple(words[i : i + k]) for k in range(1, n) for i in range(len(words) - k + 1)}
    return grams


def repeats_text(text: str, story_grams: set[tuple[str, ...]], n: int = REPEAT_NGRAM) -> bool:
    """Whether ``text`` mostly repeats the story whose word n-grams are ``story_grams``: at
    least :data:`REPEAT_SHARE` of its own n-grams occur there.  A beam shorter than n words
    is judged whole, by whether it occurs inside some story n-gram."""
    words = _words(text)
    if not words:
        return False
    if len(words) < n:
        return tuple(words) in story_grams
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return sum(gram in story_grams for gram in grams) >= REPEAT_SHARE * len(grams)


def _merge(group: list[Beam], rank: str) -> Beam:
    best = min(group, key=lambda b: (b.finish == "cut", -b.rank_value(rank)))
    if len(group) == 1:
        return best
    joint = sum(b.joint for b in group)
    n = max(1, len(best.tokens))
    return attrs.evolve(
        best,
        joint=joint,
        mean_logprob=math.log(max(joint, TINY_PROB)) / n,
        paths=sum(b.paths for b in group),
    )
